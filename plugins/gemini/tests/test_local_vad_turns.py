"""Gemini Live reports no user speech: the session's own VAD hears the user. Every order of that VAD's start/stop
and Gemini's answer (output transcription, audio, turn complete), sent by the local Live server over the real
protocol to the real SDK, gives one answered turn: never THINKING after the answer played, nothing left waiting
10 s, the wake-up re-armed (the same orders and checks as core's ``test_local_vad_turns``)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from google.genai import types

from agentsession import Agent, AgentSession, AudioFrame, EnergyVAD, RealTimePipeline
from agentsession.testing import LOCAL_VAD_ORDERS, CuedVAD, FakeTransport, TurnWatch, tone, virtual_clock
from agentsession_gemini import GeminiRealtime
from agentsession_gemini.fake import FakeLiveServer, tone_pcm

STEP = 0.1  # seconds between two events (under the session's late-VAD grace)
UTTERANCE = 0.8  # the VAD hears the user at least this long (a barge-in on the answer would be confirmed)
ANSWER = 0.6  # seconds of Gemini's answer audio
WAKE_UP = 3.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "SSL_CERT_FILE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def content(**fields: object) -> types.LiveServerMessage:
    return types.LiveServerMessage(server_content=types.LiveServerContent(**fields))  # type: ignore[arg-type]


MESSAGES = {
    "transcript": lambda: content(output_transcription=types.Transcription(text="the answer")),
    "audio": lambda: content(model_turn=types.Content(role="model", parts=[types.Part(
        inline_data=types.Blob(data=tone_pcm(ANSWER), mime_type="audio/pcm;rate=24000"))])),
    "done": lambda: content(turn_complete=True),
}


@pytest.mark.parametrize("order", LOCAL_VAD_ORDERS, ids=["-".join(o) for o in LOCAL_VAD_ORDERS])
@virtual_clock
async def test_every_order_of_the_session_vad_and_geminis_answer_gives_one_answered_turn(
        order: tuple[str, ...]) -> None:
    async with FakeLiveServer() as server:
        server.silence_ms = 10**9  # it answers when the test says so, not on its own
        model = GeminiRealtime(api_key="local-vad-test-key-123456", http_options=server.http_options())
        vad = CuedVAD()
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(Agent(instructions="You answer."), RealTimePipeline(model), wake_up=WAKE_UP, vad=vad)
        watch = TurnWatch().attach(session)
        await session.start(transport=transport)
        try:
            await server.wait_connections(1)
            await transport.feed(AudioFrame(np.zeros((16000, 1), np.int16), 16000), realtime=False)
            await asyncio.sleep(0.5)
            frame = AudioFrame(np.zeros((320, 1), np.int16), 16000)
            for event in order:
                if event in ("vad_start", "vad_stop"):
                    vad.cue("start" if event == "vad_start" else "end")
                    transport.push_audio(frame)
                else:
                    await server.send(MESSAGES[event]())
                await asyncio.sleep(UTTERANCE if event == "vad_start" else STEP)
            await asyncio.sleep(ANSWER + 1.0)
            assert session.agent_state.value == "idle", watch.states
            await asyncio.sleep(12.0)  # past the session's UNANSWERED_AFTER
            watch.assert_one_answered_turn(WAKE_UP)
            assert not server.protocol_errors
        finally:
            await session.close()
            await transport.close()


@pytest.mark.parametrize("silence_ms", [200, 900], ids=["gemini-answers-before-the-vad-stop", "after-it"])
@virtual_clock
async def test_a_spoken_turn_answered_before_or_after_the_session_vad_heard_its_end(silence_ms: int) -> None:
    """The server's own end of turn (``silence_ms``) before or after the session's EnergyVAD reports the end of
    speech (0.5 s of silence): one answered turn either way, and its e2e counts from the end of the speech."""
    async with FakeLiveServer(chunk_delay=0.05, reply_chunks=20) as server:  # a 0.8 s answer
        server.silence_ms = silence_ms
        model = GeminiRealtime(api_key="local-vad-test-key-123456", http_options=server.http_options())
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(Agent(instructions="You answer."), RealTimePipeline(model), wake_up=WAKE_UP,
                               vad=EnergyVAD())
        watch = TurnWatch().attach(session)
        await session.start(transport=transport)
        try:
            await server.wait_connections(1)
            speech = np.concatenate([tone(0.6, 24000, 300).data, AudioFrame.silence(2.0, 24000).data])
            await transport.feed(AudioFrame(speech, 24000))
            await asyncio.sleep(12.0)
            watch.assert_one_answered_turn(WAKE_UP)
            # the user waited from the end of their speech: the server's silence, then its first audio
            assert silence_ms / 1000 <= watch.metrics[0]["e2e"] <= silence_ms / 1000 + 0.1
            assert not server.protocol_errors
        finally:
            await session.close()
            await transport.close()
