"""DeepgramSTT against a local server speaking Deepgram's protocol, through the official SDK."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agentsession import STT, AudioFrame, ModelError
from agentsession.plugin import SpeechEvent, SpeechStream
from agentsession.testing import STTContract, STTStreamContract, frames_of, tone
from agentsession_deepgram import DeepgramSTT
from agentsession_deepgram.fake import API_KEY, FakeDeepgramServer


class OnFakeServer:
    server: FakeDeepgramServer

    @pytest.fixture(autouse=True)
    def _server(self, deepgram: FakeDeepgramServer) -> None:
        self.server = deepgram


class TestDeepgramSTTContract(OnFakeServer, STTContract):
    async def create_stt(self) -> STT:
        return DeepgramSTT()


class TestDeepgramStreamContract(OnFakeServer, STTStreamContract):
    async def create_stt(self) -> STT:
        return DeepgramSTT()


class TestDeepgramStreamWithoutEndpointingContract(OnFakeServer, STTStreamContract):
    """Endpointing off: UtteranceEnd, Finalize (flush) and CloseStream end the utterances."""

    async def create_stt(self) -> STT:
        return DeepgramSTT(endpointing=0, utterance_end_ms=1000)


def speak(stream: SpeechStream, seconds: float = 0.75, silence: float = 0.8, rate: int = 16000) -> None:
    for frame in frames_of(tone(seconds, rate)) + frames_of(AudioFrame.silence(silence, rate)):
        stream.push_audio(frame)


async def read_until(stream: SpeechStream, n_finals: int, timeout: float = 5.0) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)
            if sum(e.type == "final" for e in events) == n_finals:
                return

    await asyncio.wait_for(read(), timeout)
    return events


async def test_the_live_request_carries_the_options_and_events_map_onto_speech_events(
        deepgram: FakeDeepgramServer) -> None:
    deepgram.transcripts = ["Hello there, how are you today?", "Fine thanks."]
    stt = DeepgramSTT(model="nova-3", language="fr", endpointing=300, keyterm=["Paris"], smart_format=False)
    stream = stt.stream()
    try:
        speak(stream, seconds=1.2)
        speak(stream, seconds=0.5)
        events = await read_until(stream, 2)
    finally:
        await stream.aclose()
        await stt.aclose()
    (session,) = deepgram.sessions
    assert {k: session.query[k] for k in ("model", "language", "encoding", "sample_rate", "channels", "endpointing",
                                          "interim_results", "vad_events", "utterance_end_ms", "smart_format",
                                          "keyterm", "filler_words")} == {
        "model": "nova-3", "language": "fr", "encoding": "linear16", "sample_rate": "16000", "channels": "1",
        "endpointing": "300", "interim_results": "true", "vad_events": "true", "utterance_end_ms": "1000",
        "smart_format": "false", "keyterm": "Paris", "filler_words": "true"}
    kinds = [e.type for e in events]
    first = kinds[: kinds.index("final") + 1]
    assert first[0] == "speech_started" and first[-2:] == ["speech_stopped", "final"] and "interim" in first
    finals = [e for e in events if e.type == "final"]
    assert [f.text for f in finals] == ["Hello there, how are you today?", "Fine thanks."]
    assert finals[0].utterance_id != finals[1].utterance_id
    interims = [e.text for e in events if e.type == "interim" and e.utterance_id == finals[0].utterance_id]
    assert interims == sorted(interims, key=len) and "Hello there, how are you today?".startswith(interims[0])
    starts = [e.position for e in events if e.type == "speech_started"]
    stops = [e.position for e in events if e.type == "speech_stopped"]
    assert starts == [0.0, pytest.approx(2.0, abs=0.03)]  # 1.2 s of speech and 0.8 s of silence before the 2nd
    assert stops[0] == pytest.approx(1.2, abs=0.03)


async def test_flush_sends_finalize_and_the_answer_ends_the_utterance(deepgram: FakeDeepgramServer) -> None:
    stt = DeepgramSTT(endpointing=0, utterance_end_ms=None)  # nothing but our flush ends an utterance
    stream = stt.stream()
    try:
        speak(stream, silence=0.1)
        stream.flush()
        events = await read_until(stream, 1)
    finally:
        await stream.aclose()
        await stt.aclose()
    assert deepgram.sessions[0].controls == ["Finalize"]
    assert [e.text for e in events if e.type == "final"] == [deepgram.transcript]
    assert deepgram.sessions[0].of_type("Results")[-1]["from_finalize"] is True


async def test_keepalive_goes_out_while_no_audio_is_sent(deepgram: FakeDeepgramServer) -> None:
    stt = DeepgramSTT(keepalive_interval=0.05)
    stream = stt.stream()
    try:
        await asyncio.wait_for(deepgram.connected.wait(), 5)
        await asyncio.wait_for(deepgram.sessions[0].keepalive.wait(), 5)
        speak(stream)
        stream.end_input()
        events = [e async for e in stream]
    finally:
        await stream.aclose()
        await stt.aclose()
    assert [e.text for e in events if e.type == "final"] == [deepgram.transcript]
    assert deepgram.sessions[0].controls[-1] == "CloseStream"


async def test_a_dropped_connection_is_reopened_and_the_utterance_keeps_its_words(deepgram: FakeDeepgramServer) -> None:
    deepgram.drop_after = 0.5  # mid-utterance
    stt = DeepgramSTT(reconnect_delay=0.01)
    stream = stt.stream()
    try:
        speak(stream, seconds=1.0)
        events = await read_until(stream, 1)
        speak(stream, seconds=0.5)
        stream.end_input()
        events += [e async for e in stream]
    finally:
        await stream.aclose()
        await stt.aclose()
    assert len(deepgram.sessions) == 2 and stream.connections == 2
    first, second = deepgram.sessions
    assert first.audio_seconds == pytest.approx(0.5, abs=0.03)
    assert second.audio_seconds == pytest.approx(1.8 + 1.3, abs=0.03)  # the whole utterance again, then the rest
    finals = [e for e in events if e.type == "final"]
    assert [f.text for f in finals] == [deepgram.transcript] * 2
    assert [e.position for e in events if e.type == "speech_started"] == [0.0, pytest.approx(1.8, abs=0.03)]


async def test_a_missing_key_is_a_clear_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    stt = DeepgramSTT()
    with pytest.raises(ModelError, match="DEEPGRAM_API_KEY"):
        await stt.transcribe(tone(0.5, 16000))
    stream = stt.stream()
    with pytest.raises(ModelError, match="DEEPGRAM_API_KEY"):
        [e async for e in stream]
    await stt.aclose()


async def test_a_wrong_key_fails_the_stream_and_never_shows_the_key(
        deepgram: FakeDeepgramServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "dg-wrong-key-0123456789abcdefghij"
    caplog.set_level(logging.DEBUG)
    stt = DeepgramSTT(api_key=secret)
    stream = stt.stream()
    with pytest.raises(ModelError) as failure:
        [e async for e in stream]
    assert failure.value.code == "invalid_api_key" and not failure.value.recoverable
    with pytest.raises(ModelError) as failure:
        await stt.transcribe(tone(0.5, 16000))
    assert failure.value.code == "invalid_api_key"
    await stt.aclose()
    assert secret not in caplog.text and secret not in repr(stt) and secret not in str(failure.value)
    assert API_KEY not in repr(DeepgramSTT(api_key=API_KEY))


def test_base_url_forms() -> None:
    from agentsession_deepgram._client import environment

    env = environment("wss://api.deepgram.com/v1/listen")  # VideoSDK's base_url
    assert (env.base, env.production) == ("https://api.deepgram.com", "wss://api.deepgram.com")
    env = environment("http://127.0.0.1:8080")
    assert (env.base, env.production) == ("http://127.0.0.1:8080", "ws://127.0.0.1:8080")
    with pytest.raises(ValueError, match="base URL"):
        environment("api.deepgram.com")
