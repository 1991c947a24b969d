"""The playground page's latency table, in headless Chromium: the page as served (``static/``) is opened from
disk and fed ``metrics_collected`` messages as the data channel delivers them; the table shows the stages
measured, '-' for "not measured", and where an interrupted answer was cut."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentsession.plugin import TurnMetrics

# the DevTools client of the end-to-end browser test (tests run with --import-mode=importlib: load it by path)
_spec = importlib.util.spec_from_file_location("playground_browser_test", Path(__file__).with_name("test_browser.py"))
assert _spec is not None and _spec.loader is not None
_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser)
CDP = _browser.CDP

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE = Path(__file__).resolve().parents[1] / "src" / "agentsession_webrtc" / "static" / "index.html"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]


@contextlib.asynccontextmanager
async def page(profile: Path) -> AsyncIterator[CDP]:
    """Headless Chromium showing the playground page from disk (no server, no network), through DevTools."""
    scratch = tempfile.mkdtemp(prefix="as-chromium-")  # its lock socket's folder: a short path (108 bytes at most)
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1280,900",
        "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env={**os.environ, "TMPDIR": scratch},
    )
    try:
        assert proc.stderr is not None
        port = 0
        async with asyncio.timeout(20):
            while not port:
                line = (await proc.stderr.readline()).decode(errors="replace")
                assert line, "chromium exited"
                if found := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                    port = int(found.group(1))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
            target = next(t for t in targets if t["type"] == "page")
            ws = await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            cdp = CDP(ws)
            try:
                await cdp.call("Page.navigate", url=PAGE.as_uri())  # returns once the page is committed
                await cdp.wait_for("document.readyState === 'complete' && window.playground")
                yield cdp
            finally:
                await cdp.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


async def _feed(cdp: CDP, *metrics: TurnMetrics) -> None:
    for m in metrics:
        message = json.dumps({"type": "metrics_collected", **m.as_dict()})
        await cdp.evaluate(f"onMessage({json.dumps(message)})")


async def _table(cdp: CDP) -> dict[str, Any]:
    return await cdp.evaluate("""(() => {
        const visible = (el) => !el.hidden && getComputedStyle(el).display !== 'none';
        const table = document.getElementById('metrics');
        return {
            header: [...table.querySelectorAll('thead th')].filter(visible).map(th => th.textContent),
            rows: [...table.querySelectorAll('tbody tr')].map(tr => [...tr.cells].filter(visible)
                                                                       .map(td => td.textContent)),
            titles: [...table.querySelectorAll('tbody tr')].map(tr => tr.title),
        };
    })()""")


async def test_a_realtime_models_turns(tmp_path: Path) -> None:
    async with page(tmp_path / "profile") as cdp:
        await _feed(cdp, TurnMetrics(turn=1, trigger="say", ttfa=0.3, e2e=0.32, audio_duration=1.0))
        table = await _table(cdp)
        assert table["header"] == ["#", "trigger", "ttfa", "e2e", "heard s"]
        assert table["rows"] == [["1", "say", "300", "320", "1.0"]]
        cut = TurnMetrics(turn=2, trigger="user", eou_delay=0.42, realtime_ttfa=0.38, ttfa=0.38, e2e=0.9,
                          interrupted=True, interrupted_at=1.3, audio_played=1.3, audio_generated=2.1,
                          end_of_turn_reason="model_vad", input_tokens=120, output_tokens=30)
        await _feed(cdp, cut)
        table = await _table(cdp)
        # the model's own figure explains the first audio: "ttfa" gives way, in every row
        assert table["header"] == ["#", "trigger", "eou", "model", "e2e", "heard s"]
        assert table["rows"] == [["1", "say", "-", "-", "320", "1.0"],
                                 ["2", "user (cut at 1.3 s)", "420", "380", "900", "1.3/2.1"]]
        assert table["titles"][1] == "turn ended by model_vad; tokens 120 in, 30 out"


async def test_a_cascades_turn_shows_each_stage(tmp_path: Path) -> None:
    m = TurnMetrics(turn=1, trigger="user", eou_delay=0.5, stt_latency=0.21, llm_ttft=0.38, llm_duration=1.24,
                    tts_ttfb=0.14, ttfa=0.79, e2e=1.35, audio_generated=2.1, audio_played=2.1)
    m.add_tool("get_weather", 0.412)
    async with page(tmp_path / "profile") as cdp:
        await _feed(cdp, m)
        table = await _table(cdp)
        shot = await cdp.call("Page.captureScreenshot", format="png")
    assert table["header"] == ["#", "trigger", "eou", "stt", "ttft", "llm", "tts", "e2e", "heard s"]
    assert table["rows"] == [["1", "user", "500", "210", "380", "1240", "140", "1350", "2.1/2.1"]]
    assert table["titles"] == ["tool get_weather 412 ms"]
    assert shot["data"]
