"""GeminiRealtime's link liveness against the local Live server made to fail: stalls, a slow-loris, refusals.

On core's virtual clock (real TLS sockets on loopback, virtual time), so the default bounds (10 s for an
answer, 15 s of silence, 2 s to close) are checked as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection

from agentsession import (
    AgentAudio,
    AudioFrame,
    ChatContext,
    Error,
    ModelOptions,
    PipelineEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    UserSpeechStarted,
    UserTranscript,
)
from agentsession.testing import virtual_clock
from agentsession_gemini import GeminiRealtime
from agentsession_gemini.fake import FakeLiveServer

KEY = "test-key-0123456789abcdef"
RATE = 16000
TICK = 0.5


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """Every event of a model with the loop time it came at."""

    def __init__(self, model: GeminiRealtime) -> None:
        self.events: list[tuple[float, PipelineEvent]] = []
        self._changed = asyncio.Event()
        model.channel.attach(self._sink)

    def _sink(self, event: PipelineEvent | None) -> None:
        if event is not None:
            self.events.append((asyncio.get_running_loop().time(), event))
            self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def until(self, accept: Callable[[PipelineEvent], bool], timeout: float = 120.0) -> tuple[float, Any]:
        async def find() -> tuple[float, Any]:
            while True:
                found = next(((t, e) for t, e in self.events if accept(e)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)


def is_(kind: type[Any], **fields: Any) -> Callable[[PipelineEvent], bool]:
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())


async def started(server: FakeLiveServer, **kwargs: Any) -> tuple[GeminiRealtime, Recorder]:
    model = GeminiRealtime(api_key=KEY, http_options=server.http_options(), **kwargs)
    recorder = Recorder(model)
    await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
    return model, recorder


def quiet_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Audio below any VAD's threshold, but unique sample by sample (so order and loss can be checked)."""
    return np.random.default_rng(seed).integers(-200, 200, int(seconds * RATE)).astype(np.int16)


def voice(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


async def speak(model: GeminiRealtime, pcm: np.ndarray) -> None:
    """Push ``pcm`` in real (virtual) time, 20 ms at a time."""
    n = RATE // 50
    for i in range(0, len(pcm), n):
        model.push_audio(AudioFrame(pcm[i : i + n].reshape(-1, 1), RATE))
        await asyncio.sleep(0.02)


def client_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks of the model or its websocket (not the fake server's)."""
    out = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, GeminiRealtime | ClientConnection) or task.get_name().startswith(
                ("gemini-live", "agentsession:gemini")):
            out.append(task)
    return out


async def tasks_left() -> list[asyncio.Task[Any]]:
    """The client's tasks still there once those close() cancelled (websockets' keepalive, say) have ended."""
    cancelled = [task for task in client_tasks() if task.cancelling()]
    if cancelled:
        await asyncio.wait(cancelled, timeout=0.01)
    return client_tasks()


@virtual_clock
async def test_a_server_that_stalls_during_the_models_turn_is_left_after_stall_timeout() -> None:
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:  # an 80 s answer in real time
        model, rec = await started(server)
        try:
            first = server.current
            await model.send_text("Tell me a long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            loop = asyncio.get_running_loop()
            server.stall()
            stalled_at = loop.time()
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - stalled_at <= model.stall_timeout + TICK + 0.2
            assert reconnecting.attempt == 1
            assert reconnecting.reason.startswith("stalled: no server message for 15")
            assert "during the model's turn" in reconnecting.reason
            cut = [e for _, e in rec.events if isinstance(e, Error | ResponseDone)]
            assert isinstance(cut[0], Error) and cut[0].code == "connection_lost"
            assert cut[1:] == [ResponseDone(interrupted=True, response_id="a")]
            back_at, back = await rec.until(is_(Reconnected))
            assert back.downtime == pytest.approx(back_at - at, abs=0.01) and back.audio_lost == 0.0
            assert server.current is not first
            server.reply_chunks, server.chunk_delay = 3, 0.0
            await model.send_text("Again.", response_id="b")
            await rec.until(is_(ResponseDone, response_id="b"))
        finally:
            await model.close()


@virtual_clock
async def test_a_request_with_no_answer_within_response_timeout_is_a_stall_and_is_asked_again() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server)
        try:
            loop = asyncio.get_running_loop()
            server.stall()
            asked_at = loop.time()
            await model.send_text("Hello?", response_id="a")
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.response_timeout <= at - asked_at <= model.response_timeout + TICK + 0.2
            assert reconnecting.reason == "stalled: no answer to a request in 10 s"
            _, done = await rec.until(is_(ResponseDone, response_id="a"))
            assert not done.interrupted and len(server.connections) == 2
        finally:
            await model.close()


@virtual_clock
async def test_voice_with_no_server_message_is_a_stall_and_the_turn_is_heard_after_the_reconnect() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server, stall_timeout=5.0)  # within outage_buffer: all of it is kept
        try:
            loop = asyncio.get_running_loop()
            await speak(model, quiet_noise(2.0))
            first = server.stall()
            said = np.concatenate([voice(1.0), np.zeros(30 * RATE, np.int16)])
            spoke_at = loop.time()
            speaking = asyncio.ensure_future(speak(model, said))
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - spoke_at <= model.stall_timeout + TICK + 0.2
            assert "while the user spoke" in reconnecting.reason
            _, back = await rec.until(is_(Reconnected))
            assert back.audio_lost == 0.0
            await rec.until(is_(UserTranscript, text="hello gemini", final=True))  # the new connection heard it
            await rec.until(is_(ResponseDone))
            # what was sent since the server last said anything (its handle, at connect) went again, in order
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            assert np.array_equal(heard[: 3 * RATE], np.concatenate([quiet_noise(2.0), voice(1.0)]))
            assert server.current is not first
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_a_turn_the_server_heard_begin_is_sent_whole_after_the_reconnect() -> None:
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:
        model, rec = await started(server, stall_timeout=5.0)
        try:
            await model.send_text("Tell me a long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            said = np.concatenate([quiet_noise(0.5, seed=5), voice(1.0), np.zeros(30 * RATE, np.int16)])
            speaking = asyncio.ensure_future(speak(model, said))
            await rec.until(is_(UserSpeechStarted))  # the server heard the user over its answer ("interrupted")
            server.stall()  # mid-sentence, after messages that came while the turn was under way
            await rec.until(is_(Reconnected))
            await rec.until(is_(UserTranscript, text="hello gemini", final=True))
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            onset = int(np.argmax(np.abs(heard) > 1000)) - 1  # the voice's first sample is 0
            assert np.array_equal(heard[onset : onset + RATE], voice(1.0))  # the whole turn, from its start
            assert onset <= int(0.35 * RATE)  # with a little lead-in, not all that came before
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_a_quiet_room_is_not_a_stall() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server)
        try:
            await speak(model, quiet_noise(60.0))
            await server.wait_audio(server.current, 60 * RATE * 2)
            assert not rec.of(Reconnecting) and len(server.connections) == 1
        finally:
            await model.close()


@virtual_clock
async def test_a_slow_loris_server_is_left_after_stall_timeout() -> None:
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:
        model, rec = await started(server)
        try:
            await model.send_text("Tell me a long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            loop = asyncio.get_running_loop()
            server.trickle()
            trickled_at = loop.time()
            at, _ = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - trickled_at <= model.stall_timeout + TICK + 0.2
            assert rec.of(ResponseDone) == [ResponseDone(interrupted=True, response_id="a")]
            await rec.until(is_(Reconnected))
        finally:
            await model.close()


@pytest.mark.parametrize("fault", ["stall", "trickle"])
@virtual_clock
async def test_close_is_bounded_whatever_the_socket_does(fault: str) -> None:
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:
        model, rec = await started(server)
        await model.send_text("Tell me a long story.", response_id="a")
        await rec.until(is_(AgentAudio))
        getattr(server, fault)()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await model.close()
        assert loop.time() - began <= model.close_timeout + 0.1  # websockets alone would wait 10 s
        assert await tasks_left() == []


@virtual_clock
async def test_close_during_a_reconnect_is_bounded() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server)
        server.stall()
        server.stall_new = True  # the next connection is accepted, then never set up
        await model.send_text("Hello?", response_id="a")
        await rec.until(is_(Reconnecting))
        await server.wait_connections(2, timeout=5.0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await model.close()
        assert loop.time() - began <= model.close_timeout + 0.1
        assert await tasks_left() == []


@virtual_clock
async def test_a_reconnect_that_stalls_in_its_setup_fails_within_connect_timeout() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server, connect_timeout=5.0, max_reconnects=5)
        try:
            server.stall_new = True
            server.drop()
            at, _ = await rec.until(is_(Reconnecting, attempt=1))
            at2, second = await rec.until(is_(Reconnecting, attempt=2))
            # the 0.5 s backoff, the 5 s bound on the setup, and websockets' closing handshake (2 s, not 10 s)
            assert at2 - at <= 0.5 + 5.0 + model.close_timeout + 0.2
            assert second.reason.startswith("attempt failed: TimeoutError")
            server.stall_new = False
            await rec.until(is_(Reconnected))
        finally:
            await model.close()


@pytest.mark.parametrize(("outage_buffer", "lost"), [(10.0, 1.0), (20.0, 0.0)])
@virtual_clock
async def test_audio_during_an_outage_is_sent_after_the_reconnect_and_what_did_not_fit_is_reported(
    outage_buffer: float, lost: float
) -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server, reconnect_delay=1.0, max_reconnects=5, outage_buffer=outage_buffer)
        try:
            loop = asyncio.get_running_loop()
            first = server.current
            server.refuse = 3  # three attempts refused, the fourth gets in: 1 + 2 + 4 + 5 s down
            server.drop()
            await rec.until(is_(Reconnecting, attempt=1))
            dropped_at = loop.time()
            said = quiet_noise(11.0, seed=1)
            await speak(model, said)  # all of it while the link is down
            assert not rec.of(Reconnected)
            at, back = await rec.until(is_(Reconnected))
            assert [e.attempt for e in rec.of(Reconnecting)] == [1, 2, 3, 4]
            assert all("1011" in e.reason for e in rec.of(Reconnecting)[1:])
            assert back.downtime == pytest.approx(12.0, abs=0.3) and at - dropped_at == pytest.approx(12.0, abs=0.3)
            assert back.audio_lost == pytest.approx(lost, abs=1e-6) and model.audio_lost == back.audio_lost
            second = server.current
            assert second is not first
            kept = said[int(lost * RATE) :]
            await server.wait_audio(second, 2 * len(kept))
            received = b"".join(m.realtime_input.audio.data or b"" for m in second.messages
                                if m.realtime_input is not None and m.realtime_input.audio is not None)
            assert np.array_equal(np.frombuffer(received, np.int16), kept)  # in order, nothing twice
        finally:
            await model.close()
