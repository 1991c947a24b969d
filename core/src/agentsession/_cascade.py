"""The cascade: VAD -> STT -> end of turn -> ``ConversationFlow.run`` (the LLM with tools) -> TTS, as one
``PipelineEngine``; and ``ConversationFlow``, VideoSDK's shape of the turn-taking logic between them."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._agent import Agent
from ._audio import AudioConverter, AudioFrame
from ._chat import ChatContext
from ._context_window import ContextWindow
from ._fallback import FallbackBase
from ._models import LLM, STT, TTS, VAD, EventChannel, EventSink, ModelOptions, PipelineEngine
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
from ._pipeline_hooks import _STT, _TTS, PipelineHooks, TextStream
from ._stt_stream import BufferedSpeechStream, SpeechEvent, SpeechStream
from ._tools import FunctionTool, ToolResult
from ._tts_stream import _SENTENCE_END, SynthesisStream
from ._turn_detection import Endpointing, TurnDetector
from ._vad import EnergyVAD, UtteranceCollector

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


TurnPredicate = Callable[[ChatContext, str], Awaitable[bool]]
"""An older form of turn detector: ``True`` when the text looks like the end of the turn."""



class _PredicateDetector(TurnDetector):
    def __init__(self, predicate: TurnPredicate) -> None:
        self._predicate = predicate

    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str, *,
                                      audio: AudioFrame | None = None) -> float:
        return 1.0 if await self._predicate(chat_ctx, transcript) else 0.0


class _TurnAudio:
    """The user's audio of the turn in progress, for a detector that hears it: ``preroll`` seconds before the
    VAD reported the turn's first speech, then the turn, at most ``window`` seconds (the latest)."""

    def __init__(self, window: float, preroll: float = 0.5) -> None:
        self._window, self._preroll = window, min(preroll, window)
        self._frames: deque[AudioFrame] = deque()
        self._duration = 0.0
        self.open = False

    def push(self, frame: AudioFrame) -> None:
        self._frames.append(frame)
        self._duration += frame.duration
        self._trim()

    def start(self) -> None:
        """The user's turn began: keep its audio."""
        self.open = True

    def end(self) -> None:
        """The turn is over: keep only a preroll for the next one."""
        self.open = False
        self._trim()

    def audio(self, drop: float = 0.0) -> AudioFrame | None:
        """The turn's audio so far (mono) but its last ``drop`` seconds, or ``None`` if there is none."""
        if not self._frames:
            return None
        frames = [f.to_mono() for f in self._frames]
        data = np.concatenate([f.data for f in frames])
        data = data[: max(0, data.shape[0] - round(drop * frames[0].sample_rate))]
        return AudioFrame(data, frames[0].sample_rate) if data.shape[0] else None

    def _trim(self) -> None:
        keep = self._window if self.open else self._preroll
        while self._frames and self._duration - self._frames[0].duration >= keep:
            self._duration -= self._frames.popleft().duration


class Cascade(PipelineEngine):
    """VAD -> STT -> end of turn -> ``ConversationFlow.run`` (the LLM with tools) -> TTS, sentence by sentence.

    Listening: the VAD cuts the user's audio into utterances; the STT's stream (``STT.stream()``) transcribes
    them, with interim transcripts when the STT streams (``UserTranscript(final=False)``). When a final
    transcript is in, the ``turn_detector`` (e.g. ``TextTurnDetector``) scores whether the user is done and
    ``endpointing`` turns that into a wait: the turn ends after ``min_endpointing_delay`` of silence when it
    looks over, after ``max_endpointing_delay`` when it does not, and at once goes on if the user speaks again
    meanwhile. The final ``UserTranscript`` says why the turn ended (``end_of_turn``: ``"silence"``,
    ``"turn_detector"`` or ``"max_delay"``) and how long the endpointing waited after the VAD's end of speech,
    and the LLM starts right then.

    Responses are generated one at a time, in the order asked. A user turn's response gets an id of the
    cascade's own (``cascade-N``). A stage that fails or stays silent past its timeout (``llm_timeout`` for
    each LLM token, ``tts_timeout`` for each TTS chunk) is an ``Error`` naming the component, and the response
    ends there: the turn never hangs. The pipeline hooks (``llm``, ``tts``, ``stt`` transforms, ``turn_state``)
    run here.
    """

    def __init__(
        self,
        *,
        stt: STT,
        llm: LLM,
        tts: TTS,
        vad: VAD | None = None,
        turn_detector: TurnDetector | None = None,
        endpointing: Endpointing | None = None,
        streaming_stt: bool | None = None,
        hooks: PipelineHooks | None = None,
        conversation_flow: ConversationFlow | None = None,
        context_window: ContextWindow | None = None,
        llm_timeout: float = 30.0,
        tts_timeout: float = 15.0,
    ) -> None:
        self.stt, self.llm, self.tts = stt, llm, tts
        self.context_window = context_window
        self.vad = vad if vad is not None else EnergyVAD()
        self._utterances = UtteranceCollector(self.vad, preroll=float(getattr(self.vad, "prefix_padding", 0.3)))
        self.turn_detector = turn_detector
        self.endpointing = endpointing if endpointing is not None else Endpointing()
        self.hooks = hooks if hooks is not None else PipelineHooks()
        self.conversation_flow = conversation_flow
        self.llm_timeout, self.tts_timeout = llm_timeout, tts_timeout
        self.input_sample_rate = stt.sample_rate
        window = turn_detector.audio_window if turn_detector is not None else 0.0
        self._turn_audio = _TurnAudio(window) if window > 0 else None
        self._stop_audio: AudioFrame | None = None  # the turn's audio up to where the user last stopped
        self._channel = EventChannel()
        self._options = ModelOptions(instructions="")
        self._stream: SpeechStream | None = None
        self._speaking = False
        self._stopped_at: float | None = None  # loop time the user last stopped speaking
        self._held_text = ""  # final text of the turn so far, waiting for the end of the turn
        self._stt_latency: float | None = None  # the user stopped -> the last final transcript
        self._end_timer: asyncio.TimerHandle | None = None
        self._undecided = False  # a final came while the VAD still heard the user: decide when it stops
        self._owed: set[str] = set()  # utterances the STT heard start and has not given the final of yet
        self._responses: dict[str, asyncio.Task[None]] = {}  # in the order asked; the first one runs
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._tts_out = AudioConverter(tts.sample_rate)
        self._spoken: dict[str, SynthesisStream] = {}  # the last responses spoken through tts.stream(), by id
        self._hook_audio: asyncio.Queue[AudioFrame | None] | None = None  # the "stt" hook's input
        self.streaming_stt = stt.streaming if streaming_stt is None else streaming_stt

    async def start(self, options: ModelOptions) -> None:
        self._options = options
        for part in (self.stt, self.llm, self.tts):  # fallback providers report their switches as Error events
            if isinstance(part, FallbackBase):
                part.report_to(self._channel.emit)
        if self.hooks.stt_stream is not None:
            self._spawn(self._listen_through_hook(self.hooks.stt_stream))
        else:
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
        if self._turn_audio is not None:
            self._turn_audio.push(frame)
        for event, audio in self._utterances.push(frame):
            if audio is None:
                self._speaking = True
                if self._turn_audio is not None:
                    self._turn_audio.start()
                self._cancel_end_of_turn()  # the user went on: the turn is not over
                self._channel.emit(UserSpeechStarted())
                continue
            self._speaking = False
            if self._turn_audio is not None:
                self._stop_audio = self._turn_audio.audio(self._extra_silence(event.position))
            self._stopped_at = asyncio.get_running_loop().time()
            self._channel.emit(UserSpeechStopped(audio_end=event.position))
            if self._hook_audio is not None:
                self._hook_audio.put_nowait(audio)
                continue
            if stream is None:
                continue
            if not streaming:
                stream.push_audio(audio)
                stream.flush()
            elif getattr(self.stt, "turn_detection", True) is None:  # a streaming STT that leaves ends to us
                stream.flush()
            elif self._undecided and not self._owed:
                # a streaming STT that ends utterances itself gave this speech's final before the VAD heard its end
                self._stt_latency = 0.0
                self._spawn(self._decide())
            elif self._held_text:
                # text held, this speech's final still to come: it decides when it comes; if none does (no words
                # were heard), the held text ends the turn after the longest wait
                self._cancel_end_of_turn()
                self._end_timer = asyncio.get_running_loop().call_later(
                    self.endpointing.max_endpointing_delay, self._end_of_turn, "max_delay")

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

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        """The results are in the history the LLM reads (the session put them there): nothing to send."""

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._options = ModelOptions(instructions, list(tools), self._options.chat_ctx)

    def heard_text(self, response_id: str, seconds: float) -> str | None:
        stream = self._spoken.get(response_id)
        return stream.heard_text(seconds) if stream is not None else None

    async def close(self) -> None:
        self._cancel_end_of_turn()
        if self._stream is not None:
            await self._stream.aclose()
        if self._hook_audio is not None:
            self._hook_audio.put_nowait(None)
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

    # ------------------------------------------------------------------ listening

    def _listen_to(self, stream: SpeechStream) -> None:
        self._stream = stream
        self._spawn(self._listen(stream))

    async def _listen(self, stream: SpeechStream) -> None:
        """What the STT hears: interim text as it comes, and each final on to the end-of-turn decision."""
        try:
            async for event in stream:
                await self._on_speech_event(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("the speech-to-text stream failed (%s): one request per utterance from now on", exc)
            self._channel.emit(Error(f"speech-to-text streaming failed ({exc}); transcribing each utterance in one "
                                     "request from now on", recoverable=True, code="stt_stream_failed",
                                     component="stt"))
            if stream is self._stream:
                self._listen_to(self._one_request_per_utterance())

    async def _on_speech_event(self, event: SpeechEvent) -> None:
        if event.type == "speech_started" and event.utterance_id:
            self._owed.add(event.utterance_id)
        elif event.type == "interim" and event.text.strip():
            self._channel.emit(UserTranscript(f"{self._held_text} {event.text}".strip(), final=False))
        elif event.type == "final":
            self._owed.discard(event.utterance_id)
            if event.error:
                self._channel.emit(Error(f"speech-to-text failed: {event.error}", recoverable=True,
                                         code="stt_failed", component="stt"))
            await self._on_final(event.text.strip())

    async def _listen_through_hook(self, hook: Callable[[AsyncIterator[Any]], AsyncIterator[Any]]) -> None:
        """The ``"stt"`` hook between the utterances and the STT: it gets each utterance's audio as mono 16-bit PCM
        bytes (VideoSDK's hooks read ``len(audio)`` as a byte count) and yields the speech events it keeps
        (``run_stt`` transcribes bytes at that rate, or ``AudioFrame``s)."""
        queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._hook_audio = queue
        rate = self.stt.sample_rate  # the utterances' rate once the first came

        async def utterances() -> AsyncIterator[bytes]:
            nonlocal rate
            while (audio := await queue.get()) is not None:
                rate = audio.sample_rate
                yield audio.to_mono().to_bytes()

        async def transcribe(audio: AsyncIterator[Any]) -> AsyncIterator[SpeechEvent]:
            async for chunk in audio:
                frame = chunk if isinstance(chunk, AudioFrame) else AudioFrame.from_bytes(bytes(chunk), rate)
                try:
                    text = await self.stt.transcribe(frame)
                except Exception as exc:  # noqa: BLE001 - a failed utterance is a final with its error
                    yield SpeechEvent("final", "", error=str(exc))
                    continue
                yield SpeechEvent("final", text)

        token = _STT.set(transcribe)
        try:
            async for event in hook(utterances()):
                if isinstance(event, SpeechEvent):
                    await self._on_speech_event(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the \"stt\" hook failed")
            self._channel.emit(Error(f"the \"stt\" hook failed: {exc}", recoverable=False, component="stt"))
        finally:
            _STT.reset(token)

    async def _on_final(self, text: str) -> None:
        if not text:
            if not self._held_text:
                self._nothing_to_answer()
            elif not self._speaking:  # an utterance of nothing (noise) after text held: that text ends the turn
                await self._decide()
            return
        self._held_text = f"{self._held_text} {text}".strip()
        if self._stopped_at is not None and not self._speaking:
            self._stt_latency = asyncio.get_running_loop().time() - self._stopped_at
        await self._decide()

    async def _decide(self) -> None:
        """Score the turn so far and arm the end-of-turn wait from where the user stopped."""
        probability = await self._end_of_turn_probability()
        threshold = self.turn_detector.unlikely_threshold if self.turn_detector is not None else 0.0
        decision = self.endpointing.decide(probability, threshold)
        if probability is not None and self.hooks.has("turn_state"):
            self.hooks.fire("turn_state", {"text": self._held_text, "eou_probability": probability,
                                           "state": "Incomplete" if probability < threshold else "Complete"})
        if self._speaking:
            # the user goes on, or the VAD has not heard the end of this speech yet: decide when it does, unless
            # the STT owes the final of speech that started since (that final decides then)
            self._cancel_end_of_turn()
            self._undecided = True
            return
        if not self._held_text:
            return
        loop = asyncio.get_running_loop()
        since = loop.time() - self._stopped_at if self._stopped_at is not None else 0.0
        self._cancel_end_of_turn()
        self._end_timer = loop.call_later(decision.remaining(since), self._end_of_turn, decision.reason)

    async def _end_of_turn_probability(self) -> float | None:
        """The detector's score for the turn so far; ``None`` (the silence decides) without a detector, when it
        fails, or when it hears audio and the VAD has not stopped yet (a streaming STT's final came first)."""
        detector = self.turn_detector
        if detector is None or (self._turn_audio is not None and self._stop_audio is None):
            return None
        try:
            if self._turn_audio is None:
                return await detector.end_of_turn_probability(self._options.chat_ctx, self._held_text)
            return await detector.end_of_turn_probability(self._options.chat_ctx, self._held_text,
                                                          audio=self._stop_audio)
        except Exception as exc:
            logger.exception("the turn detector failed; the silence decides")
            self._channel.emit(Error(f"the turn detector failed ({exc}); the silence decides",
                                     recoverable=True, code="turn_detector_failed", component="turn_detector"))
            return None

    def _cancel_end_of_turn(self) -> None:
        self._undecided = False
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None

    def _end_of_turn(self, reason: str) -> None:
        self._end_timer = None
        if self._speaking or not self._held_text:
            return
        self._turn_over()
        text, self._held_text = self._held_text, ""
        waited = asyncio.get_running_loop().time() - self._stopped_at if self._stopped_at is not None else None
        self._channel.emit(UserTranscript(text, final=True, end_of_turn=reason, stt_latency=self._stt_latency,
                                          endpointing_delay=waited))
        self._stt_latency = None
        rid = f"cascade-{next(self._ids)}"
        self._start_response(rid, self._respond(rid, user_text=text, flow=True))

    def _extra_silence(self, speech_end: float) -> float:
        """Seconds of the silence the VAD heard before this stop that the detector does not want."""
        wanted = self.turn_detector.audio_silence if self.turn_detector is not None else None
        return 0.0 if wanted is None else max(0.0, self._utterances.position - speech_end - wanted)

    def _turn_over(self) -> None:
        if self._turn_audio is not None:
            self._turn_audio.end()
            self._stop_audio = None

    def _nothing_to_answer(self) -> None:
        """The user's turn ended without text to answer: an empty response ends it."""
        self._turn_over()
        self._channel.emit(ResponseDone(response_id=f"cascade-{next(self._ids)}"))

    # ------------------------------------------------------------------ answering

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
        stages: dict[str, float] = {}
        failed = await self._guard(rid, self._speak(rid, _one(text), stages))
        self._channel.emit(AgentTranscript(text, final=True, response_id=rid))
        self._channel.emit(ResponseDone(response_id=rid, stages=stages, interrupted=failed))

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
        spoken: list[str] = []

        async def llm_text() -> AsyncIterator[str]:
            if self.context_window is not None:  # the history within its budget (in place: the session's own)
                await self.context_window.manage(self._options.chat_ctx, self.llm)
            ctx = self._context(user_text, instructions)  # now: the flow may have changed the history
            asked = loop.time()
            try:
                async for chunk in _each_within(self.llm.chat(ctx, tools=self._options.tools), self.llm_timeout,
                                                "llm"):
                    stages.setdefault("llm_ttft", loop.time() - asked)
                    if isinstance(chunk, ToolCall):
                        self._channel.emit(replace(chunk, response_id=rid))
                    else:
                        yield chunk
            finally:
                stages["llm_duration"] = stages.get("llm_duration", 0.0) + loop.time() - asked

        async def sentences() -> AsyncIterator[str]:
            conversation = self.conversation_flow if flow and user_text is not None else None
            _LLM_STREAM.set(llm_text)  # (not reset by token: the stream may end in another task than it began)
            try:
                if conversation is not None:
                    await conversation.on_turn_start(user_text or "")
                chunks: TextStream = conversation.run(user_text or "") if conversation is not None else llm_text()
                if self.hooks.llm_stream is not None:
                    chunks = self.hooks.llm_stream(chunks)
                pending = ""
                as_it_comes = self._text_streams  # a streaming TTS takes the text as it comes
                async for chunk in chunks:
                    spoken.append(chunk)
                    self._channel.emit(AgentTranscript(chunk, final=False, response_id=rid))
                    if as_it_comes:
                        yield chunk
                        continue
                    pending += chunk
                    *done, pending = _SENTENCE_END.split(pending)
                    for sentence in done:
                        yield sentence
                if pending.strip():
                    yield pending
            finally:
                _LLM_STREAM.set(None)
                if conversation is not None:
                    await _guarded(conversation.on_turn_end(), "ConversationFlow.on_turn_end")

        failed = await self._guard(rid, self._speak(rid, sentences(), stages))
        text = "".join(spoken)
        if text:
            self._channel.emit(AgentTranscript(text, final=True, response_id=rid))
        self._channel.emit(ResponseDone(response_id=rid, stages=stages, interrupted=failed and not text))

    async def _guard(self, rid: str, speaking: Awaitable[None]) -> bool:
        """Run one response's speaking; a stage that fails is an ``Error`` naming it. True when it failed."""
        try:
            await speaking
        except asyncio.CancelledError:
            raise
        except _StageFailed as exc:
            logger.error("response %s: %s", rid, exc)
            self._channel.emit(Error(str(exc), recoverable=True, code=f"{exc.component}_failed",
                                     component=exc.component))
            return True
        except Exception as exc:
            logger.exception("response %s failed", rid)
            self._channel.emit(Error(f"the response failed: {exc}", recoverable=True, code="response_failed",
                                     component="pipeline"))
            return True
        return False

    async def _speak(self, rid: str, texts: TextStream, stages: dict[str, float]) -> None:
        """Speak ``texts`` (sentences) through the ``"tts"`` hook if there is one, else the TTS."""
        loop = asyncio.get_running_loop()
        asked: list[float] = []

        async def timed(source: TextStream) -> TextStream:
            async for text in source:
                if text.strip():
                    asked.append(loop.time())
                    yield text

        hook = self.hooks.tts_stream

        def synthesize(source: TextStream) -> AsyncIterator[AudioFrame]:
            return self._synthesize(source, rid)

        token = _TTS.set(synthesize)
        try:
            audio = hook(timed(texts)) if hook is not None else synthesize(timed(texts))
            async for chunk in audio:
                frame = chunk if isinstance(chunk, AudioFrame) else AudioFrame.from_bytes(bytes(chunk), self.tts.sample_rate)
                if asked and "tts_ttfb" not in stages:
                    stages["tts_ttfb"] = loop.time() - asked[0]
                for out in self._tts_out.push(frame):
                    self._channel.emit(AgentAudio(out, response_id=rid))
        finally:
            _TTS.reset(token)
            for out in self._tts_out.flush():
                self._channel.emit(AgentAudio(out, response_id=rid))

    @property
    def _text_streams(self) -> bool:
        """Whether the answer's text goes to the TTS as it comes (a streaming TTS, no ``"tts"`` hook)."""
        return self.tts.streaming and self.hooks.tts_stream is None

    async def _synthesize(self, texts: TextStream, rid: str) -> AsyncIterator[AudioFrame]:
        """``run_tts``: the texts through the TTS, each chunk of audio within ``tts_timeout``. A streaming TTS
        gets them as they come, on one stream per response (kept a while: its word timings say what the user
        heard of an interrupted answer); any other, one request per text."""
        if not self.tts.streaming:
            async for text in texts:
                if text.strip():
                    async for frame in _each_within(self.tts.synthesize(text), self.tts_timeout, "tts"):
                        yield frame
            return
        iterator = texts.__aiter__()
        async for first in iterator:  # opened at the first text: a response without any costs the provider nothing
            if first:
                break
        else:
            return
        stream = self.tts.stream()
        self._spoken[rid] = stream
        while len(self._spoken) > _SPOKEN_KEPT:
            del self._spoken[next(iter(self._spoken))]
        stream.push_text(first)
        async with stream.feeding(iterator) as feeding:
            async for frame in _each_within(stream, self.tts_timeout, "tts", stop=feeding):
                yield frame
            await feeding  # a failure of the text's source is raised here


_SPOKEN_KEPT = 16  # responses whose synthesis streams are kept for heard_text (an interruption reaches back so far)


class _StageFailed(Exception):
    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


async def _each_within(source: AsyncIterable[Any], timeout: float, component: str,
                       stop: asyncio.Future[None] | None = None) -> AsyncIterator[Any]:
    """``source``'s items, each within ``timeout`` seconds; a failure or silence is ``_StageFailed``. With
    ``stop`` (what feeds the source), its failure ends the iteration at once."""
    names = {"llm": "the LLM", "tts": "the TTS"}
    iterator = source.__aiter__()
    try:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    if stop is None:
                        item = await iterator.__anext__()
                    else:
                        item = await _next_unless_failed(iterator, stop)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _StageFailed(component, f"{names[component]} sent nothing for {timeout:g} s") from None
            except (asyncio.CancelledError, _StageFailed):
                raise
            except Exception as exc:
                raise _StageFailed(component, f"{names[component]} failed: {type(exc).__name__}: {exc}") from exc
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _next_unless_failed(iterator: AsyncIterator[Any], feeding: asyncio.Future[None]) -> Any:
    """The next item, unless what feeds the iterator fails first (its exception is raised then)."""
    step = asyncio.ensure_future(iterator.__anext__())
    try:
        await asyncio.wait((step, feeding), return_when=asyncio.FIRST_COMPLETED)
        if not step.done() and feeding.done() and not feeding.cancelled() and feeding.exception() is not None:
            raise feeding.exception()  # type: ignore[misc]
        return await step
    finally:
        if not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)


async def _one(text: str) -> TextStream:
    yield text


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
