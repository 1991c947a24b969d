"""OpenAISTT.stream() against a local Realtime transcription server that speaks the SDK's protocol."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from agentsession import STT, AudioFrame, ModelError
from agentsession.plugin import SpeechEvent, SpeechStream
from agentsession.testing import STTStreamContract, frames_of, tone
from agentsession_openai import OpenAISTT
from agentsession_openai._stt_stream import OpenAISpeechStream
from agentsession_openai.fake.transcription import API_KEY, FakeTranscriptionServer


@pytest.fixture
async def stt_server() -> AsyncIterator[FakeTranscriptionServer]:
    async with FakeTranscriptionServer() as server:
        yield server
        assert server.protocol_errors == []


class OnFakeServer:
    server: FakeTranscriptionServer

    @pytest.fixture(autouse=True)
    def _server(self, stt_server: FakeTranscriptionServer) -> None:
        self.server = stt_server


class TestServerVADStreamContract(OnFakeServer, STTStreamContract):
    async def create_stt(self) -> STT:
        return OpenAISTT(api_key=API_KEY, base_url=self.server.base_url)


class TestClientCommitStreamContract(OnFakeServer, STTStreamContract):
    async def create_stt(self) -> STT:
        return OpenAISTT(api_key=API_KEY, base_url=self.server.base_url, turn_detection=None)


def speak(stream: SpeechStream, seconds: float = 0.75, silence: float = 0.8, rate: int = 16000) -> None:
    for frame in frames_of(tone(seconds, rate)) + frames_of(AudioFrame.silence(silence, rate)):
        stream.push_audio(frame)


async def read_all(stream: SpeechStream, timeout: float = 5.0) -> list[SpeechEvent]:
    async def read() -> list[SpeechEvent]:
        return [e async for e in stream]

    return await asyncio.wait_for(read(), timeout)


async def read_until(stream: SpeechStream, n_finals: int, timeout: float = 5.0) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)
            if sum(e.type == "final" for e in events) == n_finals:
                return

    await asyncio.wait_for(read(), timeout)
    return events


def stt_for(server: FakeTranscriptionServer, **kwargs: object) -> OpenAISTT:
    return OpenAISTT(api_key=API_KEY, base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


async def test_interim_deltas_then_a_final_with_the_server_s_speech_marks(stt_server: FakeTranscriptionServer) -> None:
    stt_server.transcripts = ["what is the weather"]
    stt = stt_for(stt_server, model="gpt-4o-transcribe", language="en", prompt="weather talk")
    assert stt.streaming
    stream = stt.stream()
    assert isinstance(stream, OpenAISpeechStream)
    speak(stream)
    stream.end_input()
    events = await read_all(stream)
    item = events[0].utterance_id
    assert [(e.type, e.text) for e in events] == [
        ("speech_started", ""),
        ("speech_stopped", ""),
        ("interim", "what"),
        ("interim", "what is"),
        ("interim", "what is the"),
        ("interim", "what is the weather"),
        ("final", "what is the weather"),
    ]
    assert all(e.utterance_id == item for e in events)
    assert events[0].position == 0.0
    assert events[1].position == pytest.approx(0.75, abs=0.03)
    session = stt_server.current.session["audio"]["input"]
    assert session["transcription"] == {"model": "gpt-4o-transcribe", "language": "en", "prompt": "weather talk"}
    assert session["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["turn_detection"]["type"] == "server_vad"
    assert stt_server.current.appended_ms == pytest.approx(1550, abs=25)  # 16 kHz in, 24 kHz on the wire
    await stt.aclose()


async def test_several_utterances_give_their_finals_in_order(stt_server: FakeTranscriptionServer) -> None:
    stt_server.transcripts = ["first one", "second one", "third one"]
    stt = stt_for(stt_server)
    stream = stt.stream()
    for _ in range(3):
        speak(stream)
    stream.end_input()
    events = await read_all(stream)
    assert [e.text for e in events if e.type == "final"] == ["first one", "second one", "third one"]
    assert [e.type for e in events].count("speech_started") == 3
    starts = [e.position for e in events if e.type == "speech_started"]
    assert starts == pytest.approx([0.0, 1.55, 3.1], abs=0.03)
    await stt.aclose()


async def test_finals_keep_the_spoken_order_when_the_service_finishes_out_of_order(
    stt_server: FakeTranscriptionServer,
) -> None:
    stt_server.transcripts = ["slow first", "fast second"]
    stt_server.hold[1] = asyncio.Event()
    stt = stt_for(stt_server)
    stream = stt.stream()
    speak(stream)
    speak(stream)
    stream.end_input()
    reader = asyncio.ensure_future(read_all(stream))
    await asyncio.wait_for(stt_server.completions[2].wait(), 5)
    stt_server.hold[1].set()
    events = await reader
    assert [e.text for e in events if e.type == "final"] == ["slow first", "fast second"]
    await stt.aclose()


async def test_without_server_vad_flush_commits_and_there_are_no_speech_marks(
    stt_server: FakeTranscriptionServer,
) -> None:
    stt_server.transcripts = ["one", "two"]
    stt = stt_for(stt_server, turn_detection=None)
    stream = stt.stream()
    speak(stream, silence=0.2)
    stream.flush()
    first = await read_until(stream, 1)
    speak(stream, silence=0.2)
    stream.end_input()
    rest = await read_all(stream)
    assert [(e.type, e.text) for e in first + rest] == [("interim", "one"), ("final", "one"),
                                                       ("interim", "two"), ("final", "two")]
    assert stt_server.current.session["audio"]["input"]["turn_detection"] is None
    assert stt_server.count("input_audio_buffer.commit") == 2
    await stt.aclose()


async def test_a_failed_transcription_is_an_empty_final_and_the_stream_goes_on(
    stt_server: FakeTranscriptionServer, caplog: pytest.LogCaptureFixture,
) -> None:
    stt_server.fail_items = {1}
    stt_server.transcripts = ["lost", "kept"]
    stt = stt_for(stt_server)
    stream = stt.stream()
    speak(stream)
    speak(stream)
    stream.end_input()
    finals = [e for e in await read_all(stream) if e.type == "final"]
    assert [(f.text, f.error) for f in finals] == [("", "audio unreadable"), ("kept", None)]
    assert "audio unreadable" in caplog.text
    await stt.aclose()


async def test_a_server_error_is_logged_and_the_stream_goes_on(
    stt_server: FakeTranscriptionServer, caplog: pytest.LogCaptureFixture,
) -> None:
    stt = stt_for(stt_server)
    stream = stt.stream()
    speak(stream, silence=0.0)
    await stt_server.wait_for("session.update")
    await stt_server.send_error("rate_limit_exceeded", "slow down a little")
    speak(stream, seconds=0.0, silence=0.8)
    stream.end_input()
    finals = [e for e in await read_all(stream) if e.type == "final"]
    assert [f.text for f in finals] == ["hello there"]
    assert "slow down a little" in caplog.text
    await stt.aclose()


async def test_a_refused_session_fails_the_stream(stt_server: FakeTranscriptionServer) -> None:
    stt = stt_for(stt_server, model="no-such-model")
    stream = stt.stream()
    speak(stream)
    with pytest.raises(ModelError) as failed:
        await read_all(stream)
    assert failed.value.code == "invalid_value" and not failed.value.recoverable
    await stt.aclose()


async def test_a_wrong_key_fails_the_stream_without_showing_it(
    stt_server: FakeTranscriptionServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-for-the-stream-0123456789"
    stt = OpenAISTT(api_key=wrong, base_url=stt_server.base_url)
    stream = stt.stream()
    with pytest.raises(ModelError) as failed:
        await read_all(stream)
    assert failed.value.code == "invalid_api_key" and not failed.value.recoverable
    assert "(HTTP 401): the API key was not accepted: set OPENAI_API_KEY" in str(failed.value)  # what to do next
    assert wrong not in str(failed.value) and wrong not in caplog.text and wrong not in repr(stt)
    await stt.aclose()


async def test_a_dropped_connection_fails_the_stream_as_recoverable(stt_server: FakeTranscriptionServer) -> None:
    stt = stt_for(stt_server)
    stream = stt.stream()
    speak(stream)
    first = await read_until(stream, 1)
    await stt_server.drop()
    with pytest.raises(ModelError) as failed:
        await read_all(stream)
    assert first[-1].text == "hello there"
    assert failed.value.code == "connection_lost" and failed.value.recoverable
    with pytest.raises(RuntimeError):
        stream.push_audio(AudioFrame.silence(0.02, 16000))
    await stt.aclose()


async def test_closing_the_stt_closes_its_streams_and_leaves_no_task(stt_server: FakeTranscriptionServer) -> None:
    before = asyncio.all_tasks()
    stt = stt_for(stt_server)
    streams = [stt.stream(), stt.stream()]
    for stream in streams:
        speak(stream, silence=0.1)
    await stt_server.wait_for("input_audio_buffer.append", 2)
    await stt.aclose()
    for stream in streams:
        await read_all(stream)  # ends at once (a hang would time out), whatever was received before
        assert stream.finished
    await asyncio.wait_for(stt_server.closed.wait(), 5)
    left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert left == []


async def test_the_api_key_is_never_logged(stt_server: FakeTranscriptionServer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stt_server.fail_items = {1}
    stt = stt_for(stt_server)
    stream = stt.stream()
    speak(stream)
    speak(stream)
    stream.end_input()
    await read_all(stream)
    await stt_server.drop()
    await stt.aclose()
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(stt)
