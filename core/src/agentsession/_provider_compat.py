"""Custom providers written against VideoSDK 1.0's base classes run unchanged here.

VideoSDK's ``LLM.chat(messages, tools=None, **kwargs)`` yields ``LLMResponse``; its ``STT.process_audio(bytes)``
reports ``STTResponse``s through ``self._transcript_callback``; its ``TTS.synthesize(text)`` is a coroutine that
writes PCM bytes with ``await self.audio_track.add_new_bytes(...)``; its ``VAD.process_audio(bytes)`` reports
``VADResponse``s through ``self._vad_callback``. Our base classes (``_models``) see such a subclass when it is
defined and give it our contract through the adapters here, so the cascade never knows the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from ._audio import AudioConverter, AudioFrame
from ._chat import ChatRole
from ._pipeline_events import ToolCall
from ._secrets import redact
from ._stt_stream import SpeechEvent, SpeechStream
from ._tools import FunctionTool

# the provider base classes (``_models``) are above this module, which they use: a provider is typed loosely here
STT: TypeAlias = Any
TTS: TypeAlias = Any
VAD: TypeAlias = Any

__all__ = [
    "FlushMarker",
    "FunctionToolInfo",
    "LLMResponse",
    "STTResponse",
    "SpeechData",
    "SpeechEventType",
    "VADData",
    "VADEventType",
    "VADResponse",
    "build_openai_schema",
    "get_tool_info",
    "is_function_tool",
    "segment_text",
]

logger = logging.getLogger("agentsession.providers")

#: VideoSDK hands an STT or a VAD the room's audio: 48 kHz stereo PCM16 unless the provider sets ``sample_rate``
VIDEOSDK_INPUT_RATE = 48000
VIDEOSDK_INPUT_CHANNELS = 2


# --------------------------------------------------------------------------- VideoSDK's data types


@dataclass
class LLMResponse:
    """One item of a VideoSDK-style ``LLM.chat()`` stream: text in ``content``; a tool call is
    ``metadata={"function_call": {"name": ..., "arguments": dict or JSON text, "id": ...}}``."""

    content: str
    role: ChatRole = ChatRole.ASSISTANT
    metadata: dict[str, Any] | None = None


class SpeechEventType(StrEnum):
    """What a VideoSDK-style STT reports (``STTResponse.event_type``)."""

    START = "start_of_speech"
    INTERIM = "interim_transcript"
    PREFLIGHT = "preflight_transcript"
    FINAL = "final_transcript"
    END = "end_of_speech"


@dataclass
class SpeechData:
    """A transcript (or a speech event's details) from a VideoSDK-style STT."""

    text: str
    confidence: float = 0.0
    language: str | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    duration: float = 0.0


@dataclass
class STTResponse:
    """What a VideoSDK-style STT hands its ``_transcript_callback``."""

    event_type: SpeechEventType
    data: SpeechData
    metadata: dict[str, Any] | None = None


class VADEventType(StrEnum):
    """What a VideoSDK-style VAD reports (``VADResponse.event_type``)."""

    START_OF_SPEECH = "start_of_speech"
    END_OF_SPEECH = "end_of_speech"
    FRAME_PROCESSED = "frame_processed"


@dataclass
class VADData:
    """A VideoSDK-style VAD's reading of the audio."""

    is_speech: bool
    confidence: float = 0.0
    timestamp: float = 0.0
    speech_duration: float = 0.0
    silence_duration: float = 0.0


@dataclass
class VADResponse:
    """What a VideoSDK-style VAD hands its ``_vad_callback``."""

    event_type: VADEventType
    data: VADData
    metadata: dict[str, Any] | None = field(default=None)


class FlushMarker:
    """VideoSDK's segment boundary in a TTS text stream; our cascade gives a TTS one sentence at a time, so a
    VideoSDK-style ``synthesize`` never receives one here."""

    __slots__ = ()


# --------------------------------------------------------------------------- tools, as a custom LLM reads them


@dataclass
class FunctionToolInfo:
    """A tool's name, description and JSON schema of its parameters (VideoSDK's ``get_tool_info``)."""

    name: str
    description: str | None = None
    parameters_schema: dict[str, Any] | None = None


def is_function_tool(obj: object) -> bool:
    """Whether ``obj`` is a tool (``@function_tool``, bound to its agent or not)."""
    return isinstance(obj, FunctionTool)


def get_tool_info(tool: object) -> FunctionToolInfo:
    """The tool's name, description and parameters' schema; ``ValueError`` for anything else."""
    if not isinstance(tool, FunctionTool):
        raise ValueError(f"not a function tool: {tool!r} (decorate it with @function_tool)")
    return FunctionToolInfo(tool.name, tool.description, tool.parameters)


def build_openai_schema(tool: object) -> dict[str, Any]:
    """The tool as OpenAI's function-calling API describes one: ``{"name", "description", "parameters",
    "type": "function"}``."""
    info = get_tool_info(tool)
    parameters = info.parameters_schema or {"type": "object", "properties": {}}
    return {"name": info.name, "description": info.description or "", "parameters": parameters, "type": "function"}


# --------------------------------------------------------------------------- LLM


def _tool_call(call: Any) -> ToolCall | None:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    call_id = call.get("call_id") or call.get("id") or f"call_{uuid.uuid4().hex[:12]}"
    return ToolCall(str(call_id), call["name"], arguments, response_id="")


def adapt_chat(chat: Callable[..., Any]) -> Callable[..., AsyncIterator[str | ToolCall]]:
    """Wrap an ``LLM.chat``: items that are VideoSDK ``LLMResponse``s become text and ``ToolCall``s; ours pass."""

    async def adapted(self: Any, ctx: Any, *, tools: Any = (), **kwargs: Any) -> AsyncIterator[str | ToolCall]:
        stream = chat(self, ctx, tools=list(tools), **kwargs)
        if inspect.isawaitable(stream):  # an ``async def`` returning an iterator
            stream = await stream
        try:
            async for item in stream:
                if isinstance(item, LLMResponse):
                    call = _tool_call((item.metadata or {}).get("function_call"))
                    if call is not None:
                        yield call
                    elif item.content:
                        yield item.content
                else:
                    yield item
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    adapted.__name__, adapted.__qualname__, adapted.__doc__ = chat.__name__, chat.__qualname__, chat.__doc__
    adapted._agentsession_adapted = True  # type: ignore[attr-defined]
    return adapted


# --------------------------------------------------------------------------- STT


_SPEECH_EVENTS = {
    SpeechEventType.START: "speech_started",
    SpeechEventType.INTERIM: "interim",
    SpeechEventType.PREFLIGHT: "interim",
    SpeechEventType.FINAL: "final",
    SpeechEventType.END: "speech_stopped",
}


class VideoSDKSpeechStream(SpeechStream):
    """The live transcription of a VideoSDK-style STT: frames go to its ``process_audio`` as PCM16 bytes at its
    ``sample_rate`` (48 kHz stereo by default, as VideoSDK's room gives them), one call at a time; what it
    reports through ``_transcript_callback`` comes out as ``SpeechEvent``s."""

    def __init__(self, stt: STT, *, language: str | None = None) -> None:
        super().__init__()
        self._stt = stt
        self._language = language
        self._channels = int(getattr(stt, "num_channels", VIDEOSDK_INPUT_CHANNELS))
        self._converter = AudioConverter(stt.sample_rate, self._channels)
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._count = 0
        self._input_ended = False
        stt._transcript_callback = self._on_response
        self._worker = asyncio.get_running_loop().create_task(self._feed(), name="stt-videosdk-stream")

    async def _on_response(self, response: STTResponse) -> None:
        kind = _SPEECH_EVENTS.get(SpeechEventType(response.event_type))
        if kind is None:
            return
        if kind == "final":
            self._count += 1
        utterance = f"utterance_{self._count + (kind != 'final')}"
        text = response.data.text.strip() if kind in ("interim", "final") else ""
        self._emit(SpeechEvent(kind, text, utterance))  # type: ignore[arg-type]

    def push_audio(self, frame: AudioFrame) -> None:
        if self._input_ended or self.finished:
            raise RuntimeError("push_audio() after end_input() or aclose()")
        for out in self._converter.push(frame):
            self._audio.put_nowait(out.to_bytes())

    def flush(self) -> None:
        """VideoSDK's STTs end utterances themselves; pushed audio is already on its way."""

    def end_input(self) -> None:
        if not self._input_ended and not self.finished:
            self._input_ended = True
            for out in self._converter.flush():
                self._audio.put_nowait(out.to_bytes())
            self._audio.put_nowait(None)

    async def aclose(self) -> None:
        self._input_ended = True
        if not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await super().aclose()

    async def _feed(self) -> None:
        try:
            while (chunk := await self._audio.get()) is not None:
                await self._stt.process_audio(chunk, language=self._language)
            flush = getattr(self._stt, "flush", None)
            if flush is not None:
                result = flush()
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:  # noqa: BLE001 - the stream fails; the cascade falls back and says so
            logger.warning("%s failed: %s", type(self._stt).__name__, redact(str(exc)))
            self._fail(exc)
            return
        self._finish()


async def transcribe_with_stream(stt: STT, audio: AudioFrame, language: str | None) -> str:
    """One utterance through a VideoSDK-style STT's stream: its finals joined."""
    stream = VideoSDKSpeechStream(stt, language=language)
    stream.push_audio(audio)
    stream.end_input()
    finals = [event.text async for event in stream if event.type == "final" and event.text]
    return " ".join(finals)


# --------------------------------------------------------------------------- TTS


async def segment_text(
    chunks: AsyncIterator[str | FlushMarker] | str,
    delimiters: str = ".?!,;:\n",
    keep_delimiter: bool = True,
    min_chars: int = 50,
    min_words: int = 12,
    max_buffer: int = 600,
) -> AsyncIterator[str]:
    """Cut streamed text into pieces a TTS can start on early (VideoSDK's helper for TTS providers): at each of
    ``delimiters`` (kept with ``keep_delimiter``), or, in a run without one of ``max_buffer`` characters or
    ``2 * min_words`` words, at the last space before ``max(min_chars, ...)`` characters. ``FlushMarker``s and
    empty chunks are skipped; a plain string is one chunk."""

    async def one(text: str) -> AsyncIterator[str]:
        yield text

    buffer = ""
    async for chunk in one(chunks) if isinstance(chunks, str) else chunks:
        if isinstance(chunk, FlushMarker) or not chunk:
            continue
        buffer += chunk
        while buffer:
            at = min((i for i in (buffer.find(d) for d in delimiters) if i != -1), default=-1)
            if at != -1:
                yield buffer[: at + 1] if keep_delimiter else buffer[:at]
                buffer = buffer[at + 1 :].lstrip()
            elif len(buffer) >= max_buffer or len(buffer.split()) >= 2 * min_words:
                limit = max(min_chars, min(len(buffer), max_buffer))
                cut = buffer.rfind(" ", 0, limit)
                cut = limit if cut == -1 else cut
                if buffer[:cut].rstrip():
                    yield buffer[:cut].rstrip()
                buffer = buffer[cut:].lstrip()
            else:
                break
    if buffer:
        yield buffer


async def _queued() -> None:
    return None


class _AudioTrack:
    """What a VideoSDK-style TTS writes into (``self.audio_track``): its bytes are queued at once, in order, even
    when the TTS schedules ``add_new_bytes`` as a task it never awaits."""

    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queue = queue

    def add_new_bytes(self, audio_data: bytes) -> Coroutine[Any, Any, None]:
        self._queue.put_nowait(bytes(audio_data))
        return _queued()

    def interrupt(self) -> None:
        """The TTS may call it; the cascade stops the audio itself."""

    def on_last_audio_byte(self, callback: Callable[..., Any]) -> None:
        """Accepted for VideoSDK's TTSs; the cascade knows where a response's audio ends."""

    def enable_audio_input(self, manual_control: bool = False) -> None:
        """Accepted for VideoSDK's TTSs."""


def adapt_synthesize(synthesize: Callable[..., Awaitable[None]]) -> Callable[..., AsyncIterator[AudioFrame]]:
    """Wrap a VideoSDK-style ``TTS.synthesize`` (a coroutine writing to ``self.audio_track``) into ours (frames)."""

    async def adapted(self: TTS, text: str, **kwargs: Any) -> AsyncIterator[AudioFrame]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.audio_track = _AudioTrack(queue)
        self.loop = asyncio.get_running_loop()
        channels = int(getattr(self, "num_channels", 1))

        async def run() -> None:
            try:
                await synthesize(self, text, **kwargs)
            finally:
                queue.put_nowait(None)

        task = asyncio.get_running_loop().create_task(run(), name=f"tts:{type(self).__name__}")
        pending = b""
        try:
            while (chunk := await queue.get()) is not None:
                pending += chunk
                usable = len(pending) - len(pending) % (2 * channels)
                if usable:
                    yield AudioFrame.from_bytes(pending[:usable], self.sample_rate, channels)
                    pending = pending[usable:]
            await task  # its error, if it failed
        finally:
            if not task.done():  # the answer was cut off: stop the provider too
                task.cancel()
                interrupt = getattr(self, "interrupt", None)
                if interrupt is not None:
                    with contextlib.suppress(Exception):
                        await interrupt()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    adapted.__name__, adapted.__qualname__, adapted.__doc__ = (
        synthesize.__name__, synthesize.__qualname__, synthesize.__doc__)
    return adapted


# --------------------------------------------------------------------------- VAD


class VADAdapter:
    """Runs a VideoSDK-style VAD's ``process_audio`` (async) behind our synchronous ``push``: frames go to it in
    order as PCM16 bytes at its ``sample_rate`` (mono), and the starts/ends it reports through
    ``_vad_callback`` are returned by the next ``push`` (one frame later), placed at the audio it had read."""

    def __init__(self, vad: VAD) -> None:
        self._vad = vad
        self._converter = AudioConverter(int(getattr(vad, "sample_rate", 16000)))
        self._audio: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self._events: list[tuple[str, float]] = []
        self._pushed = 0.0  # seconds of audio pushed
        self._read = 0.0  # seconds of audio the VAD has been given
        self._worker: asyncio.Task[None] | None = None
        vad._vad_callback = self._on_response

    async def _on_response(self, response: VADResponse) -> None:
        kind = {VADEventType.START_OF_SPEECH: "start", VADEventType.END_OF_SPEECH: "end"}.get(
            VADEventType(response.event_type))
        if kind is not None:
            self._events.append((kind, self._read))

    def push(self, frame: AudioFrame) -> list[tuple[str, float]]:
        for out in self._converter.push(frame):
            self._pushed += out.duration
            self._audio.put_nowait((out.to_bytes(), self._pushed))
        if (self._worker is None or self._worker.done()) and not self._audio.empty():
            self._worker = asyncio.get_running_loop().create_task(self._feed(), name="vad-videosdk")
        events, self._events = self._events, []
        return events

    def reset(self) -> None:
        self._events.clear()

    async def _feed(self) -> None:
        """Give the VAD what was pushed, in order; ends when it has had everything (the next push restarts it)."""
        while not self._audio.empty():
            chunk, end = self._audio.get_nowait()
            try:
                await self._vad.process_audio(chunk)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the user's voice detection
                logger.warning("%s failed on a frame: %s", type(self._vad).__name__, redact(str(exc)))
            self._read = end
