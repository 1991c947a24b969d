"""``CartesiaTTS``: Cartesia's text to speech over its websocket (``/tts/websocket``), through the official SDK.

One websocket per ``CartesiaTTS`` (``client.tts.websocket_connect()``), opened at the first synthesis and kept
(reopened after ``max_connection_age_sec``, or when it was lost); each synthesis is a Cartesia *context* on it:

- ``stream()`` (core's ``SynthesisStream``): the text goes out as generation requests with ``continue: true`` as it
  is pushed (the LLM's answer as it streams, a whole word at a time), then an empty transcript with
  ``continue: false``;
- ``chunk`` messages (base64 ``pcm_s16le`` at ``sample_rate``) become ``AudioFrame``s as they come; ``timestamps``
  (``word_timestamps``, on by default) become ``WordTimestamp``s (the stream's ``words``, ``heard_text``, ``on_word``);
  ``done`` ends the synthesis; ``error`` fails it with a ``ModelError``;
- ``aclose()`` before the end (a barge-in) sends ``{"context_id": ..., "cancel": true}``: Cartesia stops generating
  (and billing) the rest, and what it had already sent for the context is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from cartesia import AsyncCartesia
from cartesia.lib._tts import AsyncTTSResourceConnection
from cartesia.types.websocket_response import Chunk, Done, Timestamps
from cartesia.types.websocket_response import Error as ErrorEvent
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, WebSocketException

from agentsession.plugin import TTS, AudioFrame, ModelError, SynthesisStream, env_secret, mask, protect_secret, redact

logger = logging.getLogger("agentsession.cartesia")

API_KEY_ENV = "CARTESIA_API_KEY"
BASE_URL_ENV = "CARTESIA_BASE_URL"  # the SDK's own variable
DEFAULT_MODEL = "sonic-3.5"
DEFAULT_VOICE_ID = "f8f5f1b2-f02d-4d8e-a40d-fd850a487b3d"
_NETWORK_ERRORS = (ConnectionClosed, WebSocketException, OSError)


@dataclass
class GenerationConfig:
    """VideoSDK's voice settings for sonic-3 and newer; only the fields set are sent. ``speed`` 0.6-1.5,
    ``volume`` 0.5-2.0, ``emotion`` e.g. ``"neutral"``, ``"calm"``, ``"angry"``, ``"content"``, ``"sad"``."""

    speed: float | None = None
    emotion: str | None = None
    volume: float | None = None

    def payload(self) -> dict[str, Any]:
        return {k: v for k, v in (("speed", self.speed), ("emotion", self.emotion), ("volume", self.volume))
                if v is not None}


@dataclass(frozen=True, slots=True)
class WordTimestamp:
    """A word of the synthesis and where it is spoken, in seconds from the start of the synthesis' audio."""

    word: str
    start: float
    end: float


class CartesiaTTS(TTS):
    """Cartesia text to speech that takes text as it streams. Arguments are VideoSDK's, plus ``speed`` (a number:
    sonic-3's ``generation_config.speed``; ``"slow"``/``"normal"``/``"fast"``: older models' ``speed``).
    ``base_url`` (else ``$CARTESIA_BASE_URL``) points it at another server; an ``http://`` one is reached over
    ``ws://``."""

    streaming = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        voice_id: str | list[float] = DEFAULT_VOICE_ID,
        language: str = "en",
        speed: float | Literal["slow", "normal", "fast"] | None = None,
        base_url: str | None = None,
        generation_config: GenerationConfig | None = None,
        pronunciation_dict_id: str | None = None,
        max_buffer_delay_ms: int | None = None,
        word_timestamps: bool = True,
        on_word: Callable[[WordTimestamp], None] | None = None,
        sample_rate: int = 24000,
        max_connection_age_sec: float = 300.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if isinstance(speed, str) and speed not in ("slow", "normal", "fast"):
            raise ValueError(f"speed must be a number (0.6-1.5) or 'slow', 'normal' or 'fast', got {speed!r}")
        super().__init__()
        self.model, self.voice_id, self.language = model, voice_id, language
        self.generation_config = generation_config or GenerationConfig()
        if isinstance(speed, int | float):
            self.generation_config.speed = float(speed)
        self.speed = speed if isinstance(speed, str) else None
        self.base_url = base_url
        self.pronunciation_dict_id = pronunciation_dict_id
        self.max_buffer_delay_ms = max_buffer_delay_ms
        self.word_timestamps = word_timestamps or on_word is not None
        self.on_word = on_word
        self.sample_rate = sample_rate
        self.max_connection_age_sec = max_connection_age_sec
        self.connect_timeout = connect_timeout
        self._api_key = api_key
        self._client: AsyncCartesia | None = None
        self._conn: AsyncTTSResourceConnection | None = None
        self._opened_at = 0.0
        self._reader: asyncio.Task[None] | None = None
        self._streams: dict[str, CartesiaStream] = {}
        self._lock = asyncio.Lock()
        self.connections = 0

    def __repr__(self) -> str:
        return (f"CartesiaTTS(model={self.model!r}, voice_id={self.voice_id!r}, language={self.language!r}, "
                f"api_key={mask(self._api_key)!r}, base_url={self.base_url!r})")

    # ------------------------------------------------------------------ TTS

    def stream(self) -> CartesiaStream:
        """A new context on the websocket: push text as it comes (each complete word goes out at once), read frames
        as they are synthesized; ``aclose()`` before the end cancels the context."""
        return CartesiaStream(self)

    async def synthesize(self, text: str) -> AsyncGenerator[AudioFrame, None]:
        """Speak ``text`` (one request). Closing the iterator early cancels the context."""
        stream = CartesiaStream(self, by_word=False)
        try:
            stream.push_text(text)
            stream.end_input()
            async for frame in stream:
                yield frame
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        async with self._lock:
            await self._disconnect()
            client, self._client = self._client, None
            if client is not None:
                await client.close()

    # ------------------------------------------------------------------ the connection

    def _request(self, context_id: str, transcript: str, *, more: bool) -> dict[str, Any]:
        voice: dict[str, Any] = ({"mode": "id", "id": self.voice_id} if isinstance(self.voice_id, str)
                                 else {"mode": "embedding", "embedding": list(self.voice_id)})
        request: dict[str, Any] = {
            "context_id": context_id, "model_id": self.model, "transcript": transcript, "voice": voice,
            "language": self.language, "continue": more,
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": self.sample_rate},
        }
        if self.word_timestamps:
            request["add_timestamps"] = True
        if config := self.generation_config.payload():
            request["generation_config"] = config
        if self.speed is not None:
            request["speed"] = self.speed
        if self.pronunciation_dict_id is not None:
            request["pronunciation_dict_id"] = self.pronunciation_dict_id
        if self.max_buffer_delay_ms is not None:
            request["max_buffer_delay_ms"] = self.max_buffer_delay_ms
        return request

    @staticmethod
    def _lost(exc: BaseException) -> ModelError:
        logger.warning("the Cartesia connection was lost: %s", redact(str(exc)))
        return ModelError(f"the Cartesia connection was lost ({type(exc).__name__})", recoverable=True,
                          code="connection_lost")

    async def _connection(self) -> AsyncTTSResourceConnection:
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._conn is not None and (self._reader is None or self._reader.done()):
                await self._disconnect()  # it was lost
            elif self._conn is not None and not self._streams and \
                    loop.time() - self._opened_at > self.max_connection_age_sec:
                await self._disconnect()  # refresh an old one between syntheses
            if self._conn is None:
                self._conn = await self._connect()
                self._opened_at = loop.time()
                self._reader = loop.create_task(self._read(self._conn), name="cartesia-tts-read")
            return self._conn

    def _make_client(self) -> AsyncCartesia:
        key = self._api_key or env_secret(API_KEY_ENV)
        if not key:
            raise ModelError(f"CartesiaTTS needs a Cartesia API key: set the {API_KEY_ENV} environment variable or "
                             "pass api_key=... to CartesiaTTS()", recoverable=False, code="missing_api_key")
        protect_secret(key)  # masked in every log record from now on (websockets logs the header at DEBUG)
        url = self.base_url or os.environ.get(BASE_URL_ENV)
        return AsyncCartesia(api_key=key, base_url=url, websocket_base_url=websocket_url(url) if url else None)

    async def _connect(self) -> AsyncTTSResourceConnection:
        if self._client is None:
            self._client = self._make_client()
        try:
            # no permessage-deflate (websockets, under the SDK, offers it by default): inflating base64 audio
            # costs CPU for little
            manager = self._client.tts.websocket_connect(websocket_connection_options={"compression": None})
            conn = await asyncio.wait_for(manager.enter(), self.connect_timeout)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ModelError(f"Cartesia refused the connection (HTTP {status}): check {API_KEY_ENV}",
                                 recoverable=False, code="invalid_api_key") from None
            raise ModelError(f"Cartesia refused the connection (HTTP {status})", recoverable=status >= 500,
                             code=f"http_{status}") from None
        except TimeoutError:
            raise ModelError("connecting to Cartesia timed out", recoverable=True, code="connect_timeout") from None
        except (*_NETWORK_ERRORS, InvalidHandshake) as exc:
            raise ModelError(f"could not connect to Cartesia ({type(exc).__name__})", recoverable=True,
                             code="connect_failed") from None
        self.connections += 1
        logger.info("speaking with Cartesia %s (connection %d)", self.model, self.connections)
        return conn

    async def _read(self, conn: AsyncTTSResourceConnection) -> None:
        """Route every message to its context's stream; a context no longer listened to (cancelled) gets nothing."""
        error: BaseException | None = None
        try:
            async for event in conn:
                stream = self._streams.get(event.context_id or "")
                if stream is not None:
                    stream._on_event(event)
                elif isinstance(event, ErrorEvent):
                    logger.warning("Cartesia reported an error: %s", redact(f"{event.title}: {event.message}"))
        except _NETWORK_ERRORS as exc:
            error = self._lost(exc)
        for stream in list(self._streams.values()):  # the connection is gone: every synthesis on it ends
            if stream._conn is conn:
                stream._fail(error or ModelError("Cartesia closed the connection", recoverable=True,
                                                 code="connection_closed"))

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        reader, self._reader = self._reader, None
        if conn is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await conn.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def websocket_url(base_url: str) -> str:
    """The websocket base for ``base_url``: ``wss://`` for ``https://``, ``ws://`` for ``http://``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError(f"the Cartesia base URL must look like https://api.cartesia.ai, got {base_url!r}")
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class CartesiaStream(SynthesisStream):
    """One Cartesia context. Text goes out a whole word at a time (the rest waits for the next push, ``flush`` or
    ``end_input``), then an empty transcript with ``continue: false``; ``words`` are the words spoken so far with
    their times (``word_timestamps``); ``aclose`` before the end cancels the context, so Cartesia stops generating
    (and billing) the rest. No text at all opens no context."""

    def __init__(self, tts: CartesiaTTS, *, by_word: bool = True) -> None:
        super().__init__()
        self.context_id = uuid.uuid4().hex
        self.words: list[WordTimestamp] = []
        self._tts = tts
        self._by_word = by_word
        self._outbox: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self._pending = ""
        self._ended = False
        self._sent_any = False
        self._done = False
        self._conn: AsyncTTSResourceConnection | None = None
        self._carry = b""
        tts._streams[self.context_id] = self
        self._sender = asyncio.ensure_future(self._send_all())

    def push_text(self, text: str) -> None:
        if self._ended:
            raise RuntimeError("push_text() after end_input() or aclose()")
        self._pending += text
        cut = max(self._pending.rfind(" "), self._pending.rfind("\n")) if self._by_word else -1
        if cut > 0 and self._pending[:cut].strip():
            self._outbox.put_nowait((self._pending[: cut + 1], True))
            self._pending = self._pending[cut + 1 :]

    def flush(self) -> None:
        if self._ended or not self._pending.strip():
            return
        text, self._pending = self._pending, ""
        self._outbox.put_nowait((text, True))

    def end_input(self) -> None:
        if self._ended:
            return
        self.flush()
        self._ended = True
        self._outbox.put_nowait(("", False))

    async def aclose(self) -> None:
        self._ended = True
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
        conn = self._conn
        if not self._done and self._sent_any and conn is not None and conn is self._tts._conn:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await conn.send({"context_id": self.context_id, "cancel": True})  # stop generating (and billing)
        self._tts._streams.pop(self.context_id, None)
        self._finish()

    def heard_text(self, seconds: float) -> str | None:
        """The words fully spoken in the first ``seconds`` of this synthesis's audio (``None`` without
        ``word_timestamps``)."""
        if not self._tts.word_timestamps:
            return None
        return " ".join(w.word for w in self.words if w.end <= seconds + 1e-6)

    async def _send_all(self) -> None:
        try:
            while True:
                text, more = await self._outbox.get()
                if not more and not self._sent_any:  # no text came: no context was opened
                    self._end()
                    return
                if self._conn is None:
                    self._conn = await self._tts._connection()
                await self._conn.send(self._tts._request(self.context_id, text, more=more))  # type: ignore[arg-type]
                self._sent_any = True
                if not more:
                    return
        except asyncio.CancelledError:
            raise
        except ModelError as exc:
            self._fail(exc)
        except _NETWORK_ERRORS as exc:
            self._fail(self._tts._lost(exc))

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Chunk) and event.data:
            data = self._carry + (event.audio or b"")
            usable = len(data) - len(data) % 2
            self._carry = data[usable:]
            if usable:
                self._emit(AudioFrame.from_bytes(data[:usable], self._tts.sample_rate))
        elif isinstance(event, Timestamps) and event.word_timestamps is not None:
            stamps = event.word_timestamps
            for word, start, end in zip(stamps.words, stamps.start, stamps.end, strict=False):
                stamp = WordTimestamp(str(word), float(start), float(end))
                self.words.append(stamp)
                if self._tts.on_word is not None:
                    try:
                        self._tts.on_word(stamp)
                    except Exception:
                        logger.exception("on_word raised")
        elif isinstance(event, ErrorEvent):
            message = redact(f"{event.title or 'error'}: {event.message or ''}")
            self._fail(ModelError(f"Cartesia refused the synthesis ({event.status_code}): {message}",
                                  recoverable=(event.status_code or 500) >= 500, code=event.error_code))
            self._tts._streams.pop(self.context_id, None)
        elif isinstance(event, Done):
            self._end()

    def _end(self) -> None:
        self._done = True
        self._tts._streams.pop(self.context_id, None)
        self._finish()
