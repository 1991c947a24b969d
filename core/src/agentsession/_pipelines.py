"""Pipelines: what the session drives. A realtime model, or a cascade of VAD, STT, LLM and TTS."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ._audio import AudioConverter, AudioFrame
from ._chat import ChatContext
from ._models import LLM, STT, TTS, VAD, EventChannel, EventSink, ModelOptions, RealtimeModel
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    ResponseDone,
    ToolCall,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._stt_stream import BufferedSpeechStream, SpeechStream
from ._tools import FunctionTool, ToolResult
from ._tts_stream import _SENTENCE_END, SynthesisStream
from ._turn_detection import Endpointing, TurnDetector
from ._vad import EnergyVAD, UtteranceCollector

if TYPE_CHECKING:
    from ._agent import Agent

logger = logging.getLogger("agentsession.pipeline")

#: the LLM stream of the cascade response being generated (what ``ConversationFlow.process_with_llm`` reads)
_LLM_STREAM: contextvars.ContextVar[Callable[[], AsyncIterator[str]] | None] = contextvars.ContextVar(
    "agentsession_llm_stream", default=None
)


class ConversationFlow:
    """The turn-taking logic of a cascade, shaped as VideoSDK's: subclass it and override ``run``.

    ``run(transcript)`` is an async generator between the user's final text and speech: what it yields is
    spoken (sentence by sentence through the TTS). The default yields the LLM's answer as it streams
    (``process_with_llm``); an override may change what the LLM sees first (the user's text is already in
    the history, ``self.agent.chat_context``) and post-process what is spoken. ``on_turn_start(transcript)``
    and ``on_turn_end()`` run around each user turn. Tool calls the LLM makes are run by the session while
    ``run`` goes on; the answer after their results streams from the LLM directly.
    """

    def __init__(
        self,
        agent: Agent | None = None,
        stt: STT | None = None,
        llm: LLM | None = None,
        tts: TTS | None = None,
        vad: VAD | None = None,
        turn_detector: TurnDetector | None = None,
    ) -> None:
        self.agent = agent
        self.stt, self.llm, self.tts, self.vad = stt, llm, tts, vad
        self.turn_detector = turn_detector

    async def run(self, transcript: str) -> AsyncIterator[str]:
        """Yield the text to speak for the user's turn ``transcript`` (default: the LLM's answer)."""
        async for chunk in self.process_with_llm():
            yield chunk

    async def process_with_llm(self) -> AsyncIterator[str]:
        """The LLM's answer to the conversation so far, as text chunks (tool calls go to the session)."""
        stream = _LLM_STREAM.get()
        if stream is None:
            raise RuntimeError("process_with_llm() runs only inside a cascade's response (from run())")
        async for chunk in stream():
            yield chunk

    async def on_turn_start(self, transcript: str) -> None:
        """A user turn begins (its final text is ``transcript``)."""

    async def on_turn_end(self) -> None:
        """The user turn has been answered (or cut short)."""


class Pipeline(ABC):
    """What an ``AgentSession`` drives: audio in, ``PipelineEvent``s out, plus control calls.

    The control calls mirror ``RealtimeModel``'s (its docstring states the contract): each response the
    session asks for carries the ``response_id`` the session gave it.
    """

    conversation_flow: ConversationFlow | None = None

    @property
    def reports_user_speech(self) -> bool:
        """Whether the pipeline's events say when the user speaks (a cascade's VAD does)."""
        return True

    #: whether the time to the first audio is one model's (a realtime model) rather than stages' (a cascade)
    reports_first_audio: bool = False

    @property
    @abstractmethod
    def input_sample_rate(self) -> int:
        """Rate of the mono 20 ms frames ``push_audio`` takes."""

    @abstractmethod
    async def start(self, options: ModelOptions) -> None: ...

    @abstractmethod
    def push_audio(self, frame: AudioFrame) -> None: ...

    @abstractmethod
    def attach(self, sink: EventSink) -> None:
        """Deliver every ``PipelineEvent`` to ``sink`` as it happens; ``None`` when the stream ends."""

    @abstractmethod
    async def send_text(self, text: str, *, response_id: str) -> None: ...

    @abstractmethod
    async def say(self, text: str, *, response_id: str) -> None: ...

    @abstractmethod
    async def reply(self, instructions: str | None = None, *, response_id: str) -> None: ...

    @abstractmethod
    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        """Stop the responses named in ``heard`` and cut each at the seconds the user heard."""

    @abstractmethod
    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None: ...

    @abstractmethod
    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        """Switch to another agent's instructions and tools, keeping the conversation."""

    def heard_text(self, response_id: str, seconds: float) -> str | None:
        """The text of response ``response_id`` spoken in its first ``seconds`` of audio, when the pipeline knows
        it word by word (a TTS with timings); ``None``: the session cuts the history in proportion."""
        return None

    @abstractmethod
    async def close(self) -> None: ...


class RealTimePipeline(Pipeline):
    """A speech-to-speech model behind the session."""

    reports_first_audio = True

    def __init__(self, model: RealtimeModel) -> None:
        if not isinstance(model, RealtimeModel):
            raise TypeError(f"RealTimePipeline needs a RealtimeModel, got {type(model).__name__}")
        self.model = model

    @property
    def input_sample_rate(self) -> int:
        return self.model.input_sample_rate

    @property
    def reports_user_speech(self) -> bool:
        return self.model.reports_user_speech

    async def start(self, options: ModelOptions) -> None:
        await self.model.start(options)

    def push_audio(self, frame: AudioFrame) -> None:
        self.model.push_audio(frame)

    def attach(self, sink: EventSink) -> None:
        self.model.channel.attach(sink)

    async def send_text(self, text: str, *, response_id: str) -> None:
        await self.model.send_text(text, response_id=response_id)

    async def say(self, text: str, *, response_id: str) -> None:
        await self.model.say(text, response_id=response_id)

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        await self.model.reply(instructions, response_id=response_id)

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        await self.model.interrupt(heard)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        await self.model.send_tool_results(results, response_id=response_id)

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        await self.model.update_agent(instructions, tools)

    async def close(self) -> None:
        await self.model.close()


TurnPredicate = Callable[[ChatContext, str], Awaitable[bool]]
"""An older form of turn detector: ``True`` when the text looks like the end of the turn."""



class _PredicateDetector(TurnDetector):
    def __init__(self, predicate: TurnPredicate) -> None:
        self._predicate = predicate

    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str) -> float:
        return 1.0 if await self._predicate(chat_ctx, transcript) else 0.0


class CascadingPipeline(Pipeline):
    """VAD -> STT -> end of turn -> ``ConversationFlow.run`` (the LLM with tools) -> TTS, sentence by sentence.

    Listening: the VAD cuts the user's audio into utterances; the STT's stream (``STT.stream()``) transcribes
    them, with interim transcripts when the STT streams (``UserTranscript(final=False)``). When a final
    transcript is in, the ``turn_detector`` (e.g. ``TextTurnDetector``) scores whether the user is done and
    ``endpointing`` turns that into a wait: the turn ends after ``min_endpointing_delay`` of silence when it
    looks over, after ``max_endpointing_delay`` when it does not, and at once goes on if the user speaks again
    meanwhile. The final ``UserTranscript`` says why the turn ended (``end_of_turn``: ``"silence"``,
    ``"turn_detector"`` or ``"max_delay"``), and the LLM starts right then.

    Responses are generated one at a time, in the order asked. A user turn's response gets an id of the
    cascade's own (``cascade-N``).
    """

    def __init__(
        self,
        *,
        stt: STT,
        llm: LLM,
        tts: TTS,
        vad: VAD | None = None,
        turn_detector: TurnDetector | TurnPredicate | None = None,
        endpointing: Endpointing | None = None,
        turn_hold: float | None = None,
        streaming_stt: bool | None = None,
    ) -> None:
        """``streaming_stt``: transcribe while the user speaks (default: when the STT can, ``stt.streaming``),
        else one request per utterance. ``turn_hold`` is the older name of ``max_endpointing_delay``."""
        self.stt, self.llm, self.tts = stt, llm, tts
        self.vad = vad if vad is not None else EnergyVAD()
        self._utterances = UtteranceCollector(self.vad, preroll=float(getattr(self.vad, "prefix_padding", 0.3)))
        if turn_detector is not None and not isinstance(turn_detector, TurnDetector):
            turn_detector = _PredicateDetector(turn_detector)
        self.turn_detector: TurnDetector | None = turn_detector
        if endpointing is None:
            endpointing = Endpointing() if turn_hold is None else Endpointing(max_endpointing_delay=turn_hold)
        self.endpointing = endpointing
        self._channel = EventChannel()
        self._options = ModelOptions(instructions="")
        self._stream: SpeechStream | None = None
        self._speaking = False
        self._stopped_at: float | None = None  # loop time the user last stopped speaking
        self._held_text = ""  # final text of the turn so far, waiting for the end of the turn
        self._stt_latency: float | None = None  # the user stopped -> the last final transcript
        self._end_timer: asyncio.TimerHandle | None = None
        self._responses: dict[str, asyncio.Task[None]] = {}  # in the order asked; the first one runs
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._tts_out = AudioConverter(tts.sample_rate)
        self._spoken: dict[str, SynthesisStream] = {}  # the last responses spoken through tts.stream(), by id
        self.streaming_stt = stt.streaming if streaming_stt is None else streaming_stt

    @property
    def input_sample_rate(self) -> int:
        return self.stt.sample_rate

    async def start(self, options: ModelOptions) -> None:
        self._options = options
        self._listen_to(self.stt.stream() if self.streaming_stt else self._one_request_per_utterance())

    def _one_request_per_utterance(self) -> SpeechStream:
        return BufferedSpeechStream(self.stt.transcribe, self.stt.sample_rate)

    def push_audio(self, frame: AudioFrame) -> None:
        stream = self._stream
        if stream is not None and stream.finished:
            stream = None  # it failed: _listen falls back to one request per utterance
        streaming = stream is not None and not isinstance(stream, BufferedSpeechStream)
        if streaming:
            stream.push_audio(frame)  # type: ignore[union-attr]
        for event, audio in self._utterances.push(frame):
            if audio is None:
                self._speaking = True
                self._cancel_end_of_turn()  # the user went on: the turn is not over
                self._channel.emit(UserSpeechStarted())
                continue
            self._speaking = False
            self._stopped_at = asyncio.get_running_loop().time()
            self._channel.emit(UserSpeechStopped(audio_end=event.position))
            if stream is None:
                continue
            if not streaming:
                stream.push_audio(audio)
                stream.flush()
            elif getattr(self.stt, "turn_detection", True) is None:  # a streaming STT that leaves ends to us
                stream.flush()

    def attach(self, sink: EventSink) -> None:
        self._channel.attach(sink)

    async def send_text(self, text: str, *, response_id: str) -> None:
        self._start_response(response_id, self._respond(response_id, user_text=text, flow=True))

    async def say(self, text: str, *, response_id: str) -> None:
        self._start_response(response_id, self._speak_only(response_id, text))

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        self._start_response(response_id, self._respond(response_id, instructions=instructions))

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        stopped = [task for rid, task in self._responses.items() if rid in heard]
        for task in stopped:
            task.cancel()
        await asyncio.gather(*stopped, return_exceptions=True)
        if stopped:
            self._tts_out.clear()

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        self._start_response(response_id, self._respond(response_id))

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._options = ModelOptions(instructions, list(tools), self._options.chat_ctx)

    def heard_text(self, response_id: str, seconds: float) -> str | None:
        stream = self._spoken.get(response_id)
        return stream.heard_text(seconds) if stream is not None else None

    async def close(self) -> None:
        self._cancel_end_of_turn()
        if self._stream is not None:
            await self._stream.aclose()
        tasks = list(self._tasks) + list(self._responses.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closers = [self.stt.aclose, self.llm.aclose, self.tts.aclose]
        if self.turn_detector is not None:
            closers.append(self.turn_detector.aclose)
        for closer in closers:
            try:
                await closer()
            except Exception:
                logger.exception("closing %s failed", closer)
        self._channel.end()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _listen_to(self, stream: SpeechStream) -> None:
        self._stream = stream
        self._spawn(self._listen(stream))

    async def _listen(self, stream: SpeechStream) -> None:
        """What the STT hears: interim text as it comes, and each final on to the end-of-turn decision."""
        try:
            async for event in stream:
                if event.type == "interim" and event.text.strip():
                    self._channel.emit(UserTranscript(f"{self._held_text} {event.text}".strip(), final=False))
                elif event.type == "final":
                    if event.error:
                        self._channel.emit(Error(f"speech-to-text failed: {event.error}", recoverable=True))
                    await self._on_final(event.text.strip())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("the speech-to-text stream failed (%s): one request per utterance from now on", exc)
            self._channel.emit(Error(f"speech-to-text streaming failed ({exc}); transcribing each utterance in one "
                                     "request from now on", recoverable=True, code="stt_stream_failed"))
            if stream is self._stream:
                self._listen_to(self._one_request_per_utterance())

    async def _on_final(self, text: str) -> None:
        if not text:
            if not self._held_text:
                self._nothing_to_answer()
            return
        self._held_text = f"{self._held_text} {text}".strip()
        if self._stopped_at is not None:
            self._stt_latency = asyncio.get_running_loop().time() - self._stopped_at
        probability = None
        if self.turn_detector is not None:
            try:
                probability = await self.turn_detector.end_of_turn_probability(self._options.chat_ctx,
                                                                               self._held_text)
            except Exception:
                logger.exception("the turn detector failed; the silence decides")
        threshold = self.turn_detector.unlikely_threshold if self.turn_detector is not None else 0.0
        decision = self.endpointing.decide(probability, threshold)
        if self._speaking:
            return  # the user already goes on: the turn ends after their next utterance
        loop = asyncio.get_running_loop()
        since = loop.time() - self._stopped_at if self._stopped_at is not None else 0.0
        self._cancel_end_of_turn()
        self._end_timer = loop.call_later(decision.remaining(since), self._end_of_turn, decision.reason)

    def _cancel_end_of_turn(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None

    def _end_of_turn(self, reason: str) -> None:
        self._end_timer = None
        if self._speaking or not self._held_text:
            return
        text, self._held_text = self._held_text, ""
        self._channel.emit(UserTranscript(text, final=True, end_of_turn=reason, stt_latency=self._stt_latency))
        self._stt_latency = None
        rid = f"cascade-{next(self._ids)}"
        self._start_response(rid, self._respond(rid, user_text=text, flow=True))

    def _nothing_to_answer(self) -> None:
        """The user's turn ended without text to answer: an empty response ends it."""
        self._channel.emit(ResponseDone(response_id=f"cascade-{next(self._ids)}"))

    def _start_response(self, response_id: str, coro: Awaitable[None]) -> None:
        previous = list(self._responses.values())
        self._responses[response_id] = asyncio.ensure_future(self._in_turn(response_id, previous, coro))

    async def _in_turn(self, rid: str, previous: list[asyncio.Task[None]], coro: Awaitable[None]) -> None:
        try:
            if previous:
                await asyncio.wait(previous)  # one response at a time, in the order asked
            await coro
        finally:
            if self._responses.get(rid) is asyncio.current_task():
                del self._responses[rid]

    async def _speak_only(self, rid: str, text: str) -> None:
        if self.tts.streaming:  # through the stream too: its word timings serve an interruption
            speech = _StreamedSpeech(self, rid, {})
            try:
                speech.push_text(text)
                await speech.finish()
            finally:
                await speech.aclose()
        else:
            await self._speak(rid, text)
        self._channel.emit(AgentTranscript(text, final=True, response_id=rid))
        self._channel.emit(ResponseDone(response_id=rid))

    def _context(self, user_text: str | None, instructions: str | None) -> ChatContext:
        ctx = ChatContext([])
        ctx.add_message("system", self._options.instructions)
        for item in self._options.chat_ctx.copy():
            ctx.items.append(item)
        if user_text is not None and not _in_this_turn(ctx, user_text):
            ctx.add_message("user", user_text)
        if instructions:
            ctx.add_message("system", instructions)
        return ctx

    async def _respond(
        self, rid: str, *, user_text: str | None = None, instructions: str | None = None, flow: bool = False
    ) -> None:
        loop = asyncio.get_running_loop()
        stages: dict[str, float] = {}

        async def llm_text() -> AsyncIterator[str]:
            ctx = self._context(user_text, instructions)  # now: the flow may have changed the history
            asked = loop.time()
            async for chunk in self.llm.chat(ctx, tools=self._options.tools):
                stages.setdefault("llm_ttft", loop.time() - asked)
                if isinstance(chunk, ToolCall):
                    self._channel.emit(replace(chunk, response_id=rid))
                else:
                    yield chunk
            stages["llm_duration"] = stages.get("llm_duration", 0.0) + loop.time() - asked

        conversation = self.conversation_flow if flow and user_text is not None else None
        token = _LLM_STREAM.set(llm_text)
        text, pending = "", ""
        speech = _StreamedSpeech(self, rid, stages) if self.tts.streaming else None
        try:
            if conversation is not None:
                await conversation.on_turn_start(user_text or "")
            chunks = conversation.run(user_text or "") if conversation is not None else llm_text()
            async for chunk in chunks:
                text += chunk
                self._channel.emit(AgentTranscript(chunk, final=False, response_id=rid))
                if speech is not None:  # the TTS takes the text as it comes
                    speech.push_text(chunk)
                    continue
                pending += chunk
                *sentences, pending = _SENTENCE_END.split(pending)
                for sentence in sentences:
                    await self._speak(rid, sentence, stages)
            if speech is not None:
                await speech.finish()
            elif pending.strip():
                await self._speak(rid, pending, stages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("LLM/TTS turn failed")
            self._channel.emit(Error(f"response failed: {exc}", recoverable=True))
        finally:
            if speech is not None:
                await speech.aclose()
            _LLM_STREAM.reset(token)
            if conversation is not None:
                await _guarded(conversation.on_turn_end(), "ConversationFlow.on_turn_end")
        if text:
            self._channel.emit(AgentTranscript(text, final=True, response_id=rid))
        self._channel.emit(ResponseDone(response_id=rid, stages=stages))

    async def _speak(self, rid: str, text: str, stages: dict[str, float] | None = None) -> None:
        if not text.strip():
            return
        asked = asyncio.get_running_loop().time()
        first = stages is not None and "tts_ttfb" not in stages
        async for frame in self.tts.synthesize(text):
            if first and stages is not None:
                stages["tts_ttfb"] = asyncio.get_running_loop().time() - asked
                first = False
            for out in self._tts_out.push(frame):
                self._channel.emit(AgentAudio(out, response_id=rid))
        for out in self._tts_out.flush():
            self._channel.emit(AgentAudio(out, response_id=rid))


_SPOKEN_KEPT = 16  # responses whose synthesis streams are kept for heard_text (an interruption reaches back so far)


class _StreamedSpeech:
    """One response spoken through ``TTS.stream()``: text pushed as the LLM streams it, frames emitted as they
    come; opened at the first text, so a response without text costs the provider nothing."""

    def __init__(self, pipeline: CascadingPipeline, rid: str, stages: dict[str, float]) -> None:
        self._pipeline, self._rid, self._stages = pipeline, rid, stages
        self._stream: SynthesisStream | None = None
        self._pump: asyncio.Task[None] | None = None

    def push_text(self, text: str) -> None:
        if not text:
            return
        if self._stream is None:
            self._stream = self._pipeline.tts.stream()
            spoken = self._pipeline._spoken
            spoken[self._rid] = self._stream  # its word timings cut the history if the user interrupts it
            while len(spoken) > _SPOKEN_KEPT:
                del spoken[next(iter(spoken))]
            self._pump = asyncio.ensure_future(self._emit_frames(self._stream, asyncio.get_running_loop().time()))
        self._stream.push_text(text)

    async def finish(self) -> None:
        """No more text: wait for the audio of all of it."""
        if self._stream is not None and self._pump is not None:
            self._stream.end_input()
            await self._pump

    async def aclose(self) -> None:
        """Stop the synthesis (the provider stops generating the rest); idempotent."""
        if self._stream is not None and self._pump is not None:
            await self._stream.aclose()
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

    async def _emit_frames(self, stream: SynthesisStream, asked: float) -> None:
        out, channel, loop = self._pipeline._tts_out, self._pipeline._channel, asyncio.get_running_loop()
        async for frame in stream:
            self._stages.setdefault("tts_ttfb", loop.time() - asked)
            for converted in out.push(frame):
                channel.emit(AgentAudio(converted, response_id=self._rid))
        for converted in out.flush():
            channel.emit(AgentAudio(converted, response_id=self._rid))


def _in_this_turn(ctx: ChatContext, user_text: str) -> bool:
    """Whether the history already has ``user_text`` as a user message since the agent last spoke."""
    for item in reversed(ctx.items):
        role = getattr(item, "role", None)
        if role == "assistant":
            return False
        if role == "user" and getattr(item, "text", None) == user_text:
            return True
    return False


async def _guarded(awaitable: Awaitable[None], what: str) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s raised", what)
