"""The playground page in headless Chromium (issue 22, item 8): laid out for 360 to 1920 px wide (nothing scrolls
sideways, with the latency table full), a recoverable error shown as a passing notice, a reconnect separated from
the conversation before it, and a stopped server's reason (``interrupted``) on the page.

Screenshots at each width go to ``tests/artifacts/`` (git-ignored). As root the test re-runs itself in a
loopback-only network namespace, as ``test_browser.py`` does.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the browser harness beside this file (pytest runs in importlib mode)

from test_browser import CHROMIUM, _run_in_loopback_namespace, _should_reexec, _speech_wav, chromium  # noqa: E402
from test_page_states import CDP, click, page, playground, screenshot  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]

WIDTHS = (360, 400, 768, 1280, 1920)
#: a cascade turn measuring every stage: every column of the latency table shows
FULL_TURN = {"type": "metrics_collected", "turn": 12, "trigger": "user", "eou_delay": 0.512, "stt_latency": 0.21,
             "llm_ttft": 0.38, "llm_duration": 1.24, "tts_ttfb": 0.14, "realtime_ttfa": None, "ttfa": 0.9,
             "e2e": 1.35, "interrupted": True, "interrupted_at": 1.3, "audio_generated": 2.1, "audio_played": 1.3,
             "tools": [{"name": "get_weather", "duration": 0.412, "is_error": False}]}


async def test_page_layout_and_states_in_a_real_browser(request: pytest.FixtureRequest) -> None:
    if _should_reexec():
        await _run_in_loopback_namespace(request)
        return
    with tempfile.TemporaryDirectory(prefix="agentsession-page-layout-") as tmp:
        await _layout_and_states(Path(tmp))


async def _layout_and_states(tmp: Path) -> None:
    wav = _speech_wav(tmp)
    async with chromium(wav, tmp / "profile") as (_, devtools), aiohttp.ClientSession() as http:
        async with playground(tmp, "ok") as (server, url):
            cdp = await page(http, devtools, url + "?notice_seconds=1")
            await _notices(cdp)
            await _layout(cdp)
            await _reconnect(cdp)
            server.proc.send_signal(signal.SIGINT)  # the server stops while the page is connected
            state = await cdp.wait_for("!window.playground.connected && "
                                       "document.getElementById('connection').textContent")
            assert state == "session closed: interrupted", state
            await cdp.close()


async def _notices(cdp: CDP) -> None:
    """A recoverable error is said for a while and goes; one the session cannot go on from stays."""
    message = {"type": "error", "message": "speech-to-text streaming failed; one request per utterance from now on",
               "recoverable": True}
    await cdp.evaluate(f"onMessage({json.dumps(json.dumps(message))})")
    shown = await cdp.evaluate("""({hidden: document.getElementById('notice').hidden,
        cls: document.getElementById('notice').className, errors: window.playground.errors.length,
        text: document.getElementById('notice').textContent})""")
    assert shown["hidden"] is False and shown["cls"] == "notice transient" and shown["errors"] == 0, shown
    assert shown["text"].startswith("the agent recovered from a problem: speech-to-text"), shown
    await screenshot(cdp, "playground-recoverable-error.png")
    await cdp.wait_for("document.getElementById('notice').hidden", timeout=5)  # gone by itself
    fatal = {"type": "error", "message": "the model refused the key", "recoverable": False}
    await cdp.evaluate(f"onMessage({json.dumps(json.dumps(fatal))})")
    await cdp.evaluate(f"onMessage({json.dumps(json.dumps(message))})")  # does not push the error away
    await cdp.evaluate("new Promise(r => setTimeout(r, 1500))")
    stays = await cdp.evaluate("[document.getElementById('notice').hidden, document.getElementById('notice').className,"
                               " document.getElementById('notice').textContent]")
    assert stays == [False, "notice", "the agent failed: the model refused the key"], stays
    await cdp.evaluate("document.getElementById('notice').hidden = true")


async def _layout(cdp: CDP) -> None:
    """Nothing scrolls sideways from 360 to 1920 px, with a long transcript line and every latency column."""
    await cdp.evaluate("line('agent', 'A very long answer ' + 'that_goes_on_without_spaces_'.repeat(8))")
    await cdp.evaluate(f"onMessage({json.dumps(json.dumps(FULL_TURN))})")
    for width in WIDTHS:
        await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                       mobile=width < 800)
        sizes = await cdp.evaluate("""new Promise(r => requestAnimationFrame(() => r({
            page: document.documentElement.scrollWidth, view: window.innerWidth,
            wide: [...document.querySelectorAll('header, main, section, .notice')]
                  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.className || e.tagName),
            columns: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length,
            buttons: [...document.querySelectorAll('.controls button')].map(b => b.getBoundingClientRect().right),
        })))""")
        assert sizes["page"] <= sizes["view"] and not sizes["wide"], (width, sizes)
        assert max(sizes["buttons"]) <= width, (width, sizes)
        assert sizes["columns"] == (1 if width <= 720 else 2), (width, sizes)
        await screenshot(cdp, f"playground-{width}px.png")
    await cdp.call("Emulation.clearDeviceMetricsOverride")


async def _reconnect(cdp: CDP) -> None:
    """Connect, hang up, connect again: the second conversation starts under a separator, its turns under theirs."""
    await click(cdp, "connect")
    await cdp.wait_for("window.playground.connected")
    await click(cdp, "disconnect")
    await cdp.wait_for("!window.playground.connected && !document.getElementById('connect').disabled")
    await click(cdp, "connect")
    await cdp.wait_for("window.playground.connected")
    marks = await cdp.evaluate("""({
        transcript: [...document.querySelectorAll('#transcript li.separator')].map(li => li.textContent),
        tools: document.querySelectorAll('#tools li.separator').length,
        metrics: [...document.querySelectorAll('#metrics tr.separator')].map(tr => tr.innerText),
        conversation: window.playground.conversation,
    })""")
    assert marks["conversation"] == 2 and marks["tools"] == 1, marks  # the first conversation needs no mark
    assert [t.split(" (")[0] for t in marks["transcript"]] == ["conversation 2"], marks
    assert [t.split(" (")[0] for t in marks["metrics"]] == ["conversation 2"], marks
    await screenshot(cdp, "playground-reconnected.png")
