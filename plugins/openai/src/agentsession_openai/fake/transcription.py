"""A local OpenAI Realtime **transcription** server (GA protocol, ``?intent=transcription``) for tests.

Server events are built from the SDK's own types (``openai.types.realtime``); every client event is
validated against the SDK's client-event union with unknown fields refused, and ``session.update`` against
``RealtimeTranscriptionSessionCreateRequest``. Violations land in ``protocol_errors``.

Behaviour: ``session.created`` on connect, ``session.updated`` per update; with ``server_vad`` an energy VAD
over the appended 24 kHz audio (``speech_started``, then after ``silence_duration_ms`` of quiet
``speech_stopped`` and ``committed``); ``input_audio_buffer.commit`` commits (an ``error`` under 100 ms);
each committed item is transcribed: ``delta`` events word by word, then ``completed`` (or ``failed``). An
item with no loud audio is transcribed as "". ``hold`` keeps an item's completion back until released,
to send completions out of order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    RealtimeTranscriptionSessionCreateRequest,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_error import RealtimeError
from pydantic import BaseModel, ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .realtime import API_KEY, CLIENT_EVENTS, check_no_extra

RATE = 24000
MODELS = {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1"}

__all__ = ["API_KEY", "FakeTranscriptionServer"]


@dataclass
class Conn:
    ws: ServerConnection
    path: str
    session: dict[str, Any] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)
    buffer: bytearray = field(default_factory=bytearray)  # uncommitted audio
    appended_ms: float = 0.0
    speech_item: str | None = None
    silence_ms: float = 0.0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.received if e.type == kind]


class FakeTranscriptionServer:
    """``async with FakeTranscriptionServer() as server``; ``AsyncOpenAI(base_url=server.base_url)``."""

    def __init__(self) -> None:
        self.connections: list[Conn] = []
        self.protocol_errors: list[str] = []
        self.transcripts: list[str] = []  # what the next loud items "say" (then ``default``)
        self.default = "hello there"
        self.fail_items: set[int] = set()  # 1-based numbers of items whose transcription fails
        self.hold: dict[int, asyncio.Event] = {}  # item number -> released when set
        self.completions: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)  # set once sent
        self.refuse_status: int | None = None
        self.api_key = API_KEY  # the key a client must send
        self.closed = asyncio.Event()  # a client connection ended
        self._ids = itertools.count(1)
        self._items = itertools.count(1)
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    @property
    def current(self) -> Conn:
        return self.connections[-1]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}/v1"

    async def __aenter__(self) -> FakeTranscriptionServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request,
                                   compression=None, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def count(self, kind: str) -> int:
        return sum(len(c.of_type(kind)) for c in self.connections)

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count(kind) >= count), timeout)

    async def drop(self) -> None:
        """Cut every connection abruptly (no close frame)."""
        for conn in self.connections:
            conn.ws.transport.abort()

    async def send_error(self, code: str, message: str, event_id: str | None = None,
                         type: str = "invalid_request_error") -> None:
        await self._error(self.current, type, code, message, event_id)

    # ------------------------------------------------------------------ connections

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path != "/v1/realtime?intent=transcription":
            self.protocol_errors.append(f"unexpected websocket path {request.path!r}")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Response(401, "Unauthorized", Headers(), b'{"error": {"message": "Incorrect API key provided"}}')
        if self.refuse_status is not None:
            return Response(self.refuse_status, "Refused", Headers(), b"")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = Conn(ws, ws.request.path)
        self.connections.append(conn)
        session = RealtimeTranscriptionSessionCreateRequest(type="transcription")
        await self._send(conn, SessionCreatedEvent(type="session.created", event_id=self._id("event"),
                                                   session=session))
        try:
            async for raw in ws:
                try:
                    event = CLIENT_EVENTS.validate_json(raw)
                except ValidationError as exc:
                    self.protocol_errors.append(f"invalid client event {raw[:200]!r}: {exc}")
                    continue
                problems = check_no_extra(event)
                if problems:
                    self.protocol_errors.append(f"{event.type}: {'; '.join(problems)}")
                conn.received.append(event)
                await self._on_event(conn, event)
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:
            if not isinstance(exc, ConnectionError) and "ConnectionClosed" not in type(exc).__name__:
                self.protocol_errors.append(f"fake server crashed: {exc!r}")
        finally:
            for task in conn.tasks:
                task.cancel()
            self.closed.set()

    async def _send(self, conn: Conn, event: BaseModel) -> None:
        with contextlib.suppress(Exception):
            await conn.ws.send(event.model_dump_json(exclude_unset=True))

    async def _error(self, conn: Conn, type: str, code: str, message: str, event_id: str | None) -> None:
        error = RealtimeError(type=type, code=code, message=message, event_id=event_id)
        await self._send(conn, RealtimeErrorEvent(type="error", event_id=self._id("event"), error=error))

    # ------------------------------------------------------------------ client events

    async def _on_event(self, conn: Conn, event: Any) -> None:
        if event.type == "session.update":
            raw = event.session.model_dump(exclude_unset=True)
            if raw.get("type") != "transcription":
                self.protocol_errors.append(f"not a transcription session: {raw}")
                return
            conn.session = raw
            session = RealtimeTranscriptionSessionCreateRequest.model_validate(raw)
            model = ((raw.get("audio") or {}).get("input") or {}).get("transcription", {}).get("model")
            if model not in MODELS:
                await self._error(conn, "invalid_request_error", "invalid_value",
                                  f"Invalid transcription model {model!r}", event.event_id)
                return
            await self._send(conn, SessionUpdatedEvent(type="session.updated", event_id=self._id("event"),
                                                       session=session))
        elif event.type == "input_audio_buffer.append":
            await self._on_audio(conn, base64.b64decode(event.audio))
        elif event.type == "input_audio_buffer.commit":
            if 1000 * len(conn.buffer) / 2 / RATE < 100:
                await self._error(conn, "invalid_request_error", "input_audio_buffer_commit_empty",
                                  "Error committing input audio buffer: buffer too small", event.event_id)
                return
            await self._commit(conn, conn.speech_item or self._id("item"))
        elif event.type == "input_audio_buffer.clear":
            conn.buffer.clear()
            conn.speech_item = None
            await self._send(conn, InputAudioBufferClearedEvent(type="input_audio_buffer.cleared",
                                                                event_id=self._id("event")))
        else:
            self.protocol_errors.append(f"{event.type} is not for a transcription session")

    def _vad(self, conn: Conn) -> dict[str, Any] | None:
        detection: dict[str, Any] | None = ((conn.session.get("audio") or {}).get("input") or {}).get(
            "turn_detection")
        return detection

    async def _on_audio(self, conn: Conn, pcm: bytes) -> None:
        conn.buffer += pcm
        samples = np.frombuffer(pcm, "<i2").astype(np.float64)
        ms = 1000 * len(samples) / RATE
        start = conn.appended_ms
        conn.appended_ms += ms
        detection = self._vad(conn)
        if detection is None or detection.get("type") != "server_vad":
            return
        loud = len(samples) > 0 and float(np.sqrt(np.mean(samples**2))) > 500
        if loud:
            conn.silence_ms = 0.0
            if conn.speech_item is None:
                conn.speech_item = self._id("item")
                await self._send(conn, InputAudioBufferSpeechStartedEvent(
                    type="input_audio_buffer.speech_started", event_id=self._id("event"),
                    audio_start_ms=int(start), item_id=conn.speech_item))
            return
        if conn.speech_item is None:
            return
        conn.silence_ms += ms
        if conn.silence_ms < detection.get("silence_duration_ms", 500):
            return
        item = conn.speech_item
        await self._send(conn, InputAudioBufferSpeechStoppedEvent(
            type="input_audio_buffer.speech_stopped", event_id=self._id("event"),
            audio_end_ms=int(conn.appended_ms - conn.silence_ms), item_id=item))
        await self._commit(conn, item)

    async def _commit(self, conn: Conn, item: str) -> None:
        pcm, conn.buffer = bytes(conn.buffer), bytearray()
        conn.speech_item = None
        conn.silence_ms = 0.0
        await self._send(conn, InputAudioBufferCommittedEvent(type="input_audio_buffer.committed",
                                                              event_id=self._id("event"), item_id=item))
        samples = np.frombuffer(pcm, "<i2").astype(np.float64)
        loud = bool(np.any(np.abs(samples) > 2000))
        number = next(self._items) if loud else 0
        text = (self.transcripts.pop(0) if self.transcripts else self.default) if loud else ""
        task = asyncio.get_running_loop().create_task(self._transcribe(conn, item, number, text, len(pcm) / 2 / RATE))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    async def _transcribe(self, conn: Conn, item: str, number: int, text: str, seconds: float) -> None:
        words = text.split(" ") if text else []
        for i, word in enumerate(words):
            await self._send(conn, ConversationItemInputAudioTranscriptionDeltaEvent(
                type="conversation.item.input_audio_transcription.delta", event_id=self._id("event"),
                item_id=item, content_index=0, delta=(" " if i else "") + word))
        if number in self.hold:
            await self.hold[number].wait()
        if number in self.fail_items:
            await self._send(conn, ConversationItemInputAudioTranscriptionFailedEvent.model_validate(
                {"type": "conversation.item.input_audio_transcription.failed", "event_id": self._id("event"),
                 "item_id": item, "content_index": 0,
                 "error": {"type": "server_error", "code": "transcription_failed", "message": "audio unreadable"}}))
            self.completions[number].set()
            return
        await self._send(conn, ConversationItemInputAudioTranscriptionCompletedEvent.model_validate(
            {"type": "conversation.item.input_audio_transcription.completed", "event_id": self._id("event"),
             "item_id": item, "content_index": 0, "transcript": text,
             "usage": {"type": "duration", "seconds": seconds}}))
        self.completions[number].set()
