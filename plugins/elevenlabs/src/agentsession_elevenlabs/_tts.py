"""``ElevenLabsTTS``: ElevenLabs' multi-context websocket (``/v1/text-to-speech/{voice}/multi-stream-input``).

One websocket per ``ElevenLabsTTS``, opened at the first synthesis and kept; each synthesis is one context on
it. Messages are the SDK's own types (``InitializeConnectionMulti``, ``SendTextMulti``, ``FlushContext``,
``CloseContext``; ``AudioOutputMulti``, ``FinalOutputMulti``), the URL is built by the SDK's ``build_ws_url`` on
its ``ElevenLabsEnvironment``, over ``websockets`` as the SDK's own realtime clients use it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from elevenlabs.environment import ElevenLabsEnvironment
from elevenlabs.types import (
    Alignment,
    AudioOutputMulti,
    CloseContext,
    CloseSocket,
    FlushContext,
    GenerationConfig,
    InitializeConnectionMulti,
    NormalizedAlignment,
    RealtimeVoiceSettings,
    SendTextMulti,
)
from elevenlabs.url_utils import build_ws_url
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.protocol import State

from agentsession.plugin import TTS, AudioFrame, ModelError, SynthesisStream, env_secret, mask, protect_secret, redact

logger = logging.getLogger("agentsession.elevenlabs")

API_KEY_ENV = "ELEVENLABS_API_KEY"
BASE_URL_ENV = "ELEVENLABS_BASE_URL"
DEFAULT_MODEL = "eleven_flash_v2_5"
DEFAULT_VOICE_ID = "ErXwobaYiN019PkySvjV"
_PCM_RATES = {f"pcm_{rate}": rate for rate in (8000, 16000, 22050, 24000, 44100, 48000)}


@dataclass
class VoiceSettings:
    """A voice's settings for the synthesis (VideoSDK's defaults)."""

    stability: float = 0.71
    similarity_boost: float = 0.5
    style: float = 0.0
    use_speaker_boost: bool = True


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A word of the text and when it is spoken, in seconds from the start of its synthesis's audio."""

    text: str
    start: float
    end: float


class ElevenLabsTTS(TTS):
    """ElevenLabs text to speech, streamed: text goes out as it is pushed, audio (raw PCM) comes back with the
    characters' timings (``ElevenLabsStream.words``).

    ``voice`` is a voice id; ``speed`` (0.7-1.2) and ``voice_settings`` apply to each synthesis;
    ``response_format`` is a ``pcm_<rate>`` format and sets ``sample_rate``. ``chunk_length_schedule`` is how
    many characters the service waits for before it generates (its default, [120, 160, 250, 290], delays the
    first audio; ours starts at 50). ``auto_mode`` lets the service pick the moments itself (for whole
    sentences). The key is ``api_key`` or ``$ELEVENLABS_API_KEY`` (checked when connecting, never shown); the
    server is ``base_url`` or ``$ELEVENLABS_BASE_URL`` or ElevenLabs' API.
    """

    streaming = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        voice: str = DEFAULT_VOICE_ID,
        speed: float = 1.0,
        response_format: str = "pcm_24000",
        voice_settings: VoiceSettings | None = None,
        base_url: str | None = None,
        language: str | None = None,
        inactivity_timeout: int = 180,
        enable_ssml_parsing: bool = False,
        apply_text_normalization: Literal["auto", "on", "off"] = "auto",
        auto_mode: bool = False,
        chunk_length_schedule: Sequence[int] | None = (50, 120, 160, 250),
        enable_streaming: bool = True,
        word_timestamps: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        """``enable_streaming=False``: the cascade hands over whole sentences (``streaming`` is False), each still
        one context on the websocket. ``word_timestamps=False``: no timings asked for or kept (an interrupted
        answer is then cut in the history in proportion)."""
        if response_format not in _PCM_RATES:
            raise ValueError(f"ElevenLabsTTS streams raw PCM: response_format must be one of "
                             f"{', '.join(_PCM_RATES)}, got {response_format!r}")
        if not 0.7 <= speed <= 1.2:
            raise ValueError(f"speed must be between 0.7 and 1.2 (ElevenLabs' range), got {speed}")
        if apply_text_normalization not in ("auto", "on", "off"):
            raise ValueError(f"apply_text_normalization must be 'auto', 'on' or 'off', got {apply_text_normalization!r}")
        self.model = model
        self.voice = voice
        self.speed = speed
        self.response_format = response_format
        self.sample_rate = _PCM_RATES[response_format]
        self.voice_settings = voice_settings or VoiceSettings()
        self.base_url = base_url
        self.language = language
        self.inactivity_timeout = inactivity_timeout
        self.enable_ssml_parsing = enable_ssml_parsing
        self.apply_text_normalization = apply_text_normalization
        self.auto_mode = auto_mode
        self.chunk_length_schedule = list(chunk_length_schedule) if chunk_length_schedule else None
        self.streaming = enable_streaming
        self.word_timestamps = word_timestamps
        self.connect_timeout = connect_timeout
        self._api_key = api_key
        self._socket: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        self._streams: dict[str, ElevenLabsStream] = {}

    def __repr__(self) -> str:
        return (f"ElevenLabsTTS(model={self.model!r}, voice={self.voice!r}, api_key={mask(self._api_key)!r}, "
                f"base_url={self.base_url!r})")

    def url(self) -> str:
        """The websocket's URL (no secret in it: the key goes in a header)."""
        base = self.base_url or os.environ.get(BASE_URL_ENV) or ElevenLabsEnvironment.PRODUCTION.value
        params = {
            "model_id": self.model,
            "output_format": self.response_format,
            "inactivity_timeout": str(self.inactivity_timeout),
            "sync_alignment": str(self.word_timestamps).lower(),
            "auto_mode": str(self.auto_mode).lower(),
            "apply_text_normalization": self.apply_text_normalization,
            "enable_ssml_parsing": str(self.enable_ssml_parsing).lower(),
        }
        if self.language:
            params["language_code"] = self.language
        return build_ws_url(base.rstrip("/").removesuffix("/v1"),
                            ["v1", "text-to-speech", self.voice, "multi-stream-input"], params)

    def stream(self) -> ElevenLabsStream:
        """A new context on the websocket: push text as it comes, read frames as they are synthesized."""
        stream = ElevenLabsStream(self, uuid.uuid4().hex[:12])
        self._streams[stream.context_id] = stream
        return stream

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        stream = self.stream()
        try:
            stream.push_text(text)
            stream.end_input()
            async for frame in stream:
                yield frame
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        """Close every context and the websocket; idempotent (a later synthesis connects again)."""
        for stream in list(self._streams.values()):
            await stream.aclose()
        socket, self._socket = self._socket, None
        if socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.send(_dump(CloseSocket(close_socket=True))), 1.0)
            await socket.close()
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None

    # ------------------------------------------------------------------ the connection

    def _init_message(self, context_id: str) -> InitializeConnectionMulti:
        settings = self.voice_settings
        return InitializeConnectionMulti(
            text=" ",
            context_id=context_id,
            voice_settings=RealtimeVoiceSettings(
                stability=settings.stability, similarity_boost=settings.similarity_boost, style=settings.style,
                use_speaker_boost=settings.use_speaker_boost, speed=self.speed),
            generation_config=(GenerationConfig(chunk_length_schedule=[float(n) for n in self.chunk_length_schedule])
                               if self.chunk_length_schedule else None),
        )

    async def _connection(self) -> ClientConnection:
        async with self._connecting:
            if self._socket is not None and self._socket.state is not State.OPEN:
                self._socket = None  # closed by the service (idle) before its reader noticed
            if self._socket is None:
                key = self._api_key or env_secret(API_KEY_ENV)
                if not key:
                    raise ModelError(
                        f"ElevenLabsTTS needs an ElevenLabs API key: set the {API_KEY_ENV} environment variable "
                        "or pass api_key=... to ElevenLabsTTS()", recoverable=False, code="missing_api_key")
                protect_secret(key)
                url = self.url()
                try:
                    socket = await asyncio.wait_for(
                        # no permessage-deflate (websockets offers it by default): inflating base64 audio costs
                        # CPU for little
                        connect(url, additional_headers={"xi-api-key": key}, max_size=16 * 2**20, compression=None),
                        self.connect_timeout)
                except (OSError, TimeoutError, WebSocketException) as exc:
                    refused = isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403)
                    hint = f" (check {API_KEY_ENV})" if refused else ""
                    raise ModelError(f"could not connect to ElevenLabs at {url}: {redact(str(exc))}{hint}",
                                     recoverable=not refused, code="connect_failed") from None
                self._socket = socket
                self._receiver = asyncio.ensure_future(self._receive(socket))
            return self._socket

    async def _receive(self, socket: ClientConnection) -> None:
        reason = "the connection closed"
        try:
            async for raw in socket:
                try:
                    data = json.loads(raw)
                except ValueError:
                    logger.warning("ElevenLabs sent a message that is not JSON; ignored")
                    continue
                if not isinstance(data, dict):
                    continue
                context_id = data.get("contextId") or data.get("context_id")
                stream = self._streams.get(context_id) if isinstance(context_id, str) else None
                if data.get("error") or ("message" in data and "audio" not in data):
                    error = ModelError(f"ElevenLabs: {redact(str(data.get('message') or data.get('error')))}",
                                       recoverable=True, code=str(data.get("error") or "error"))
                    for failed in [stream] if stream is not None else list(self._streams.values()):
                        failed._fail(error)
                elif stream is not None:
                    try:
                        stream._on_message(data)
                    except ValueError as exc:  # not the documented shape
                        stream._fail(ModelError(f"ElevenLabs sent an unreadable message: {exc}", recoverable=True,
                                                code="protocol_error"))
        except ConnectionClosed as exc:
            reason = f"the connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        finally:
            if self._socket is socket:
                self._socket = None
            for stream in list(self._streams.values()):
                if stream._socket is socket:  # a synthesis under way on this socket cannot go on
                    stream._fail(ModelError(f"ElevenLabs: {reason} during a synthesis", recoverable=True,
                                            code="connection_lost"))


class ElevenLabsStream(SynthesisStream):
    """One context of the websocket. Text is sent a whole word at a time (the rest waits for the next push or
    ``flush``); ``words`` are the words spoken so far with their times; ``aclose`` before the end closes the
    context, so the service stops generating (and billing) the rest."""

    def __init__(self, tts: ElevenLabsTTS, context_id: str) -> None:
        super().__init__()
        self.context_id = context_id
        self.words: list[TimedWord] = []
        self._tts = tts
        self._outbox: asyncio.Queue[BaseModel] = asyncio.Queue()
        self._pending = ""  # text after the last whitespace: a word that may go on
        self._ended = False
        self._socket: ClientConnection | None = None  # where the context was opened
        self._close_sent = False
        self._received = 0.0  # seconds of audio so far
        self._carry = b""
        self._word: list[str] = []
        self._word_span: tuple[float, float] = (0.0, 0.0)
        self._sender = asyncio.ensure_future(self._send_all())

    def push_text(self, text: str) -> None:
        if self._ended:
            raise RuntimeError("push_text() after end_input() or aclose()")
        self._pending += text
        cut = max(self._pending.rfind(" "), self._pending.rfind("\n"))
        if cut >= 0:
            whole, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            if whole.strip():
                self._outbox.put_nowait(SendTextMulti(text=whole, context_id=self.context_id))

    def flush(self) -> None:
        if self._ended:
            return
        text, self._pending = self._pending, ""
        self._outbox.put_nowait(FlushContext(context_id=self.context_id, flush=True,
                                             text=f"{text} " if text.strip() else None))

    def end_input(self) -> None:
        if self._ended:
            return
        self.flush()
        self._ended = True
        self._outbox.put_nowait(CloseContext(context_id=self.context_id, close_context=True))

    async def aclose(self) -> None:
        self._ended = True
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
        socket = self._socket
        if not self.finished and socket is not None and not self._close_sent:
            self._close_sent = True  # the service stops generating this context
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    socket.send(_dump(CloseContext(context_id=self.context_id, close_context=True))), 1.0)
        self._tts._streams.pop(self.context_id, None)
        self._finish()

    def heard_text(self, seconds: float) -> str | None:
        """The words fully spoken in the first ``seconds`` of this synthesis's audio (``None`` without
        ``word_timestamps``)."""
        if not self._tts.word_timestamps:
            return None
        return " ".join(w.text for w in self.words if w.end <= seconds + 1e-6)

    # ------------------------------------------------------------------ the wire

    async def _send_all(self) -> None:
        try:
            socket = await self._tts._connection()
            self._socket = socket
            await socket.send(_dump(self._tts._init_message(self.context_id)))
            while True:
                message = await self._outbox.get()
                await socket.send(_dump(message))
                if isinstance(message, CloseContext):
                    self._close_sent = True
                    return
        except asyncio.CancelledError:
            raise
        except ModelError as exc:
            self._fail(exc)
        except (ConnectionClosed, OSError):
            self._fail(ModelError("ElevenLabs: the connection closed during a synthesis", recoverable=True,
                                  code="connection_lost"))

    def _on_message(self, data: dict[str, Any]) -> None:
        if data.get("audio"):
            output = AudioOutputMulti.model_validate(data)
            pcm = self._carry + base64.b64decode(output.audio)
            usable = len(pcm) - len(pcm) % 2
            self._carry = pcm[usable:]
            offset = self._received
            if usable:
                frame = AudioFrame.from_bytes(pcm[:usable], self._tts.sample_rate)
                self._received += frame.duration
                self._emit(frame)
            alignment = output.alignment or output.normalized_alignment
            if alignment is not None and self._tts.word_timestamps:
                self._align(alignment, offset)
        if data.get("isFinal") or data.get("is_final"):
            self._end_word()
            self._tts._streams.pop(self.context_id, None)
            self._finish()

    def _align(self, alignment: Alignment | NormalizedAlignment, offset: float) -> None:
        """Characters with times relative to their chunk, into words with times from the synthesis's start."""
        chars = alignment.chars or []
        starts = alignment.char_start_times_ms or []
        durations = alignment.char_durations_ms or []
        for char, start_ms, duration_ms in zip(chars, starts, durations, strict=False):
            start, end = offset + start_ms / 1000, offset + (start_ms + duration_ms) / 1000
            if char.isspace():
                self._end_word()
                continue
            self._word_span = (self._word_span[0] if self._word else start, end)
            self._word.append(char)

    def _end_word(self) -> None:
        if self._word:
            self.words.append(TimedWord("".join(self._word), *self._word_span))
            self._word = []


def _dump(message: BaseModel) -> str:
    return json.dumps(message.model_dump(exclude_none=True, by_alias=True))
