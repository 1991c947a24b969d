"""Contract test suites: subclass them in a plugin's tests to check a transport or a model.

```python
class TestMyTransport(TransportContract):
    async def create_transport(self): ...
    async def send_user_audio(self, transport, frame): ...
```
They run on the real clock: a transport or model under test keeps its real timing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import numpy as np
import pytest

from .._audio import SUPPORTED_RATES, AudioFrame
from .._chat import ChatContext
from .._models import LLM, STT, TTS, VAD, ModelOptions, RealtimeModel, VADEvent
from .._pipeline_events import AgentAudio, PipelineEvent, ResponseDone, ToolCall
from .._tools import FunctionTool, function_tool
from .._transport import Transport
from ._fake_model import tone
from ._waiting import read_events

_T = TypeVar("_T")


class TransportContract:
    """What every ``Transport`` must do. Implement ``create_transport`` and ``send_user_audio``."""

    timeout = 10.0

    async def create_transport(self) -> Transport:
        """A started transport."""
        raise NotImplementedError

    async def send_user_audio(self, transport: Transport, audio: AudioFrame) -> None:
        """Make ``audio`` arrive on the transport's input, as a user would."""
        raise NotImplementedError

    async def destroy_transport(self, transport: Transport) -> None:
        await transport.close()

    def _frames(self, transport: Transport, seconds: float, frame_ms: int = 20) -> list[AudioFrame]:
        n = transport.sample_rate * frame_ms // 1000
        data = (tone(seconds, transport.sample_rate).data * 1).repeat(transport.channels, axis=1)
        return [AudioFrame(data[i : i + n], transport.sample_rate) for i in range(0, data.shape[0], n)]

    @pytest.mark.asyncio
    async def test_output_format_is_supported(self) -> None:
        transport = await self.create_transport()
        try:
            assert transport.sample_rate in SUPPORTED_RATES
            assert transport.channels in (1, 2)
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_played_counts_exactly_what_was_output(self) -> None:
        transport = await self.create_transport()
        try:
            before = transport.played
            for frame in self._frames(transport, 0.2):
                await asyncio.wait_for(transport.play(frame), self.timeout)
            await asyncio.wait_for(transport.wait_for_playout(), self.timeout)
            assert transport.played - before == pytest.approx(0.2, abs=1.5 / transport.sample_rate)
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_play_applies_back_pressure(self) -> None:
        transport = await self.create_transport()
        try:
            before = transport.played
            for frame in self._frames(transport, 0.6):
                await asyncio.wait_for(transport.play(frame), self.timeout)
            assert transport.played - before >= 0.6 - 0.3, "play() let more than 300 ms pile up"
            await asyncio.wait_for(transport.wait_for_playout(), self.timeout)
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_play_takes_frames_as_long_as_max_frame_ms(self) -> None:
        """The session hands ``play`` frames of up to ``max_frame_ms`` (a provider's 100 ms chunk, whole)."""
        transport = await self.create_transport()
        try:
            longest = transport.max_frame_ms
            assert longest >= 20 and longest % 20 == 0, f"max_frame_ms must be a multiple of 20, got {longest!r}"
            before = transport.played
            for frame in self._frames(transport, 0.6, longest):
                await asyncio.wait_for(transport.play(frame), self.timeout)
            assert transport.played - before >= 0.6 - 0.3 - longest / 1000, "play() let too much pile up"
            await asyncio.wait_for(transport.wait_for_playout(), self.timeout)
            assert transport.played - before == pytest.approx(0.6, abs=1.5 / transport.sample_rate)
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_clear_drops_unplayed_audio_and_played_stays(self) -> None:
        transport = await self.create_transport()
        try:
            before = transport.played

            async def play_all() -> None:
                for frame in self._frames(transport, 1.0):
                    await transport.play(frame)

            player = asyncio.ensure_future(play_all())
            await asyncio.sleep(0.15)
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
            transport.clear()
            heard = transport.played - before
            assert 0.0 < heard < 0.5
            await asyncio.wait_for(transport.wait_for_playout(), 1.0)
            await asyncio.sleep(0.1)
            assert transport.played - before == pytest.approx(heard, abs=0.021)
            for frame in self._frames(transport, 0.1):  # still usable after a cancelled play()
                await asyncio.wait_for(transport.play(frame), self.timeout)
            await asyncio.wait_for(transport.wait_for_playout(), self.timeout)
            assert transport.played - before == pytest.approx(heard + 0.1, abs=0.021)
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_user_audio_arrives(self) -> None:
        transport = await self.create_transport()
        try:
            received: list[AudioFrame] = []

            async def read() -> None:
                async for frame in transport.audio_input():
                    received.append(frame)
                    if sum(f.duration for f in received) >= 0.4:
                        return

            reader = asyncio.ensure_future(read())
            await self.send_user_audio(transport, tone(0.6, 48000))
            await asyncio.wait_for(reader, self.timeout)
            assert all(isinstance(f, AudioFrame) for f in received)
            audio = np.concatenate([f.to_mono().data for f in received]).astype(np.float64)
            assert np.sqrt(np.mean(audio**2)) > 1000, "the user's audio arrived as silence"
        finally:
            await self.destroy_transport(transport)

    @pytest.mark.asyncio
    async def test_close_is_idempotent_and_ends_input(self) -> None:
        transport = await self.create_transport()
        reader = asyncio.ensure_future(_drain(transport.audio_input()))
        await self.destroy_transport(transport)
        await transport.close()
        await asyncio.wait_for(reader, self.timeout)


class RealtimeModelContract:
    """What every ``RealtimeModel`` must do. Implement ``create_model`` (not started) and, where the
    defaults don't fit, ``make_it_respond`` and ``make_it_call_tool``. Every check includes the response
    ids: the events of a response the session asked for carry the id it gave."""

    timeout = 10.0

    async def create_model(self) -> RealtimeModel:
        raise NotImplementedError

    async def make_it_respond(self, model: RealtimeModel, response_id: str) -> None:
        """Cause one response with audio, as ``response_id``."""
        await model.send_text("Hello there", response_id=response_id)

    async def make_it_call_tool(self, model: RealtimeModel, response_id: str) -> None:
        """Cause a response (``response_id``) that calls the ``get_time`` tool."""
        await model.send_text("What time is it? Use the get_time tool.", response_id=response_id)

    @staticmethod
    def tools() -> list[FunctionTool]:
        @function_tool
        def get_time() -> str:
            """The current time."""
            return "12:00"

        return [get_time]

    async def _started(self) -> RealtimeModel:
        model = await self.create_model()
        await asyncio.wait_for(
            model.start(ModelOptions("You are a test agent.", self.tools(), ChatContext())), self.timeout
        )
        return model

    async def _until_done(self, model: RealtimeModel, rid: str) -> list[PipelineEvent]:
        return await read_events(
            model, lambda e: isinstance(e, ResponseDone) and e.response_id == rid, timeout=self.timeout
        )

    @pytest.mark.asyncio
    async def test_a_response_brings_audio_then_done_all_with_its_id(self) -> None:
        model = await self._started()
        try:
            await self.make_it_respond(model, "r-1")
            events = await self._until_done(model, "r-1")
            audio = [e for e in events if isinstance(e, AgentAudio)]
            assert audio, "no AgentAudio before ResponseDone"
            assert all(e.frame.sample_rate in SUPPORTED_RATES for e in audio)
            assert {_rid(e) for e in events} - {None} == {"r-1"}, "events of the response carry another id"
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_say_is_answered_with_its_id(self) -> None:
        model = await self._started()
        try:
            await model.say("Hello! How can I help you today?", response_id="greeting")
            events = await self._until_done(model, "greeting")
            assert any(isinstance(e, AgentAudio) and e.response_id == "greeting" for e in events)
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_responses_come_one_at_a_time_in_the_order_asked(self) -> None:
        model = await self._started()
        try:
            await model.say("First sentence.", response_id="a")
            await model.say("Second sentence.", response_id="b")
            events = await self._until_done(model, "b")
            order = [_rid(e) for e in events if _rid(e) is not None]
            assert order and set(order) == {"a", "b"}
            assert order.index("b") > max(i for i, r in enumerate(order) if r == "a"), f"interleaved: {order}"
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_no_event_of_a_response_after_interrupt(self) -> None:
        model = await self._started()
        events: list[PipelineEvent | None] = []
        arrived = asyncio.Event()

        def sink(event: PipelineEvent | None) -> None:
            events.append(event)
            arrived.set()

        async def until(accept: Callable[[PipelineEvent], bool]) -> None:
            while not any(e is not None and accept(e) for e in events):
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), self.timeout)

        model.channel.attach(sink)
        try:
            await self.make_it_respond(model, "cut")
            await until(lambda e: isinstance(e, AgentAudio))
            await model.interrupt({"cut": 0.05})
            mark = len(events)
            await model.say("Next one.", response_id="next")
            await until(lambda e: isinstance(e, ResponseDone) and e.response_id == "next")
            assert not any(e is not None and _rid(e) == "cut" for e in events[mark:]), (
                "an event of the interrupted response came after interrupt() returned"
            )
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_tool_call_round_trip(self) -> None:
        model = await self._started()
        try:
            await self.make_it_call_tool(model, "asks")
            events = await self._until_done(model, "asks")
            calls = [e for e in events if isinstance(e, ToolCall)]
            assert calls and calls[0].name == "get_time" and calls[0].response_id == "asks"
            results = [await self.tools()[0].invoke(c.id, c.arguments) for c in calls]
            await model.send_tool_results(results, response_id="continues")
            events = await self._until_done(model, "continues")
            assert {_rid(e) for e in events} - {None} == {"continues"}
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_push_audio_takes_frames_without_blocking(self) -> None:
        model = await self._started()
        try:
            frame = AudioFrame.silence(0.02, model.input_sample_rate)
            for _ in range(50):
                assert model.push_audio(frame) is None
        finally:
            await model.close()

    @pytest.mark.asyncio
    async def test_close_is_idempotent_and_ends_events(self) -> None:
        model = await self._started()
        await model.close()
        await model.close()
        await asyncio.wait_for(_drain(model.channel.__aiter__()), self.timeout)


def _rid(event: PipelineEvent) -> str | None:
    return getattr(event, "response_id", None)


async def _drain(iterator: AsyncIterator[object]) -> None:
    async for _ in iterator:
        pass


async def _collect(stream: AsyncIterator[_T], timeout: float) -> list[_T]:
    async def collect() -> list[_T]:
        return [item async for item in stream]

    return await asyncio.wait_for(collect(), timeout)


async def _leave_early(stream: AsyncIterator[_T], timeout: float) -> _T:
    """The stream's first item, then the stream closed, as an interrupted turn leaves it."""
    first = await asyncio.wait_for(anext(stream), timeout)
    close = getattr(stream, "aclose", None)
    if close is not None:
        await asyncio.wait_for(close(), timeout)
    return first


class LLMContract:
    """What every cascade ``LLM`` must do. Implement ``create_llm`` and, where your fake server needs a cue
    before each request, ``expect_text`` and ``expect_tool_call`` (a real model follows the prompts)."""

    timeout = 10.0
    text_prompt = "Say hello in one short sentence."
    tool_prompt = "What time is it? Use the get_time tool."

    async def create_llm(self) -> LLM:
        raise NotImplementedError

    async def expect_text(self) -> None:
        """The next ``chat`` should answer with text only."""

    async def expect_tool_call(self) -> None:
        """The next ``chat`` should call ``get_time`` (no arguments)."""

    @staticmethod
    def tools() -> list[FunctionTool]:
        """The ``get_time`` tool the suite offers."""
        return RealtimeModelContract.tools()

    def _ctx(self, prompt: str) -> ChatContext:
        ctx = ChatContext()
        ctx.add_message("system", "You are a test agent.")
        ctx.add_message("user", prompt)
        return ctx

    async def _chat(self, llm: LLM, ctx: ChatContext) -> list[str | ToolCall]:
        return await _collect(llm.chat(ctx, tools=self.tools()), self.timeout)

    @pytest.mark.asyncio
    async def test_text_streams_as_text_deltas(self) -> None:
        llm = await self.create_llm()
        try:
            await self.expect_text()
            parts = await self._chat(llm, self._ctx(self.text_prompt))
            assert parts and all(isinstance(p, str) for p in parts), parts
            assert "".join(str(p) for p in parts).strip(), "only empty text"
        finally:
            await llm.aclose()

    @pytest.mark.asyncio
    async def test_tool_call_round_trip(self) -> None:
        llm = await self.create_llm()
        try:
            ctx = self._ctx(self.tool_prompt)
            await self.expect_tool_call()
            calls = [p for p in await self._chat(llm, ctx) if isinstance(p, ToolCall)]
            assert [c.name for c in calls] == ["get_time"], calls
            (call,) = calls
            assert call.id, "a tool call needs an id to answer it by"
            assert isinstance(json.loads(call.arguments or "{}"), dict), call.arguments
            result = await self.tools()[0].invoke(call.id, call.arguments)
            ctx.add_function_call(call.id, call.name, call.arguments)
            ctx.add_function_output(call.id, call.name, result.output, is_error=result.is_error)
            await self.expect_text()
            parts = await self._chat(llm, ctx)
            assert not any(isinstance(p, ToolCall) for p in parts), "the same call again after its result"
            assert "".join(p for p in parts if isinstance(p, str)).strip(), "no answer after the tool result"
        finally:
            await llm.aclose()

    @pytest.mark.asyncio
    async def test_a_stream_left_early_can_be_closed_and_the_llm_goes_on(self) -> None:
        llm = await self.create_llm()
        try:
            await self.expect_text()
            first = await _leave_early(llm.chat(self._ctx(self.text_prompt), tools=self.tools()), self.timeout)
            assert isinstance(first, str)
            await self.expect_text()
            assert await self._chat(llm, self._ctx(self.text_prompt)), "nothing after an abandoned stream"
        finally:
            await llm.aclose()

    @pytest.mark.asyncio
    async def test_aclose_is_idempotent(self) -> None:
        llm = await self.create_llm()
        await llm.aclose()
        await llm.aclose()


class STTContract:
    """What every cascade ``STT`` must do. Implement ``create_stt``; ``utterance`` is what it is given."""

    timeout = 10.0

    async def create_stt(self) -> STT:
        raise NotImplementedError

    def utterance(self, sample_rate: int) -> AudioFrame:
        """The audio transcribed (a real provider needs real speech here)."""
        return tone(0.75, sample_rate)

    @pytest.mark.asyncio
    async def test_an_utterance_becomes_text(self) -> None:
        stt = await self.create_stt()
        try:
            text = await asyncio.wait_for(stt.transcribe(self.utterance(stt.sample_rate)), self.timeout)
            assert isinstance(text, str) and text.strip(), repr(text)
        finally:
            await stt.aclose()

    @pytest.mark.asyncio
    async def test_aclose_is_idempotent(self) -> None:
        stt = await self.create_stt()
        await stt.aclose()
        await stt.aclose()


class TTSContract:
    """What every cascade ``TTS`` must do. Implement ``create_tts``."""

    timeout = 10.0
    text = "Hello there, how can I help you today?"

    async def create_tts(self) -> TTS:
        raise NotImplementedError

    @pytest.mark.asyncio
    async def test_text_streams_as_mono_frames_at_its_rate(self) -> None:
        tts = await self.create_tts()
        try:
            frames = await _collect(tts.synthesize(self.text), self.timeout)
            assert frames, "no audio"
            assert all(f.sample_rate == tts.sample_rate and f.channels == 1 for f in frames)
            assert sum(f.duration for f in frames) > 0.1
        finally:
            await tts.aclose()

    @pytest.mark.asyncio
    async def test_a_stream_left_early_can_be_closed_and_the_tts_goes_on(self) -> None:
        tts = await self.create_tts()
        try:
            assert isinstance(await _leave_early(tts.synthesize(self.text), self.timeout), AudioFrame)
            assert isinstance(await _leave_early(tts.synthesize(self.text), self.timeout), AudioFrame)
        finally:
            await tts.aclose()

    @pytest.mark.asyncio
    async def test_text_pushed_in_pieces_streams_as_mono_frames(self) -> None:
        tts = await self.create_tts()
        try:
            stream = tts.stream()
            for piece in re.findall(r"\S+\s*", self.text):  # as an LLM streams it: a word at a time
                stream.push_text(piece)
            stream.end_input()
            frames = await _collect(aiter(stream), self.timeout)
            assert frames, "no audio"
            assert all(f.sample_rate == tts.sample_rate and f.channels == 1 for f in frames)
            assert sum(f.duration for f in frames) > 0.1
            assert stream.finished
        finally:
            await tts.aclose()

    @pytest.mark.asyncio
    async def test_a_stream_closed_early_ends_and_the_tts_goes_on(self) -> None:
        tts = await self.create_tts()
        try:
            stream = tts.stream()
            stream.push_text(self.text)
            stream.flush()
            frames = aiter(stream)
            assert isinstance(await asyncio.wait_for(anext(frames), self.timeout), AudioFrame)
            await asyncio.wait_for(stream.aclose(), self.timeout)
            await asyncio.wait_for(stream.aclose(), self.timeout)
            await asyncio.wait_for(_drain(frames), self.timeout)  # the iteration ends
            again = tts.stream()
            again.push_text(self.text)
            again.end_input()
            assert await _collect(aiter(again), self.timeout), "no audio after a stream closed early"
        finally:
            await tts.aclose()

    @pytest.mark.asyncio
    async def test_aclose_is_idempotent(self) -> None:
        tts = await self.create_tts()
        await tts.aclose()
        await tts.aclose()


class VADContract:
    """What every ``VAD`` must do. Implement ``create_vad``; override ``speech`` with audio your VAD hears as
    speech (a neural VAD ignores tones: give it real speech) and ``sample_rate`` with the rate it takes."""

    sample_rate = 16000

    def create_vad(self) -> VAD:
        raise NotImplementedError

    def speech(self, seconds: float) -> AudioFrame:
        """``seconds`` of what the VAD must call speech (default: a loud tone, which an energy VAD hears)."""
        return tone(seconds, self.sample_rate)

    def _push(self, vad: VAD, audio: AudioFrame) -> list[VADEvent]:
        n = audio.sample_rate // 50
        events: list[VADEvent] = []
        for i in range(0, audio.data.shape[0] - n + 1, n):
            events.extend(vad.push(AudioFrame(audio.data[i : i + n], audio.sample_rate)))
        return events

    def test_silence_is_not_speech(self) -> None:
        assert self._push(self.create_vad(), AudioFrame.silence(2.0, self.sample_rate)) == []

    def test_speech_starts_then_ends_in_order_and_in_place(self) -> None:
        vad = self.create_vad()
        speech = self.speech(1.5)
        audio = np.concatenate([AudioFrame.silence(1.0, self.sample_rate).data, speech.data,
                                AudioFrame.silence(2.0, self.sample_rate).data])
        events = self._push(vad, AudioFrame(audio, self.sample_rate))
        kinds = [e.kind for e in events]
        assert kinds[:1] == ["start"] and kinds[-1:] == ["end"], kinds
        assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False)), "starts and ends alternate"
        start, end = events[0].position, events[-1].position
        positions = [e.position for e in events]
        assert positions == sorted(positions)
        assert 0.8 <= start <= 1.0 + 0.5, f"speech at 1.0 s reported starting at {start:.2f} s"
        assert 1.0 + speech.duration - 0.3 <= end <= 1.0 + speech.duration + 1.6, f"end reported at {end:.2f} s"

    def test_reset_forgets_a_speech_in_progress(self) -> None:
        vad = self.create_vad()
        events = self._push(vad, self.speech(1.0))
        assert [e.kind for e in events] == ["start"]
        vad.reset()
        after = self._push(vad, AudioFrame.silence(2.0, self.sample_rate))
        assert [e.kind for e in after] == [], "an end for a speech the VAD was told to forget"
