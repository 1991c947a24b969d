"""``STTStreamContract``: what every ``STT.stream()`` must do, streaming providers and the buffered default alike.

```python
class TestMySTTStream(STTStreamContract):
    async def create_stt(self): return MySTT(...)
```
It runs on the real clock; ``utterance`` is the speech pushed (a real provider needs real speech there).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .._audio import AudioFrame
from .._models import STT
from .._stt_stream import SpeechEvent, SpeechStream
from ._fake_model import tone


def frames_of(audio: AudioFrame, ms: int = 20) -> list[AudioFrame]:
    """``audio`` cut into ``ms`` frames, as a session pushes it."""
    n = audio.sample_rate * ms // 1000
    return [AudioFrame(audio.data[i : i + n], audio.sample_rate) for i in range(0, audio.samples_per_channel, n)]


class STTStreamContract:
    """Implement ``create_stt``. Checks: finals for what was pushed, in order, each after its interims and
    its speech start; ``flush()`` ends an utterance and the stream goes on; ``end_input()`` ends the
    iteration; ``aclose()`` ends it at once, is idempotent and leaves no task behind."""

    timeout = 10.0
    silence = 0.8  # seconds of silence pushed after an utterance (long enough for a provider's own VAD)

    async def create_stt(self) -> STT:
        raise NotImplementedError

    def utterance(self, sample_rate: int) -> AudioFrame:
        return tone(0.75, sample_rate)

    def push(self, stream: SpeechStream, stt: STT, *, silence: float | None = None) -> None:
        for frame in frames_of(self.utterance(stt.sample_rate)):
            stream.push_audio(frame)
        for frame in frames_of(AudioFrame.silence(self.silence if silence is None else silence, stt.sample_rate)):
            stream.push_audio(frame)

    async def read_until_final(self, stream: SpeechStream) -> list[SpeechEvent]:
        events: list[SpeechEvent] = []

        async def read() -> None:
            async for event in stream:
                events.append(event)
                if event.type == "final":
                    return

        await asyncio.wait_for(read(), self.timeout)
        return events

    async def read_all(self, stream: SpeechStream) -> list[SpeechEvent]:
        async def read() -> list[SpeechEvent]:
            return [event async for event in stream]

        return await asyncio.wait_for(read(), self.timeout)

    def check_order(self, events: list[SpeechEvent]) -> None:
        assert all(isinstance(e, SpeechEvent) for e in events)
        finals = [e for e in events if e.type == "final"]
        assert len({e.utterance_id for e in finals}) == len(finals), "one final per utterance"
        for i, event in enumerate(events):
            if event.type == "interim":
                earlier = [e for e in events[:i] if e.type == "final" and e.utterance_id == event.utterance_id]
                assert not earlier, f"an interim after its final: {event}"
        starts = [e.position for e in events if e.type == "speech_started"]
        stops = [e.position for e in events if e.type == "speech_stopped"]
        assert all(p is not None and p >= 0 for p in starts + stops)

    @pytest.mark.asyncio
    async def test_an_utterance_gives_a_final_then_end_input_ends_the_stream(self) -> None:
        stt = await self.create_stt()
        stream = stt.stream()
        try:
            self.push(stream, stt)
            stream.end_input()
            events = await self.read_all(stream)
            self.check_order(events)
            finals = [e for e in events if e.type == "final"]
            assert len(finals) == 1, events
            assert finals[0].text.strip() and finals[0].error is None, finals[0]
            with pytest.raises(RuntimeError):
                stream.push_audio(AudioFrame.silence(0.02, stt.sample_rate))
        finally:
            await stream.aclose()
            await stt.aclose()

    @pytest.mark.asyncio
    async def test_flush_ends_an_utterance_and_the_stream_goes_on(self) -> None:
        stt = await self.create_stt()
        stream = stt.stream()
        try:
            self.push(stream, stt, silence=0.1)
            stream.flush()
            first = await self.read_until_final(stream)
            self.push(stream, stt)
            stream.flush()
            stream.end_input()
            rest = await self.read_all(stream)
            events = first + rest
            self.check_order(events)
            finals = [e for e in events if e.type == "final"]
            assert len(finals) == 2, events
            assert all(f.text.strip() for f in finals)
        finally:
            await stream.aclose()
            await stt.aclose()

    @pytest.mark.asyncio
    async def test_end_input_without_audio_ends_the_stream_with_no_final(self) -> None:
        stt = await self.create_stt()
        stream = stt.stream()
        try:
            stream.flush()  # nothing pushed: nothing to do
            stream.end_input()
            events = await self.read_all(stream)
            assert [e for e in events if e.type == "final"] == []
        finally:
            await stream.aclose()
            await stt.aclose()

    @pytest.mark.asyncio
    async def test_aclose_mid_utterance_ends_the_iteration_and_leaves_no_task(self) -> None:
        before = asyncio.all_tasks()
        stt = await self.create_stt()
        stream = stt.stream()
        for frame in frames_of(self.utterance(stt.sample_rate))[:10]:
            stream.push_audio(frame)
        stream.flush()
        await asyncio.sleep(0)
        await asyncio.wait_for(stream.aclose(), self.timeout)
        await stream.aclose()
        await asyncio.wait_for(self.read_all(stream), self.timeout)  # ends, whatever was in flight
        await stt.aclose()
        await stt.aclose()
        left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
                and not _accepting(t)]
        assert left == [], left


def _accepting(task: asyncio.Task[Any]) -> bool:
    """A local fake server's connection being accepted by the event loop itself (a task since Python 3.12):
    the fixture's, not the stream's."""
    return getattr(task.get_coro(), "__name__", "") == "_accept_connection2"
