"""GeminiRealtime's link where the Live protocol has its own say: turns heard by the local VAD, setup stalls,
messages the SDK cannot read, ``goAway``.

The faults every link shares are the core contract's, in ``test_link.py``. On core's virtual clock (real TLS
sockets on loopback, virtual time).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from agentsession import (
    AgentAudio,
    ChatContext,
    Error,
    ModelOptions,
    Reconnected,
    Reconnecting,
    ResponseDone,
    UserSpeechStarted,
    UserTranscript,
    testing,
)
from agentsession.testing import EventRecorder, is_event, push_in_time, virtual_clock, voice_pcm
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


async def started(server: FakeLiveServer, **kwargs: Any) -> tuple[GeminiRealtime, EventRecorder]:
    model = GeminiRealtime(api_key=KEY, http_options=server.http_options(), **kwargs)
    recorder = EventRecorder(model)
    await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
    return model, recorder


def quiet_noise(seconds: float, seed: int = 0) -> np.ndarray:
    return testing.quiet_noise(seconds, RATE, seed)


def voice(seconds: float) -> np.ndarray:
    return voice_pcm(seconds, RATE)


async def speak(model: GeminiRealtime, pcm: np.ndarray) -> None:
    await push_in_time(model, pcm, RATE)


@virtual_clock
async def test_a_turn_the_server_heard_begin_is_sent_whole_after_the_reconnect() -> None:
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:
        model, rec = await started(server, stall_timeout=5.0)
        try:
            await model.send_text("Tell me a long story.", response_id="a")
            await rec.until(is_event(AgentAudio))
            said = np.concatenate([quiet_noise(0.5, seed=5), voice(1.0), np.zeros(30 * RATE, np.int16)])
            speaking = asyncio.ensure_future(speak(model, said))
            await rec.until(is_event(UserSpeechStarted))  # the server heard the user over its answer ("interrupted")
            server.stall()  # mid-sentence, after messages that came while the turn was under way
            await rec.until(is_event(Reconnected))
            await rec.until(is_event(UserTranscript, text="hello gemini", final=True))
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            onset = int(np.argmax(np.abs(heard) > 1000)) - 1  # the voice's first sample is 0
            assert np.array_equal(heard[onset : onset + RATE], voice(1.0))  # the whole turn, from its start
            assert onset <= int(0.35 * RATE)  # with a little lead-in, not all that came before
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_a_reconnect_that_stalls_in_its_setup_fails_within_connect_timeout() -> None:
    async with FakeLiveServer() as server:
        model, rec = await started(server, connect_timeout=5.0, max_reconnects=5)
        try:
            server.stall_new = True
            server.drop()
            at, _ = await rec.until(is_event(Reconnecting, attempt=1))
            at2, second = await rec.until(is_event(Reconnecting, attempt=2))
            # the 0.5 s backoff, the 5 s bound on the setup, and websockets' closing handshake (2 s, not 10 s)
            assert at2 - at <= 0.5 + 5.0 + model.close_timeout + 0.2
            assert second.reason.startswith("attempt 1 failed: TimeoutError")
            server.stall_new = False
            await rec.until(is_event(Reconnected))
        finally:
            await model.close()



# ---------------------------------------------------------------------- what the server sends mid-answer


@pytest.mark.parametrize("message", [
    '{"someFutureField": {"detail": 1}}',  # a shape this SDK does not know (it raises TypeError)
    '{"serverContent": "garbage"}',  # a known field of the wrong shape
    "not json {",  # a garbage frame
])
@virtual_clock
async def test_a_message_the_sdk_cannot_read_is_skipped_and_the_answer_goes_on(message: str) -> None:
    async with FakeLiveServer(reply_chunks=50, chunk_delay=0.04) as server:
        model, rec = await started(server)
        try:
            await model.send_text("Tell me a story.", response_id="a")
            await rec.until(is_event(AgentAudio))
            await server.send_raw(message)
            _, done = await rec.until(is_event(ResponseDone, response_id="a"))
            assert not done.interrupted
            assert not rec.of(Reconnecting) and not rec.of(Error) and len(server.connections) == 1
            assert sum(e.frame.duration for e in rec.of(AgentAudio)) == pytest.approx(50 * 0.04)  # all of it
        finally:
            await model.close()


@virtual_clock
async def test_go_away_mid_answer_is_a_planned_handover_that_keeps_the_answer() -> None:
    async with FakeLiveServer(reply_chunks=50, chunk_delay=0.04) as server:  # a 2 s answer
        model, rec = await started(server)
        try:
            first = server.current
            await model.send_text("Tell me a story.", response_id="a")
            await rec.until(is_event(AgentAudio))
            await server.go_away(first, time_left="10s")
            _, done = await rec.until(is_event(ResponseDone, response_id="a"))
            assert not done.interrupted
            assert sum(e.frame.duration for e in rec.of(AgentAudio)) == pytest.approx(50 * 0.04)  # all of it
            second = await server.wait_connections(2)  # then the handover, resuming the session
            assert second.setup.session_resumption is not None and second.setup.session_resumption.handle
            assert not rec.of(Reconnecting) and not rec.of(Error)
            server.reply_chunks, server.chunk_delay = 3, 0.0
            await model.send_text("Still there?", response_id="b")
            await rec.until(is_event(ResponseDone, response_id="b"))
            assert len(server.connections) == 2
        finally:
            await model.close()
