"""End to end in a real browser: headless Chromium opens the playground page, its fake microphone plays
a spoken WAV (espeak-ng), an agent on FakeRealtimeModel + EnergyVAD answers; checked on both sides.

Run as root, the test re-runs itself inside a loopback-only network namespace
(``unshare -n sh -c 'ip link set lo up; exec python -m pytest <this test>'``) so nothing can leave the
machine; elsewhere it runs in the current namespace. The page's screenshot goes to ``tests/artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentsession import (
    Agent,
    AgentSession,
    AudioFrame,
    EnergyVAD,
    JobContext,
    RealTimePipeline,
    Transport,
    UserTranscript,
    function_tool,
)
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall
from agentsession_webrtc import PlaygroundMode

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NETNS_ENV = "AGENTSESSION_TEST_NETNS"
ARTIFACTS = Path(__file__).parent / "artifacts"
SPEECH = "Hello agent. What is the weather like in Paris today?"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
    pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"),
]


class HearingModel(FakeRealtimeModel):
    """FakeRealtimeModel that also reports each utterance as a transcript and records what it heard."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.utterances = 0
        self.loudest_db = -200.0

    def push_audio(self, frame: AudioFrame) -> None:
        assert self.vad is not None
        was_speaking = self.vad.speaking
        self.loudest_db = max(self.loudest_db, EnergyVAD.level_db(frame))
        super().push_audio(frame)
        if was_speaking and not self.vad.speaking:
            self.utterances += 1
            self.channel.emit(UserTranscript(f"(utterance {self.utterances})", final=True))


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Answer about the weather.")

    @function_tool
    async def get_weather(self, city: str) -> dict[str, Any]:
        """The weather in a city.

        Args:
            city: the city
        """
        return {"city": city, "sky": "sunny", "temp_c": 21}


def _speech_wav(directory: Path) -> Path:
    raw, wav = directory / "speech-22k.wav", directory / "speech-48k.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), SPEECH], check=True)
    # 48 kHz mono 16-bit, 1.5 s of silence after the sentence so each loop of the fake mic ends a turn
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(wav), "pad", "0", "1.5"], check=True)
    return wav


class CDP:
    """A minimal Chrome DevTools protocol client over aiohttp's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.ensure_future(self._read())

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = fut
        await self.ws.send_str(json.dumps({"id": self._next, "method": method, "params": params}))
        return await asyncio.wait_for(fut, 30)

    async def evaluate(self, expression: str, *, user_gesture: bool = False) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                                 userGesture=user_gesture)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(details.get("exception", {}).get("description") or details)
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 20.0) -> Any:
        """Wait (in the page) until the JS ``condition`` is truthy; fail with the page's state on timeout."""
        return await self.evaluate(f"""new Promise((resolve, reject) => {{
            const t0 = performance.now();
            const tick = () => {{
                let value; try {{ value = ({condition}); }} catch (e) {{}}
                if (value) resolve(value);
                else if (performance.now() - t0 > {timeout * 1000}) reject(new Error(
                    "timed out waiting for: {condition.replace('"', "'")}; page state: " + JSON.stringify(
                    {{...window.playground, events: window.playground.events.slice(-20)}})));
                else setTimeout(tick, 50);
            }};
            tick();
        }})""")

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            data = message.json()
            fut = self._pending.pop(data.get("id", -1), None)
            if fut is not None and not fut.done():
                if "error" in data:
                    fut.set_exception(AssertionError(f"CDP error: {data['error']}"))
                else:
                    fut.set_result(data.get("result", {}))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the DevTools connection closed"))


@contextlib.asynccontextmanager
async def chromium(wav: Path, profile: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """Headless Chromium with a fake microphone playing ``wav``, on a blank page; killed on exit."""
    scratch = tempfile.mkdtemp(prefix="as-chromium-")  # its lock socket's folder: a short path (108 bytes at most)
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required", "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", "--window-size=1280,900", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env={**os.environ, "TMPDIR": scratch},
    )
    log: list[str] = []
    try:
        assert proc.stderr is not None
        port = 0
        async with asyncio.timeout(20):
            while not port:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("chromium exited:\n" + "".join(log))
                log.append(line)
                if found := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                    port = int(found.group(1))
        drain = asyncio.ensure_future(_drain(proc.stderr, log))
        try:
            yield proc, port
        finally:
            drain.cancel()
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


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))
        del log[:-200]


def _should_reexec() -> bool:
    tools = shutil.which("unshare") is not None and shutil.which("ip") is not None
    return os.environ.get(NETNS_ENV) != "1" and os.geteuid() == 0 and tools


async def test_playground_in_a_real_browser(request: pytest.FixtureRequest) -> None:
    if _should_reexec():
        await _run_in_loopback_namespace(request)
        return
    with tempfile.TemporaryDirectory(prefix="agentsession-chromium-") as tmp:
        await _browser_conversation(Path(tmp))


async def _run_in_loopback_namespace(request: pytest.FixtureRequest) -> None:
    script = 'ip link set lo up && exec "$@"'
    test_id = f"{request.path}::{request.node.name}"
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-n", "sh", "-c", script, "sh", sys.executable, "-m", "pytest", test_id, "-q", "-x",
        cwd=str(request.config.rootpath), env={**os.environ, NETNS_ENV: "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"the browser test failed in its network namespace:\n{text}"
    assert " passed" in text, text


async def _browser_conversation(tmp: Path) -> None:
    wav = _speech_wav(tmp)
    model = HearingModel(
        [FakeResponse(text="Let me check the weather.", audio=0.8,
                      tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
                      then=FakeResponse(text="It is sunny in Paris, 21 degrees.", audio=1.5))],
        default=FakeResponse(text="Anything else? I can tell you about the wind, too.", audio=4.0),
        vad=EnergyVAD(threshold_db=-45.0, min_silence=0.6), speed=1.5,
    )
    shutdown: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(WeatherAgent(), RealTimePipeline(model), allow_interruptions=False)
        await ctx.connect()
        await session.start()
        reason = await ctx.wait_for_shutdown()
        if not shutdown.done():
            shutdown.set_result(reason)
        await session.close()
        await ctx.shutdown()

    async def run_job(transport: Transport | None) -> None:
        await entrypoint(JobContext(transport=transport))

    # the first session.start() in a process imports every installed plugin (seconds, on the event loop):
    # do it now, as the worker does before serving, not in the middle of the browser's ICE checks
    warm = AgentSession(WeatherAgent(), RealTimePipeline(FakeRealtimeModel()))
    await warm.start()
    await warm.close()

    mode = PlaygroundMode(port=0, announce=lambda line: None)
    server = asyncio.ensure_future(mode.run(run_job))
    try:
        await asyncio.wait_for(mode.ready.wait(), 10)
        assert mode.server is not None
        async with chromium(wav, tmp / "profile") as (_, port):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json(content_type=None)
                page = next(t for t in targets if t["type"] == "page")
                ws = await http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
                cdp = CDP(ws)
                try:
                    await cdp.call("Page.navigate", url=mode.server.url)
                    await _converse(cdp, model, shutdown)
                finally:
                    await cdp.close()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


async def _converse(cdp: CDP, model: HearingModel, shutdown: asyncio.Future[str]) -> None:
    await cdp.wait_for("document.readyState === 'complete' && window.playground")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await cdp.evaluate("document.getElementById('connect').click()", user_gesture=True)
    await cdp.wait_for("window.playground.connected")
    connected = loop.time() - t0

    # the fake microphone speaks: the agent hears it, takes a turn, calls the tool, answers
    await cdp.wait_for("window.playground.userStates.includes('speaking')")
    await cdp.wait_for("window.playground.tools.some(t => t.name === 'get_weather')")
    await cdp.wait_for("window.playground.transcripts.some(t => t.role === 'agent' && t.text.includes('sunny'))")
    await cdp.wait_for("window.playground.metrics.some(m => m.trigger === 'user' && m.e2e !== null)")
    await cdp.wait_for("window.playground.stats.outputPeak > 0.05 && window.playground.stats.bytesReceived > 4000")

    # typing works too
    await cdp.evaluate("""(() => {
        document.getElementById('text').value = 'Will it rain tomorrow?';
        document.getElementById('text-form').requestSubmit();
    })()""", user_gesture=True)
    await cdp.wait_for("window.playground.transcripts.some(t => t.role === 'user' && t.text === 'Will it rain tomorrow?')")
    await cdp.wait_for("window.playground.agentStates.filter(s => s === 'speaking').length >= 2")
    # and so does the interrupt button, while the agent answers the typed text
    await cdp.evaluate("document.getElementById('interrupt').click()", user_gesture=True)
    await cdp.wait_for("window.playground.metrics.some(m => m.trigger === 'text' && m.interrupted)")
    await cdp.wait_for("document.querySelector('#transcript li.interrupted')")

    page = await cdp.evaluate("""({
        playground: {...window.playground, events: undefined},
        transcript: document.getElementById('transcript').innerText,
        agentState: document.getElementById('agent-state').textContent,
        tools: document.getElementById('tools').innerText,
        metricsRows: document.querySelectorAll('#metrics tbody tr').length,
    })""")
    shot = await cdp.call("Page.captureScreenshot", format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "playground.png").write_bytes(base64.b64decode(shot["data"]))

    # the agent side: it heard speech-level audio and ended at least one turn with its VAD
    assert model.utterances >= 1
    assert model.received_audio > 2.0
    assert model.loudest_db > -30.0, f"the agent heard only {model.loudest_db:.1f} dBFS"
    assert model.texts == ["Will it rain tomorrow?"]
    assert model.interrupts, "the interrupt button did not reach the model"
    # the page side: states, transcripts, tool call, latency, the agent's audio
    states = page["playground"]["agentStates"]
    assert {"listening", "thinking", "speaking", "idle"} <= set(states), states
    assert "speaking" in page["playground"]["userStates"]
    assert "It is sunny in Paris" in page["transcript"] and "(utterance 1)" in page["transcript"]
    assert "get_weather" in page["tools"] and "sunny" in page["tools"]
    assert page["metricsRows"] >= 1
    assert page["playground"]["stats"]["bytesSent"] > 4000

    first = page["playground"]["metrics"][0]
    print(page["playground"]["timings"])
    print(f"connected in {connected * 1000:.0f} ms; first turn: end of turn {first['eou_delay'] * 1000:.0f} ms, "
          f"first audio {first['ttfa'] * 1000:.0f} ms, end to end {first['e2e'] * 1000:.0f} ms; "
          f"page received {page['playground']['stats']['bytesReceived']} bytes, output peak "
          f"{page['playground']['stats']['outputPeak']:.2f}; agent heard {model.received_audio:.1f} s, "
          f"loudest {model.loudest_db:.1f} dBFS")

    # closing the tab ends the job's transport, so ctx.wait_for_shutdown() returns
    with contextlib.suppress(ConnectionError):
        await cdp.call("Page.close")
    reason = await asyncio.wait_for(shutdown, 10)
    assert reason, "no shutdown reason"
