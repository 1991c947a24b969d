"""Pipelines: what the session drives. A realtime model, or a cascade of VAD, STT, LLM and TTS."""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
from ._tools import ToolResult
from ._vad import EnergyVAD, UtteranceCollector

logger = logging.getLogger("agentsession.pipeline")


@dataclass(frozen=True)
class Answer:
    """Returned by ``ConversationFlow.on_user_turn``: speak this instead of asking the model."""

    text: str


class ConversationFlow:
    """Sees each final user turn before the model and each agent turn after it.

    ``on_user_turn`` returns the text to send on (changed or not), an ``Answer`` to speak directly, or
    ``None`` to drop the turn. It applies to cascades and to typed text; a realtime model hears the
    user's audio itself, so there it only sees ``on_agent_turn``.
    """

    async def on_user_turn(self, text: str) -> str | Answer | None:
        return text

    async def on_agent_turn(self, text: str) -> None:
        return None


class Pipeline(ABC):
    """What an ``AgentSession`` drives: audio in, ``PipelineEvent``s out, plus control calls."""

    conversation_flow: ConversationFlow | None = None

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
    async def send_text(self, text: str) -> None: ...

    @abstractmethod
    async def say(self, text: str) -> None: ...

    @abstractmethod
    async def reply(self, instructions: str | None = None) -> None: ...

    @abstractmethod
    async def interrupt(self, played: float | None = None) -> None:
        """Stop the current response now; no queued audio of it is delivered afterwards."""

    @abstractmethod
    async def send_tool_result(self, result: ToolResult) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class RealTimePipeline(Pipeline):
    """A speech-to-speech model behind the session."""

    def __init__(self, model: RealtimeModel) -> None:
        if not isinstance(model, RealtimeModel):
            raise TypeError(f"RealTimePipeline needs a RealtimeModel, got {type(model).__name__}")
        self.model = model

    @property
    def input_sample_rate(self) -> int:
        return self.model.input_sample_rate

    async def start(self, options: ModelOptions) -> None:
        await self.model.start(options)

    def push_audio(self, frame: AudioFrame) -> None:
        self.model.push_audio(frame)

    def attach(self, sink: EventSink) -> None:
        self.model.channel.attach(sink)

    async def send_text(self, text: str) -> None:
        decided = await _apply_flow(self.conversation_flow, text)
        if isinstance(decided, Answer):
            await self.model.say(decided.text)
        elif decided is not None:
            await self.model.send_text(decided)

    async def say(self, text: str) -> None:
        await self.model.say(text)

    async def reply(self, instructions: str | None = None) -> None:
        await self.model.reply(instructions)

    async def interrupt(self, played: float | None = None) -> None:
        self.model.channel.purge_audio()
        await self.model.interrupt(played)

    async def send_tool_result(self, result: ToolResult) -> None:
        await self.model.send_tool_result(result)

    async def close(self) -> None:
        await self.model.close()


async def _apply_flow(flow: ConversationFlow | None, text: str) -> str | Answer | None:
    if flow is None:
        return text
    try:
        return await flow.on_user_turn(text)
    except Exception:
        logger.exception("conversation flow raised on a user turn; passing the turn on unchanged")
        return text


TurnDetector = Callable[[ChatContext, str], Awaitable[bool]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class CascadingPipeline(Pipeline):
    """VAD -> STT -> (ConversationFlow) -> LLM with tools -> TTS, sentence by sentence.

    ``turn_detector(ctx, text)`` may say a pause is not the end of the turn; the pipeline then waits
    ``turn_hold`` seconds for more speech before answering anyway.
    """

    def __init__(
        self,
        *,
        stt: STT,
        llm: LLM,
        tts: TTS,
        vad: VAD | None = None,
        turn_detector: TurnDetector | None = None,
        turn_hold: float = 1.0,
    ) -> None:
        self.stt, self.llm, self.tts = stt, llm, tts
        self.vad = vad if vad is not None else EnergyVAD()
        self._utterances = UtteranceCollector(self.vad)
        self.turn_detector = turn_detector
        self.turn_hold = turn_hold
        self._channel = EventChannel()
        self._options = ModelOptions(instructions="")
        self._speaking = False
        self._held_text = ""
        self._hold_timer: asyncio.TimerHandle | None = None
        self._response: asyncio.Task[None] | None = None
        self._turn_tasks: set[asyncio.Task[None]] = set()
        self._pending_calls: dict[str, ToolCall] = {}
        self._results: list[ToolResult] = []
        self._tts_out = AudioConverter(tts.sample_rate)

    @property
    def input_sample_rate(self) -> int:
        return self.stt.sample_rate

    async def start(self, options: ModelOptions) -> None:
        self._options = options

    def push_audio(self, frame: AudioFrame) -> None:
        for event, audio in self._utterances.push(frame):
            if audio is None:
                self._speaking = True
                if self._hold_timer is not None:
                    self._hold_timer.cancel()
                    self._hold_timer = None
                self._channel.emit(UserSpeechStarted())
            else:
                self._speaking = False
                self._channel.emit(UserSpeechStopped(audio_end=event.position))
                self._spawn(self._transcribe(audio))

    def attach(self, sink: EventSink) -> None:
        self._channel.attach(sink)

    async def send_text(self, text: str) -> None:
        await self._user_turn(text)

    async def say(self, text: str) -> None:
        self._start_response(self._speak_only(text))

    async def reply(self, instructions: str | None = None) -> None:
        self._start_response(self._respond(instructions))

    async def interrupt(self, played: float | None = None) -> None:
        self._channel.purge_audio()
        if self._response is not None and not self._response.done():
            self._response.cancel()
            await asyncio.gather(self._response, return_exceptions=True)
            self._tts_out.clear()
            self._channel.emit(ResponseDone(interrupted=True))

    async def send_tool_result(self, result: ToolResult) -> None:
        if self._pending_calls.pop(result.call_id, None) is None:
            logger.warning("tool result for unknown call %s ignored", result.call_id)
            return
        self._results.append(result)
        if not self._pending_calls:
            self._results.clear()
            self._start_response(self._respond(None))

    async def close(self) -> None:
        tasks = list(self._turn_tasks) + ([self._response] if self._response else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        for closer in (self.stt.aclose, self.llm.aclose, self.tts.aclose):
            try:
                await closer()
            except Exception:
                logger.exception("closing %s failed", closer)
        self._channel.end()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._turn_tasks.add(task)
        task.add_done_callback(self._turn_tasks.discard)

    async def _transcribe(self, audio: AudioFrame) -> None:
        try:
            text = (await self.stt.transcribe(audio)).strip()
        except Exception as exc:
            logger.exception("speech-to-text failed")
            self._channel.emit(Error(f"speech-to-text failed: {exc}", recoverable=True))
            self._channel.emit(ResponseDone())
            return
        if not text:
            self._channel.emit(ResponseDone())
            return
        text = f"{self._held_text} {text}".strip()
        self._held_text = ""
        if self.turn_detector is not None and not await self.turn_detector(self._options.chat_ctx, text):
            self._held_text = text
            loop = asyncio.get_running_loop()
            self._hold_timer = loop.call_later(self.turn_hold, self._release_hold)
            self._channel.emit(ResponseDone())
            return
        self._channel.emit(UserTranscript(text, final=True))
        await self._user_turn(text, transcribed=True)

    def _release_hold(self) -> None:
        self._hold_timer = None
        if self._held_text and not self._speaking:
            text, self._held_text = self._held_text, ""
            self._channel.emit(UserTranscript(text, final=True))
            self._spawn(self._user_turn(text, transcribed=True))

    async def _user_turn(self, text: str, *, transcribed: bool = False) -> None:
        decided = await _apply_flow(self.conversation_flow, text)
        if decided is None:
            self._channel.emit(ResponseDone())
        elif isinstance(decided, Answer):
            self._start_response(self._speak_only(decided.text))
        else:
            self._start_response(self._respond(None, user_text=decided))

    def _start_response(self, coro: Awaitable[None]) -> None:
        if self._response is not None and not self._response.done():
            self._response.cancel()
        self._response = asyncio.ensure_future(coro)

    async def _speak_only(self, text: str) -> None:
        await self._speak(text)
        self._channel.emit(AgentTranscript(text, final=True))
        self._channel.emit(ResponseDone())

    async def _respond(self, instructions: str | None, user_text: str | None = None) -> None:
        ctx = ChatContext([])
        ctx.add_message("system", self._options.instructions)
        for item in self._options.chat_ctx.copy():
            ctx.items.append(item)
        if user_text is not None:
            last = ctx.items[-1] if len(ctx) else None
            if not (getattr(last, "role", None) == "user" and getattr(last, "text", None) == user_text):
                ctx.add_message("user", user_text)
        if instructions:
            ctx.add_message("system", instructions)
        text, pending = "", ""
        try:
            async for chunk in self.llm.chat(ctx, tools=self._options.tools):
                if isinstance(chunk, ToolCall):
                    self._pending_calls[chunk.id] = chunk
                    self._channel.emit(chunk)
                    continue
                text += chunk
                pending += chunk
                self._channel.emit(AgentTranscript(chunk, final=False))
                *sentences, pending = _SENTENCE_END.split(pending)
                for sentence in sentences:
                    await self._speak(sentence)
            if pending.strip():
                await self._speak(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("LLM/TTS turn failed")
            self._channel.emit(Error(f"response failed: {exc}", recoverable=True))
        if text:
            self._channel.emit(AgentTranscript(text, final=True))
        self._channel.emit(ResponseDone())

    async def _speak(self, text: str) -> None:
        if not text.strip():
            return
        async for frame in self.tts.synthesize(text):
            for out in self._tts_out.push(frame):
                self._channel.emit(AgentAudio(out))
        for out in self._tts_out.flush():
            self._channel.emit(AgentAudio(out))
