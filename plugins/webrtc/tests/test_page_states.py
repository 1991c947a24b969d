"""The playground page in its failure and end states, in headless Chromium, against ``python agent.py playground``
(the real worker and command line) in a subprocess: a job that fails (no API key) is explained at once, ICE
that cannot complete leaves the page usable, Disconnect resets it, disabled buttons look disabled, an
interrupted answer is marked, and the server's output (two tabs at once, one closed without Disconnect) is
tagged per connection and free of aioice chatter and unretrieved task exceptions.

Screenshots of each state go to ``tests/artifacts/`` (git-ignored). As root the test re-runs itself in a
loopback-only network namespace, as ``test_browser.py`` does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test_browser beside this file (pytest runs in importlib mode)

from test_browser import (  # noqa: E402  the conversation test's harness: Chromium, its DevTools client, the mic
    ARTIFACTS,
    CDP,
    CHROMIUM,
    _run_in_loopback_namespace,
    _should_reexec,
    _speech_wav,
    chromium,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]

AGENT = '''
import os

import aioice.ice

from agentsession import Agent, AgentSession, EnergyVAD, JobContext, RealTimePipeline, WorkerJob
from agentsession.testing import FakeRealtimeModel, FakeResponse
from agentsession_webrtc.testing import loopback_only_ice

SCENARIO = os.environ["SCENARIO"]
if SCENARIO == "no-ice":  # the server offers the browser no address at all: ICE cannot complete
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []
else:
    LOOPBACK = loopback_only_ice()  # kept: a collected context manager would undo the patch
    LOOPBACK.__enter__()


class Assistant(Agent):
    def __init__(self):
        super().__init__(instructions="Answer.")


async def entrypoint(ctx: JobContext):
    if SCENARIO == "no-key":
        from agentsession_openai import OpenAIRealtime
        model = OpenAIRealtime()  # OPENAI_API_KEY is not set: session.start() fails
    else:  # the whole text at once, then 6 s of audio: an interruption cuts an answer whose text is final
        model = FakeRealtimeModel([], default=FakeResponse(text="A long answer that goes on and on.", audio=6.0),
                                  vad=EnergyVAD(threshold_db=-45.0, min_silence=0.6), speed=50.0)
    session = AgentSession(Assistant(), RealTimePipeline(model), allow_interruptions=False)
    session.on("agent_state_changed", lambda d: print("agent", d["state"].value, flush=True))
    await ctx.connect()
    await session.start()
    print("ended:", await ctx.wait_for_shutdown(), flush=True)
    await session.close()
    await ctx.shutdown()


WorkerJob(entrypoint).start()
'''

DISABLED = "rgb(201, 206, 216)"  # style.css: button:disabled


class Server:
    """``agent.py playground --port 0`` in a subprocess; its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [asyncio.ensure_future(self._read(proc.stdout, self.out)),
                         asyncio.ensure_future(self._read(proc.stderr, self.err))]
        self._changed = asyncio.Event()
        self.killed = False  # it did not exit within 20 s of its Ctrl-C

    async def _read(self, stream: asyncio.StreamReader, lines: list[str]) -> None:
        async for raw in stream:
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()

    async def line(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        async with asyncio.timeout(timeout):
            while True:
                found = next((m for x in self.out + self.err if (m := re.search(pattern, x))), None)
                if found:
                    return found
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.killed = True
                self.proc.kill()
                await self.proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def playground(tmp: Path, scenario: str) -> AsyncIterator[tuple[Server, str]]:
    (tmp / "agent.py").write_text(AGENT)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AGENTSESSION_DISABLE_PLUGINS")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(tmp / "agent.py"), "playground", "--port", "0",
        env={**env, "SCENARIO": scenario, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    server = Server(proc)
    try:
        url = (await server.line(r"playground: open (http://127\.0\.0\.1:\d+/)")).group(1)
        yield server, url
    finally:
        await server.stop()
        print(f"--- playground {scenario}:", *server.out, *server.err, sep="\n")  # shown when the test fails


async def page(http: aiohttp.ClientSession, devtools: int, url: str) -> CDP:
    """A new tab on ``url``."""
    async with http.put(f"http://127.0.0.1:{devtools}/json/new?about:blank") as response:
        target = await response.json(content_type=None)
    cdp = CDP(await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0))
    await cdp.call("Page.navigate", url=url)
    await cdp.wait_for("document.readyState === 'complete' && window.playground")
    return cdp


async def screenshot(cdp: CDP, name: str) -> None:
    shot = await cdp.call("Page.captureScreenshot", format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(base64.b64decode(shot["data"]))


async def controls(cdp: CDP) -> dict[str, dict[str, object]]:
    return await cdp.evaluate("""Object.fromEntries(["connect", "interrupt", "disconnect", "send"].map(id => {
        const b = document.getElementById(id), style = getComputedStyle(b);
        return [id, {disabled: b.disabled, background: style.backgroundColor, cursor: style.cursor}];
    }))""")


def assert_disabled_look_disabled(buttons: dict[str, dict[str, object]]) -> None:
    for name, b in buttons.items():
        assert (b["background"] == DISABLED) == b["disabled"], (name, b)
        assert (b["cursor"] == "not-allowed") == b["disabled"], (name, b)


async def click(cdp: CDP, button: str) -> None:
    await cdp.evaluate(f"document.getElementById('{button}').click()", user_gesture=True)


async def test_page_states_in_a_real_browser(request: pytest.FixtureRequest) -> None:
    if _should_reexec():
        await _run_in_loopback_namespace(request)
        return
    with tempfile.TemporaryDirectory(prefix="agentsession-page-states-") as tmp:
        await _page_states(Path(tmp))


async def _page_states(tmp: Path) -> None:
    wav = _speech_wav(tmp)
    async with chromium(wav, tmp / "profile") as (_, devtools), aiohttp.ClientSession() as http:
        await _job_failure(tmp, http, devtools)
        await _ice_failure(tmp, http, devtools)
        await _conversation_end_states(tmp, http, devtools)


async def _job_failure(tmp: Path, http: aiohttp.ClientSession, devtools: int) -> None:
    """No API key: the page shows the server's reason as soon as it is known (it used to wait ~28 s)."""
    async with playground(tmp, "no-key") as (server, url):
        cdp = await page(http, devtools, url)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await click(cdp, "connect")
        notice = await cdp.wait_for("!document.getElementById('notice').hidden && "
                                    "document.getElementById('notice').textContent", timeout=8)
        took = loop.time() - t0
        assert "OPENAI_API_KEY" in notice and notice.startswith("the agent failed: "), notice
        assert took < 5, f"the reason took {took:.1f} s to reach the page"
        await cdp.wait_for("!document.getElementById('connect').disabled")  # usable again
        state = await cdp.evaluate("document.getElementById('connection').textContent")
        assert state == "session closed: the agent's job failed"
        assert_disabled_look_disabled(await controls(cdp))
        await screenshot(cdp, "playground-no-api-key.png")
        print(f"no API key: the page showed the reason {took * 1000:.0f} ms after Connect")
        await cdp.close()
        await server.line(r"ERROR agentsession.worker: \[conn [0-9a-f]{8}\] the job failed: OpenAIRealtime needs")


async def _ice_failure(tmp: Path, http: aiohttp.ClientSession, devtools: int) -> None:
    """ICE cannot complete: the page gives up after its connect timeout and can connect again; a Ctrl-C then stops
    the server at once (it used to end the conversation and keep serving)."""
    async with playground(tmp, "no-ice") as (server, url):
        cdp = await page(http, devtools, url + "?connect_timeout=3")
        await click(cdp, "connect")
        await cdp.wait_for("window.playground.timings.answered !== undefined")
        buttons = await controls(cdp)  # connecting: Disconnect cancels, the rest waits
        assert not buttons["disconnect"]["disabled"] and buttons["connect"]["disabled"] and buttons["send"]["disabled"]
        assert_disabled_look_disabled(buttons)
        notice = await cdp.wait_for("!document.getElementById('notice').hidden && "
                                    "document.getElementById('notice').textContent", timeout=10)
        assert notice.startswith("could not connect: "), notice
        await cdp.wait_for("!document.getElementById('connect').disabled")
        assert await cdp.evaluate("document.getElementById('disconnect').disabled")
        await screenshot(cdp, "playground-ice-failed.png")
        await cdp.close()
    assert not server.killed and server.proc.returncode == 0, server.proc.returncode


async def _conversation_end_states(tmp: Path, http: aiohttp.ClientSession, devtools: int) -> None:
    async with playground(tmp, "ok") as (server, url):
        first = await page(http, devtools, url)
        assert_disabled_look_disabled(await controls(first))
        await click(first, "connect")
        await first.wait_for("window.playground.connected")
        # the fake microphone speaks; the whole answer's text arrives at once, its audio plays for 6 s
        await first.wait_for("window.playground.agentStates.includes('speaking') && "
                             "window.playground.transcripts.some(t => t.role === 'agent')")
        assert_disabled_look_disabled(await controls(first))
        # (a turn's metrics come once its answer was played or cut: none yet)
        assert not await first.evaluate("window.playground.metrics.some(m => m.interrupted)")
        await click(first, "interrupt")
        await first.wait_for("document.querySelector('#transcript li.interrupted') && "
                             "document.querySelector('#metrics tr.interrupted')")
        marks = await first.evaluate("""({
            transcript: [...document.querySelectorAll('#transcript li.interrupted')].map(li => li.textContent),
            rows: [...document.querySelectorAll('#metrics tr.interrupted')].map(tr => tr.innerText),
        })""")
        assert marks["transcript"] == ["A long answer that goes on and on."], marks
        assert len(marks["rows"]) == 1 and "user (cut at " in marks["rows"][0], marks  # the metrics say where
        await screenshot(first, "playground-interrupted.png")

        # a second tab at the same time: the server's output says which conversation each line is from
        second = await page(http, devtools, url)
        await click(second, "connect")
        await second.wait_for("window.playground.connected")
        ids = [await tab.evaluate("window.playground.id") for tab in (first, second)]
        for conn in ids:
            await server.line(rf"^\[conn {conn[:8]}\] agent speaking$")

        await click(first, "disconnect")
        after = await first.evaluate("""({
            user: document.getElementById('user-state').textContent,
            agent: document.getElementById('agent-state').textContent,
            classes: document.getElementById('agent-state').className + '|' + document.getElementById('user-state').className,
            meters: [document.getElementById('mic-level').value, document.getElementById('agent-level').value],
            connection: document.getElementById('connection').textContent,
        })""")
        assert after == {"user": "-", "agent": "-", "classes": "badge|badge", "meters": [0, 0],
                         "connection": "disconnected"}, after
        buttons = await controls(first)
        assert not buttons["connect"]["disabled"] and all(buttons[b]["disabled"] for b in ("interrupt", "send"))
        assert_disabled_look_disabled(buttons)
        await screenshot(first, "playground-after-disconnect.png")
        await server.line(rf"^\[conn {ids[0][:8]}\] ended: disconnected from the page$")

        # the second tab is closed without Disconnect
        with contextlib.suppress(ConnectionError, AssertionError):
            await second.call("Page.close")
        await server.line(rf"^\[conn {ids[1][:8]}\] ended: ")
        await first.close()
        await second.close()
    output = "\n".join(server.out + server.err)
    assert "Task exception was never retrieved" not in output and "Traceback" not in output, output
    assert "aioice" not in output, output  # its INFO lines (every ICE check) are silenced
    untagged = [x for x in server.out if x.startswith(("agent ", "ended:"))]
    assert not untagged, untagged
