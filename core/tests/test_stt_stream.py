"""STT.stream()'s buffered default and the SpeechStream machinery, with the contract suite."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agentsession import STT, AudioFrame, protect_secret
from agentsession._stt_stream import BufferedSpeechStream, SpeechEvent, SpeechStream
from agentsession.testing import tone
from agentsession.testing._stt_stream_contract import STTStreamContract, frames_of


class MeasuringSTT(STT):
    """Says how long each utterance was; ``gates`` hold a request until the test lets it finish."""

    def __init__(self) -> None:
        self.calls: list[tuple[AudioFrame, str | None]] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.fail_on: set[int] = set()
        self.started = asyncio.Event()

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        n = len(self.calls)
        self.calls.append((audio, language))
        self.started.set()
        if n in self.gates:
            await self.gates[n].wait()
        if n in self.fail_on:
            raise ConnectionError("the STT service is down (key sk-stream-secret-0123456789)")
        return f"{audio.duration:.2f} seconds of audio"


class TestBufferedStreamContract(STTStreamContract):
    async def create_stt(self) -> STT:
        return MeasuringSTT()


async def read_all(stream: SpeechStream) -> list[SpeechEvent]:
    return await asyncio.wait_for(_read(stream), 5)


async def _read(stream: SpeechStream) -> list[SpeechEvent]:
    return [e async for e in stream]


def push(stream: SpeechStream, audio: AudioFrame) -> None:
    for frame in frames_of(audio):
        stream.push_audio(frame)


async def test_the_default_is_buffered_and_not_streaming() -> None:
    stt = MeasuringSTT()
    assert stt.streaming is False
    stream = stt.stream(language="de")
    assert isinstance(stream, BufferedSpeechStream)
    push(stream, tone(0.5, 16000))
    stream.end_input()
    events = await read_all(stream)
    assert events == [SpeechEvent("final", "0.50 seconds of audio", "utterance_1")]
    assert stt.calls[0][1] == "de"
    assert stt.calls[0][0].sample_rate == 16000 and stt.calls[0][0].channels == 1


async def test_frames_of_any_rate_are_resampled_to_the_stt_rate() -> None:
    stt = MeasuringSTT()
    stream = stt.stream()
    stereo = AudioFrame(tone(0.4, 48000).data.repeat(2, axis=1), 48000)
    push(stream, stereo)
    stream.end_input()
    events = await read_all(stream)
    audio = stt.calls[0][0]
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert audio.duration == pytest.approx(0.4, abs=0.021)  # whole 20 ms frames, the tail padded
    assert [e.type for e in events] == ["final"]


async def test_finals_come_in_utterance_order_one_request_at_a_time() -> None:
    stt = MeasuringSTT()
    stt.gates[0] = asyncio.Event()
    stream = stt.stream()
    push(stream, tone(0.2, 16000))
    stream.flush()
    push(stream, tone(0.4, 16000))
    stream.flush()
    stream.end_input()
    reader = asyncio.ensure_future(read_all(stream))
    await stt.started.wait()
    for _ in range(20):  # let everything runnable run: the second request still waits for the first
        await asyncio.sleep(0)
    assert len(stt.calls) == 1
    stt.gates[0].set()
    events = await reader
    assert [(e.text, e.utterance_id) for e in events] == [
        ("0.20 seconds of audio", "utterance_1"),
        ("0.40 seconds of audio", "utterance_2"),
    ]


async def test_a_failed_request_is_an_empty_final_with_the_error_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-stream-secret-0123456789"
    protect_secret(secret)
    stt = MeasuringSTT()
    stt.fail_on.add(0)
    stream = stt.stream()
    caplog.set_level(logging.DEBUG)
    push(stream, tone(0.2, 16000))
    stream.flush()
    push(stream, tone(0.3, 16000))
    stream.end_input()
    events = await read_all(stream)
    assert [(e.type, e.text) for e in events] == [("final", ""), ("final", "0.30 seconds of audio")]
    assert events[0].error is not None and "down" in events[0].error
    assert secret not in events[0].error
    assert secret not in caplog.text and "speech-to-text of utterance_1 failed" in caplog.text


async def test_push_after_end_or_close_is_an_error_and_flush_is_a_no_op() -> None:
    stream = MeasuringSTT().stream()
    stream.end_input()
    with pytest.raises(RuntimeError):
        stream.push_audio(AudioFrame.silence(0.02, 16000))
    stream.flush()
    stream.end_input()
    assert await read_all(stream) == []
    await stream.aclose()
    with pytest.raises(RuntimeError):
        stream.push_audio(AudioFrame.silence(0.02, 16000))


async def test_a_failed_stream_raises_from_the_iteration_after_its_events() -> None:
    class Failing(SpeechStream):
        def push_audio(self, frame: AudioFrame) -> None:
            self._emit(SpeechEvent("interim", "hel", "u1"))
            self._fail(ConnectionError("lost"))

        def flush(self) -> None:
            pass

        def end_input(self) -> None:
            pass

    stream = Failing()
    stream.push_audio(AudioFrame.silence(0.02, 16000))
    events = []
    with pytest.raises(ConnectionError):
        async for event in stream:
            events.append(event)
    assert events == [SpeechEvent("interim", "hel", "u1")]
    with pytest.raises(StopAsyncIteration):  # read again: it has ended
        await anext(stream)
