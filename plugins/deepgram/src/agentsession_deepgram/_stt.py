"""``DeepgramSTT``: Deepgram's speech to text, live over its websocket (``/v1/listen``) and one-shot over REST.

The stream (``DeepgramSpeechStream``) opens one websocket through the SDK (``client.listen.v1.connect``) with
``encoding=linear16``, mono, the STT's rate, ``interim_results``, ``vad_events`` and ``utterance_end_ms``, and sends
the audio as binary messages. What Deepgram says maps onto ``SpeechEvent``s:

- ``SpeechStarted`` -> ``speech_started`` (once per utterance);
- ``Results`` with ``is_final: false`` -> ``interim`` (the utterance's settled text so far plus the hypothesis);
- ``Results`` with ``is_final: true`` add to the utterance's text; the utterance ends with ``speech_final: true``
  (Deepgram's endpointing heard the pause), ``from_finalize: true`` (the answer to our ``Finalize``, sent by
  ``flush()``) or ``UtteranceEnd`` (the gap after the last word, for noisy audio where endpointing never fires):
  then ``speech_stopped`` and the ``final``.

``KeepAlive`` goes out when no audio was sent for ``keepalive_interval`` seconds (Deepgram closes an idle socket
after 10 s). A dropped socket is reopened (``max_reconnect_attempts``, backoff) and the audio of the utterance in
progress is sent again, so the turn keeps its words. ``end_input()`` sends ``CloseStream``: Deepgram answers what it
has, then closes; the iteration ends there.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.listen.v1.socket_client import AsyncV1SocketClient
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException

from agentsession.plugin import STT, AudioConverter, AudioFrame, ModelError, SpeechEvent, SpeechStream, mask, redact

from ._client import make_client

logger = logging.getLogger("agentsession.deepgram")

_NETWORK_ERRORS = (ConnectionClosed, WebSocketException, OSError)
_FINALIZE = object()
_END = object()
_RESEND_LIMIT = 30.0  # seconds of the utterance in progress kept to send again after a reconnect


class DeepgramSTT(STT):
    """Deepgram speech to text. ``stream()`` transcribes while the user speaks (interim text, Deepgram's own
    endpointing ends each utterance); ``transcribe()`` sends one utterance to the prerecorded API.

    Arguments are VideoSDK's: ``endpointing`` is milliseconds of silence before Deepgram ends an utterance (``0`` or
    less: off, then ``UtteranceEnd`` after ``utterance_end_ms`` or ``flush()`` end them); ``keywords`` are for
    Nova-2 and older, ``keyterm`` for Nova-3. ``base_url`` (else ``$DEEPGRAM_BASE_URL``) points it at another server.
    """

    streaming = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "nova-2",
        language: str = "en-US",
        interim_results: bool = True,
        punctuate: bool = True,
        smart_format: bool = True,
        sample_rate: int = 16000,
        endpointing: int = 50,
        filler_words: bool = True,
        keywords: list[str] | None = None,
        keyterm: list[str] | None = None,
        profanity_filter: bool = False,
        numerals: bool = False,
        tag: str | list[str] | None = None,
        enable_diarization: bool = False,
        base_url: str | None = None,
        utterance_end_ms: int | None = 1000,
        keepalive_interval: float = 5.0,
        max_reconnect_attempts: int = 3,
        reconnect_delay: float = 0.5,
        connect_timeout: float = 10.0,
    ) -> None:
        is_nova3 = model == "nova-3" or model.startswith("nova-3-")
        if is_nova3 and keywords:
            raise ValueError("keywords are not supported by Nova-3: use keyterm=[...] (Keyterm Prompting) instead")
        if utterance_end_ms is not None and not interim_results:
            raise ValueError("utterance_end_ms needs interim_results=True (Deepgram's rule); pass utterance_end_ms=None")
        if keepalive_interval <= 0 or max_reconnect_attempts < 0:
            raise ValueError("keepalive_interval must be > 0 and max_reconnect_attempts >= 0")
        super().__init__()
        self.model, self.language, self.sample_rate = model, language, sample_rate
        self.interim_results, self.punctuate, self.smart_format = interim_results, punctuate, smart_format
        self.endpointing, self.filler_words = endpointing, filler_words
        self.keywords, self.keyterm = keywords, keyterm
        self.profanity_filter, self.numerals, self.tag = profanity_filter, numerals, tag
        self.enable_diarization = enable_diarization
        self.base_url = base_url
        self.utterance_end_ms = utterance_end_ms
        self.keepalive_interval = keepalive_interval
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self._api_key = api_key
        self._client: AsyncDeepgramClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._streams: set[DeepgramSpeechStream] = set()

    @property
    def client(self) -> AsyncDeepgramClient:
        """The SDK client, made at first use (a missing key is a ``ModelError`` naming ``DEEPGRAM_API_KEY``)."""
        if self._client is None:
            self._http = httpx.AsyncClient(timeout=60.0, follow_redirects=True)
            self._client = make_client(self._api_key, self.base_url, self._http)
        return self._client

    def __repr__(self) -> str:
        return (f"DeepgramSTT(model={self.model!r}, language={self.language!r}, api_key={mask(self._api_key)!r}, "
                f"base_url={self.base_url!r})")

    def live_options(self, language: str | None = None) -> dict[str, Any]:
        """The query of the live request (``client.listen.v1.connect`` keywords)."""
        options: dict[str, Any] = {
            "model": self.model,
            "language": language or self.language,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": _flag(self.interim_results),
            "punctuate": _flag(self.punctuate),
            "smart_format": _flag(self.smart_format),
            "endpointing": self.endpointing if self.endpointing > 0 else "false",
            "vad_events": "true",
            "profanity_filter": _flag(self.profanity_filter),
            "numerals": _flag(self.numerals),
            "diarize": _flag(self.enable_diarization),
        }
        if self.utterance_end_ms is not None:
            options["utterance_end_ms"] = self.utterance_end_ms
        if self.tag is not None:
            options["tag"] = self.tag
        if self.keyterm:
            options["keyterm"] = [t.strip() for t in self.keyterm if t.strip()]
        if self.keywords:
            options["keywords"] = self.keywords[:100]
        # a query parameter the SDK's connect() has no keyword for
        options["request_options"] = {"additional_query_parameters": {"filler_words": _flag(self.filler_words)}}
        return options

    def stream(self, *, language: str | None = None) -> DeepgramSpeechStream:
        """A live transcription over its own websocket; connects at once, in the background."""
        stream = DeepgramSpeechStream(self, language=language, on_close=self._streams.discard)
        self._streams.add(stream)
        return stream

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        """One utterance through the prerecorded API (``POST /v1/listen``, the audio as a WAV file)."""
        mono = AudioConverter(self.sample_rate)
        frames = mono.push(audio) + mono.flush()
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.sample_rate)
            out.writeframes(b"".join(f.to_bytes() for f in frames))
        try:
            response = await self.client.listen.v1.media.transcribe_file(
                request=buffer.getvalue(), model=self.model, language=language or self.language,
                punctuate=self.punctuate, smart_format=self.smart_format, filler_words=self.filler_words,
                profanity_filter=self.profanity_filter, numerals=self.numerals,
                keyterm=self.keyterm or None, keywords=self.keywords or None, tag=self.tag)
        except ApiError as exc:  # its headers hold the key: only the status goes on
            raise _api_error(exc.status_code, "transcription request") from None
        results = getattr(response, "results", None)
        if results is None:
            raise ModelError("Deepgram accepted the request without transcribing it (a callback was set?)",
                             recoverable=True, code="no_results")
        alternatives = results.channels[0].alternatives if results.channels else []
        return str(alternatives[0].transcript or "").strip() if alternatives else ""

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._client = None
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _api_error(status: int | None, what: str) -> ModelError:
    if status in (401, 403):
        return ModelError(f"Deepgram refused the {what} (HTTP {status}): check DEEPGRAM_API_KEY", recoverable=False,
                          code="invalid_api_key")
    return ModelError(f"Deepgram refused the {what} (HTTP {status})", recoverable=status is None or status >= 500,
                      code=f"http_{status}")


@dataclass
class _Chunk:
    start: float  # seconds into the stream's audio
    data: bytes
    duration: float


class DeepgramSpeechStream(SpeechStream):
    """Made by ``DeepgramSTT.stream()``."""

    def __init__(self, stt: DeepgramSTT, *, language: str | None = None,
                 on_close: Callable[[DeepgramSpeechStream], None] | None = None) -> None:
        super().__init__()
        self.stt = stt
        self.language = language
        self._on_close = on_close
        self._converter = AudioConverter(stt.sample_rate)
        self._outbox: asyncio.Queue[_Chunk | object] = asyncio.Queue()
        self._input_ended = False
        self._pushed = 0.0  # seconds of audio pushed (the stream's timeline)
        self._taken = 0.0  # ... and of it taken by the sender
        self._kept: deque[_Chunk] = deque()  # audio sent since the last utterance ended: sent again on a reconnect
        self._offset = 0.0  # where the current connection's audio starts on the stream's timeline
        self._ids = (f"utterance_{n}" for n in itertools.count(1))
        self._utterance = next(self._ids)
        self._settled: list[str] = []  # the utterance's is_final texts
        self._started = False  # speech_started sent for the utterance
        self._last_word_end: float | None = None
        self._last_sent = 0.0  # loop time something last went to the socket
        self.connections = 0
        self._task = asyncio.get_running_loop().create_task(self._run(), name="deepgram-stt-stream")

    # ------------------------------------------------------------------ SpeechStream

    def push_audio(self, frame: AudioFrame) -> None:
        if self._input_ended or self.finished:
            raise RuntimeError("push_audio() after end_input() or aclose()")
        for out in self._converter.push(frame):
            self._queue(out)

    def flush(self) -> None:
        if self._input_ended or self.finished:
            return
        for out in self._converter.flush():
            self._queue(out)
        if self._kept or self._pushed > self._taken:
            self._outbox.put_nowait(_FINALIZE)

    def end_input(self) -> None:
        if self._input_ended or self.finished:
            return
        for out in self._converter.flush():
            self._queue(out)
        self._input_ended = True
        self._outbox.put_nowait(_END)

    async def aclose(self) -> None:
        self._input_ended = True
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await super().aclose()

    def _queue(self, frame: AudioFrame) -> None:
        self._outbox.put_nowait(_Chunk(self._pushed, frame.to_bytes(), frame.duration))
        self._pushed += frame.duration

    # ------------------------------------------------------------------ the connection

    async def _run(self) -> None:
        failures = 0
        try:
            while not self.finished:
                async with contextlib.AsyncExitStack() as stack:
                    try:
                        socket = await self._connect(stack)
                    except ModelError as exc:
                        failures += 1
                        if not exc.recoverable or failures > self.stt.max_reconnect_attempts:
                            self._fail(exc)
                            return
                        logger.warning("%s; trying again (%d/%d)", exc, failures, self.stt.max_reconnect_attempts)
                        await asyncio.sleep(self.stt.reconnect_delay * 2 ** (failures - 1))
                        continue
                    failures = 0
                    if await self._converse(socket):
                        return
                failures += 1
                if failures > self.stt.max_reconnect_attempts:
                    self._fail(ModelError("the Deepgram connection was lost and could not be reopened",
                                          recoverable=True, code="connection_lost"))
                    return
                logger.warning("the Deepgram connection was lost; reconnecting (%d/%d)", failures,
                               self.stt.max_reconnect_attempts)
                await asyncio.sleep(self.stt.reconnect_delay * 2 ** (failures - 1))
        except Exception as exc:  # a message we could not make sense of: the iteration must not hang
            logger.exception("the Deepgram stream failed")
            self._fail(ModelError(f"the Deepgram stream failed ({type(exc).__name__})", recoverable=True,
                                  code="stream_failed"))
        finally:
            if self._on_close is not None:
                self._on_close(self)
                self._on_close = None

    async def _connect(self, stack: contextlib.AsyncExitStack) -> AsyncV1SocketClient:
        client = self.stt.client  # a missing key raises here, a ModelError that is not recoverable
        try:
            socket: AsyncV1SocketClient = await asyncio.wait_for(
                stack.enter_async_context(client.listen.v1.connect(**self.stt.live_options(self.language))),
                self.stt.connect_timeout)
        except ApiError as exc:  # its headers hold the key: only the status goes on
            raise _api_error(exc.status_code, "live connection") from None
        except TimeoutError:
            raise ModelError("connecting to Deepgram timed out", recoverable=True, code="connect_timeout") from None
        except (*_NETWORK_ERRORS, InvalidHandshake) as exc:
            raise ModelError(f"could not connect to Deepgram ({type(exc).__name__})", recoverable=True,
                             code="connect_failed") from None
        self.connections += 1
        logger.info("transcribing with Deepgram %s (connection %d)", self.stt.model, self.connections)
        return socket

    async def _converse(self, socket: AsyncV1SocketClient) -> bool:
        """Send and read until the socket closes; True when the stream is over (else: reconnect)."""
        # a new connection's timeline starts at the first audio it gets: the utterance in progress, sent again
        self._offset = self._kept[0].start if self._kept else self._taken
        self._settled = []
        sender = asyncio.get_running_loop().create_task(self._send_loop(socket), name="deepgram-stt-send")
        try:
            async for message in socket:
                self._on_message(message)
        except ModelError as exc:
            self._fail(exc)
            return True
        except _NETWORK_ERRORS as exc:
            logger.debug("the Deepgram socket failed: %s", redact(str(exc)))
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        if self._input_ended:  # CloseStream answered (or the socket went with it): what is heard is final
            self._end_utterance(None)
            self._finish()
            return True
        return False

    async def _send_loop(self, socket: AsyncV1SocketClient) -> None:
        loop = asyncio.get_running_loop()
        keepalive = loop.create_task(self._keepalive(socket), name="deepgram-stt-keepalive")
        try:
            for chunk in list(self._kept):
                await socket.send_media(chunk.data)
            while True:
                item = await self._outbox.get()
                self._last_sent = loop.time()
                if isinstance(item, _Chunk):
                    self._taken = item.start + item.duration
                    self._kept.append(item)
                    while self._kept and self._kept[-1].start - self._kept[0].start > _RESEND_LIMIT:
                        self._kept.popleft()
                    await socket.send_media(item.data)
                elif item is _FINALIZE:
                    await socket.send_finalize()
                elif item is _END:
                    await socket.send_close_stream()
                    return
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)

    async def _keepalive(self, socket: AsyncV1SocketClient) -> None:
        """``KeepAlive`` whenever nothing was sent for ``keepalive_interval`` seconds."""
        loop = asyncio.get_running_loop()
        self._last_sent = loop.time()
        while True:
            await asyncio.sleep(max(0.0, self._last_sent + self.stt.keepalive_interval - loop.time()))
            if loop.time() - self._last_sent >= self.stt.keepalive_interval:
                self._last_sent = loop.time()
                await socket.send_keep_alive()

    # ------------------------------------------------------------------ server messages

    def _on_message(self, message: Any) -> None:
        if isinstance(message, ListenV1Results):
            self._on_results(message)
        elif isinstance(message, ListenV1SpeechStarted):
            if not self._started:
                self._started = True
                self._emit(SpeechEvent("speech_started", utterance_id=self._utterance,
                                       position=max(0.0, self._offset + float(message.timestamp))))
        elif isinstance(message, ListenV1UtteranceEnd):
            if self._settled:
                self._end_utterance(self._offset + float(message.last_word_end))
        elif isinstance(message, ListenV1Error):
            text = redact(f"{message.variant}: {message.description}")
            raise ModelError(f"Deepgram reported an error: {text}", recoverable=False, code=message.code)

    def _on_results(self, results: ListenV1Results) -> None:
        alternatives = results.channel.alternatives
        best = alternatives[0] if alternatives else None
        text = (best.transcript if best is not None else "").strip()
        if best is not None and best.words:
            self._last_word_end = self._offset + float(best.words[-1].end)
        if not results.is_final:
            if text:
                self._emit(SpeechEvent("interim", " ".join([*self._settled, text]), self._utterance))
            return
        if text:
            self._settled.append(text)
        end = self._offset + float(results.start) + float(results.duration)
        if results.speech_final or results.from_finalize:
            self._end_utterance(end)
        elif text:
            self._emit(SpeechEvent("interim", " ".join(self._settled), self._utterance))

    def _end_utterance(self, end: float | None) -> None:
        """The utterance is over at ``end`` seconds (None: wherever the audio stops): its final, if it has one."""
        if self._settled or self._started:
            stopped = self._last_word_end if self._last_word_end is not None else end
            if stopped is not None:
                self._emit(SpeechEvent("speech_stopped", utterance_id=self._utterance, position=max(0.0, stopped)))
            self._emit(SpeechEvent("final", " ".join(self._settled), self._utterance))
            self._utterance = next(self._ids)
        self._settled, self._started, self._last_word_end = [], False, None
        if end is not None:
            while self._kept and self._kept[0].start + self._kept[0].duration <= end + 1e-6:
                self._kept.popleft()
        else:
            self._kept.clear()
