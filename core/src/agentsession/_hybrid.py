"""VideoSDK's hybrid mode: a realtime model hears the user and answers in text; a TTS speaks its answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from ._audio import AudioConverter, AudioFrame
from ._models import TTS, EventSink, ModelOptions, PipelineEngine, RealtimeModel
from ._pipeline_events import AgentAudio, AgentTranscript, Error, PipelineEvent, ResponseDone
from ._pipeline_hooks import _TTS, PipelineHooks, TextStream
from ._tools import FunctionTool, ToolResult

logger = logging.getLogger("agentsession.pipeline")


class HybridEngine(PipelineEngine):
    """The realtime model's events pass through, but for its answers' text: each response's text goes to the
    TTS (through the ``"tts"`` hook if there is one) as it streams, and its ``ResponseDone`` follows its audio."""

    reports_first_audio = False

    def __init__(self, model: RealtimeModel, tts: TTS, hooks: PipelineHooks) -> None:
        self.model, self.tts, self.hooks = model, tts, hooks
        self.input_sample_rate = model.input_sample_rate
        self.reports_user_speech = model.reports_user_speech
        self._sink: EventSink | None = None
        self._texts: dict[str, asyncio.Queue[str | None]] = {}
        self._speaking: dict[str, asyncio.Task[None]] = {}
        self._last: asyncio.Task[None] | None = None  # responses are spoken in order
        self._out = AudioConverter(tts.sample_rate)

    def attach(self, sink: EventSink) -> None:
        self._sink = sink
        self.model.attach(self._on_model_event)

    async def start(self, options: ModelOptions) -> None:
        self.model.text_output = True
        await self.model.start(options)

    def push_audio(self, frame: AudioFrame) -> None:
        self.model.push_audio(frame)

    async def send_text(self, text: str, *, response_id: str) -> None:
        await self.model.send_text(text, response_id=response_id)

    async def say(self, text: str, *, response_id: str) -> None:
        await self.model.say(text, response_id=response_id)

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        await self.model.reply(instructions, response_id=response_id)

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        stopped = [self._speaking.pop(rid) for rid in heard if rid in self._speaking]
        for rid in heard:
            self._texts.pop(rid, None)
        for task in stopped:
            task.cancel()
        await asyncio.gather(*stopped, return_exceptions=True)
        self._out.clear()
        await self.model.interrupt(heard)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        await self.model.send_tool_results(results, response_id=response_id)

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        await self.model.record_tool_results(results)

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        await self.model.update_agent(instructions, tools)

    async def close(self) -> None:
        tasks = list(self._speaking.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.model.close()
        await self.tts.aclose()

    # ------------------------------------------------------------------ the model's events

    def _emit(self, event: PipelineEvent | None) -> None:
        if self._sink is not None:
            self._sink(event)

    def _on_model_event(self, event: PipelineEvent | None) -> None:
        if isinstance(event, AgentTranscript):
            self._emit(event)
            if not event.final:
                self._queue(event.response_id).put_nowait(event.text)
        elif isinstance(event, ResponseDone):
            queue = self._texts.pop(event.response_id, None)
            if queue is None:
                self._emit(event)
            else:
                queue.put_nowait(None)
                self._done_after_audio(event)
        elif not isinstance(event, AgentAudio):  # the model's own audio, if it sends any, is not the voice
            self._emit(event)

    def _queue(self, rid: str) -> asyncio.Queue[str | None]:
        queue = self._texts.get(rid)
        if queue is None:
            queue = self._texts[rid] = asyncio.Queue()
            previous = self._last
            self._speaking[rid] = self._last = asyncio.ensure_future(self._speak(rid, queue, previous))
        return queue

    def _done_after_audio(self, event: ResponseDone) -> None:
        task = self._speaking.get(event.response_id)
        if task is None:
            self._emit(event)
            return
        task.add_done_callback(lambda t: None if t.cancelled() else self._emit(event))

    async def _speak(self, rid: str, queue: asyncio.Queue[str | None], previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait((previous,))

        async def texts() -> TextStream:
            while (text := await queue.get()) is not None:
                yield text

        async def synthesize(stream: TextStream) -> AsyncIterator[AudioFrame]:
            """The TTS's own stream (``TTS.stream()``: sentence by sentence, or as the text comes for a TTS that
            streams), fed from ``stream``."""
            synthesis = self.tts.stream()
            async with synthesis.feeding(stream) as fed:
                async for frame in synthesis:
                    yield frame
                await fed

        token = _TTS.set(synthesize)
        try:
            hook = self.hooks.tts_stream
            async for chunk in (hook(texts()) if hook is not None else synthesize(texts())):
                frame = chunk if isinstance(chunk, AudioFrame) else AudioFrame.from_bytes(bytes(chunk),
                                                                                          self.tts.sample_rate)
                for out in self._out.push(frame):
                    self._emit(AgentAudio(out, response_id=rid))
            for out in self._out.flush():
                self._emit(AgentAudio(out, response_id=rid))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the TTS of response %s failed", rid)
            self._emit(Error(f"the TTS failed: {exc}", recoverable=True, code="tts_failed", component="tts"))
        finally:
            _TTS.reset(token)
            self._speaking.pop(rid, None)
