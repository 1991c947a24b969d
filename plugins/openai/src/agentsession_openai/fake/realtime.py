"""A local OpenAI Realtime server (GA protocol) for tests, on 127.0.0.1.

Every server event is built from the SDK's own pydantic types (``openai.types.realtime``) and every client
event received is validated against the SDK's client-event union, with unknown fields refused, so the
plugin cannot drift from the protocol the SDK describes. Protocol violations are collected in
``server.protocol_errors`` (the ``realtime_server`` fixture fails the test on any).

Behaviour, close to the real service: ``session.created`` on connect, ``session.updated`` for each
``session.update``; an energy VAD over appended audio (``speech_started``/``speech_stopped``, commit,
transcription, a response when ``create_response``); ``response.create`` streams a tone as
``response.output_audio.delta`` chunks with a transcript, or calls a tool when the user's last message
names one, or answers a tool's output; ``response.cancel`` stops the stream (a few deltas already in
flight still go out, as on a real network) and ends with ``status: cancelled``; a response's ``metadata`` is
echoed in its ``response.created`` and ``response.done``, as the real server does. ``conversation.item.truncate``
is validated as the real server validates it (an assistant audio item of this conversation, its audio content
part, ``audio_end_ms`` within the audio sent) and recorded in ``Connection.truncations``.

Faults, for the liveness tests: ``drop()`` cuts every connection (no close frame); ``stall()`` leaves the TCP
connection open and forwards nothing (the server stops reading, and every event it would send waits);
``trickle()`` is a slow-loris: the server's bytes go out one at a time, ``trickle_interval`` apart, so no
message ever completes; ``hang()`` stops the response in flight where it is while the server goes on
sending unrelated events (``rate_limits.updated``) every second; ``close(reason)`` closes with 1011 and a
reason; ``echo_key()`` sends an error quoting the key the client sent; ``send_raw()`` sends any text. The
user audio a connection received is kept in ``Connection.audio`` (pcm16).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import numpy as np
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemTruncatedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RateLimitsUpdatedEvent,
    RealtimeClientEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemUserMessage,
    RealtimeErrorEvent,
    RealtimeResponse,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_error import RealtimeError
from openai.types.realtime.realtime_response_status import RealtimeResponseStatus
from openai.types.realtime.realtime_response_usage import RealtimeResponseUsage
from pydantic import BaseModel, TypeAdapter, ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agentsession.plugin import example_arguments
from agentsession.testing import every, slow_loris

CLIENT_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
RATE = 24000
API_KEY = "sk-test-fake-realtime-0123456789abcdef"


def check_no_extra(value: object, path: str = "event") -> list[str]:
    """Fields a pydantic model accepted but does not declare (the SDK's models allow extras)."""
    problems: list[str] = []
    if isinstance(value, BaseModel):
        problems += [f"{path}.{k}: unknown field" for k in (value.model_extra or {})]
        for name in type(value).model_fields:
            problems += check_no_extra(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            problems += check_no_extra(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            problems += check_no_extra(v, f"{path}.{k}")
    return problems


def tone_pcm(seconds: float, freq: float = 330.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


@dataclass
class Reply:
    """What the fake says in one response: ``text`` with ``audio`` seconds of tone, or calls to ``tools``."""

    text: str = ""
    audio: float = 0.6
    tools: list[str] = field(default_factory=list)
    items: int = 1  # assistant audio items the speech is split over (the text goes with the last)


@dataclass
class Connection:
    """One client connection's view: what it configured and the conversation it built."""

    ws: ServerConnection
    path: str
    authorization: str | None
    session: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    appended_ms: float = 0.0
    speech_start_ms: float | None = None
    silence_ms: float = 0.0
    response: asyncio.Task[None] | None = None
    response_id: str | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    audio_sent_ms: dict[str, float] = field(default_factory=dict)
    truncations: list[tuple[str, int]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)  # the user audio received (pcm16 mono 24 kHz)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while stalled: events wait
    going: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while hung: the response waits
    faults: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()
        self.going.set()

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.received if e.type == kind]


class FakeRealtimeServer:
    """``async with FakeRealtimeServer() as server``; point ``AsyncOpenAI(base_url=server.base_url)`` at it."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.protocol_errors: list[str] = []
        self.refuse = 0  # refuse this many next connections (HTTP 503)
        self.refuse_status = HTTPStatus.SERVICE_UNAVAILABLE
        self.reply_audio = 0.6  # seconds of audio per spoken reply
        self.chunk = 0.1  # seconds of audio per delta
        self.chunk_delay = 0.002  # seconds between deltas (real servers are faster than real time)
        self.transcript = "hello there"  # what the fake "hears" in a user's speech
        self.tool_arguments: dict[str, dict[str, Any]] = {}
        self.example_arguments = False  # a tool without tool_arguments is called with example ones (from its schema)
        self.api_key = API_KEY  # the key a client must send
        self.stragglers = 2  # deltas still sent after response.cancel, as if already in flight
        self.audio_items = 1  # assistant audio items per spoken response
        self.preamble = ""  # said before a response's tool calls ("Let me check."), with preamble_audio seconds
        self.preamble_audio = 1.0
        self.trickle_interval = 0.5  # seconds between the bytes of a trickled connection
        self.keep_audio = True  # keep the user audio received in Connection.audio
        self.stall_new = False  # stall each new connection as soon as it is open (before session.created)
        self.connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._server: Server | None = None

    @property
    def current(self) -> Connection:
        return self.connections[-1]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aenter__(self) -> FakeRealtimeServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request,
                                   compression=None, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for conn in self.connections:
            for task in conn.faults:
                task.cancel()
            if not conn.gate.is_set() or conn.faults:  # a stalled peer would hold the closing handshake
                conn.ws.transport.abort()
                conn.gate.set()  # what waited to be sent fails now
        self._server.close()
        await self._server.wait_closed()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # ------------------------------------------------------------------ connections

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if not request.path.startswith("/v1/realtime?model="):
            self.protocol_errors.append(f"unexpected websocket path {request.path!r}")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Response(401, "Unauthorized", Headers(), b'{"error": {"message": "Incorrect API key provided"}}')
        if self.refuse > 0:
            self.refuse -= 1
            return Response(self.refuse_status.value, self.refuse_status.phrase, Headers(), b"")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = Connection(ws, ws.request.path, ws.request.headers.get("Authorization"))
        self.connections.append(conn)
        self.connected.set()
        if self.stall_new:
            self.stall(conn)
        session = RealtimeSessionCreateRequest(type="realtime", model="gpt-realtime", instructions="default")
        await self._send(conn, SessionCreatedEvent(type="session.created", event_id=self._id("event"), session=session))
        try:
            async for raw in ws:
                try:
                    event = CLIENT_EVENTS.validate_json(raw)
                except ValidationError as exc:
                    self.protocol_errors.append(f"invalid client event {raw[:200]!r}: {exc}")
                    await self._error(conn, "invalid_request_error", "invalid_event", str(exc)[:200], None)
                    continue
                problems = check_no_extra(event)
                if problems:
                    self.protocol_errors.append(f"{event.type}: {'; '.join(problems)}")
                conn.received.append(event)
                await self._on_event(conn, event, json.loads(raw))
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:  # a fake's bug must fail the test, not hang it
            if not isinstance(exc, ConnectionError) and "ConnectionClosed" not in type(exc).__name__:
                self.protocol_errors.append(f"fake server crashed: {exc!r}")
        finally:
            if conn.response is not None:
                conn.response.cancel()
            for task in conn.faults:
                task.cancel()

    def count(self, kind: str) -> int:
        """How many client events of ``kind`` arrived, over all connections."""
        return sum(len(c.of_type(kind)) for c in self.connections)

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` client events of ``kind`` arrived (and were handled)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count(kind) >= count), timeout)

    async def drop(self) -> None:
        """Cut every connection abruptly (no close frame: the client sees 1006)."""
        for conn in self.connections:
            if conn.response is not None:
                conn.response.cancel()
            conn.ws.transport.abort()

    def stall(self, conn: Connection | None = None) -> Connection:
        """Forward nothing on ``conn`` (the current one) from now on: TCP stays open, nothing is read or sent."""
        conn = conn or self.current
        conn.gate.clear()
        conn.ws.transport.pause_reading()
        return conn

    def trickle(self, conn: Connection | None = None) -> Connection:
        """A slow-loris on ``conn``: what the server writes from now on goes out a byte per ``trickle_interval``."""
        conn = conn or self.current
        conn.faults.append(slow_loris(conn.ws.transport, self.trickle_interval))
        return conn

    def hang(self, conn: Connection | None = None) -> Connection:
        """The response in flight on ``conn`` stops where it is; unrelated events go on, one a second."""
        conn = conn or self.current
        conn.going.clear()
        conn.faults.append(every(1.0, lambda: self._send(conn, RateLimitsUpdatedEvent(
            type="rate_limits.updated", event_id=self._id("event"), rate_limits=[]))))
        return conn

    async def close(self, reason: str, code: int = 1011) -> None:
        """Close the current connection with ``code`` and ``reason``."""
        await self.current.ws.close(code, reason)

    async def echo_key(self) -> None:
        """An error quoting the key the client sent, as a careless proxy would."""
        key = (self.current.authorization or "").removeprefix("Bearer ")
        await self.send_error("invalid_value", f"Incorrect API key provided: {key}")

    async def send_raw(self, data: str) -> None:
        """Send ``data`` as one message on the current connection."""
        await self.current.ws.send(data)

    async def _send(self, conn: Connection, event: BaseModel) -> None:
        await conn.gate.wait()
        with contextlib.suppress(Exception):
            await conn.ws.send(event.model_dump_json(exclude_unset=True))

    async def send_error(self, code: str, message: str, type: str = "invalid_request_error") -> None:
        """Send an ``error`` event on the current connection."""
        await self._error(self.current, type, code, message, None)

    async def _error(self, conn: Connection, type: str, code: str, message: str, event_id: str | None) -> None:
        error = RealtimeError(type=type, code=code, message=message, event_id=event_id)
        await self._send(conn, RealtimeErrorEvent(type="error", event_id=self._id("event"), error=error))

    # ------------------------------------------------------------------ client events

    async def _on_event(self, conn: Connection, event: Any, raw: dict[str, Any]) -> None:
        kind = event.type
        if kind == "session.update":
            conn.session.update(raw["session"])
            try:
                session = RealtimeSessionCreateRequest.model_validate(conn.session)
            except ValidationError as exc:
                self.protocol_errors.append(f"session config invalid: {exc}")
                return
            await self._send(conn, SessionUpdatedEvent(type="session.updated", event_id=self._id("event"),
                                                       session=session))
        elif kind == "input_audio_buffer.append":
            await self._on_audio(conn, base64.b64decode(event.audio))
        elif kind == "conversation.item.create":
            item = dict(raw["item"])
            item.setdefault("id", self._id("item"))
            conn.items.append(item)
            await self._item_added(conn, item)
        elif kind == "response.create":
            if conn.response is not None and not conn.response.done():
                await self._error(conn, "invalid_request_error", "conversation_already_has_active_response",
                                  "Conversation already has an active response", event.event_id)
                return
            params = raw.get("response") or {}
            self._start_response(conn, params)
        elif kind == "response.cancel":
            if conn.response is None or conn.response.done():
                await self._error(conn, "invalid_request_error", "response_cancel_not_active",
                                  "Cancellation failed: no active response found", event.event_id)
                return
            if event.response_id not in (None, conn.response_id):
                self.protocol_errors.append(f"cancel of unknown response {event.response_id}")
            conn.cancelled.set()
            await conn.response
        elif kind == "conversation.item.truncate":
            sent = conn.audio_sent_ms.get(event.item_id)
            problem = None
            if sent is None:
                problem = f"truncate of {event.item_id}, not an assistant audio item of this conversation"
            elif event.content_index != 0:
                problem = f"truncate of content part {event.content_index} of {event.item_id}: it has one audio part"
            elif event.audio_end_ms < 0 or event.audio_end_ms > sent + 1e-6:
                problem = f"truncate beyond the audio sent: {event.audio_end_ms} > {sent}"
            if problem is not None:
                self.protocol_errors.append(problem)
                await self._error(conn, "invalid_request_error", "invalid_value", problem, event.event_id)
                return
            conn.truncations.append((event.item_id, event.audio_end_ms))
            await self._send(conn, ConversationItemTruncatedEvent(
                type="conversation.item.truncated", event_id=self._id("event"), item_id=event.item_id,
                content_index=event.content_index, audio_end_ms=event.audio_end_ms))

    async def _item_added(self, conn: Connection, item: dict[str, Any]) -> None:
        for cls in (ConversationItemAdded, ConversationItemDone):
            kind = "conversation.item.added" if cls is ConversationItemAdded else "conversation.item.done"
            await self._send(conn, cls.model_validate({"type": kind, "event_id": self._id("event"), "item": item}))

    async def _on_audio(self, conn: Connection, pcm: bytes) -> None:
        if self.keep_audio:
            conn.audio.extend(pcm)
        samples = np.frombuffer(pcm, "<i2").astype(np.float64)
        ms = 1000 * len(samples) / RATE
        loud = len(samples) > 0 and float(np.sqrt(np.mean(samples**2))) > 500
        start = conn.appended_ms
        conn.appended_ms += ms
        if loud:
            conn.silence_ms = 0.0
            if conn.speech_start_ms is None:
                conn.speech_start_ms = start
                await self._send(conn, InputAudioBufferSpeechStartedEvent(
                    type="input_audio_buffer.speech_started", event_id=self._id("event"),
                    audio_start_ms=int(start), item_id=self._id("item")))
            return
        if conn.speech_start_ms is None:
            return
        conn.silence_ms += ms
        detection = conn.session.get("audio", {}).get("input", {}).get("turn_detection") or {}
        if conn.silence_ms < detection.get("silence_duration_ms", 300):
            return
        end_ms = int(conn.appended_ms - conn.silence_ms)
        conn.speech_start_ms = None
        item_id = self._id("item")
        await self._send(conn, InputAudioBufferSpeechStoppedEvent(
            type="input_audio_buffer.speech_stopped", event_id=self._id("event"), audio_end_ms=end_ms,
            item_id=item_id))
        await self._send(conn, InputAudioBufferCommittedEvent(
            type="input_audio_buffer.committed", event_id=self._id("event"), item_id=item_id))
        item = RealtimeConversationItemUserMessage.model_validate(
            {"id": item_id, "type": "message", "role": "user", "status": "completed",
             "content": [{"type": "input_audio", "transcript": None}]}
        ).model_dump(exclude_unset=True)
        conn.items.append({**item, "heard": self.transcript})
        await self._item_added(conn, item)
        if conn.session.get("audio", {}).get("input", {}).get("transcription"):
            await self._send(conn, ConversationItemInputAudioTranscriptionCompletedEvent.model_validate(
                {"type": "conversation.item.input_audio_transcription.completed", "event_id": self._id("event"),
                 "item_id": item_id, "content_index": 0, "transcript": self.transcript,
                 "usage": {"type": "duration", "seconds": end_ms / 1000}}))
        if detection.get("create_response", True) and (conn.response is None or conn.response.done()):
            self._start_response(conn, {})

    # ------------------------------------------------------------------ responses

    def decide(self, conn: Connection, params: dict[str, Any]) -> Reply:
        """The fake's "model": say-verbatim instructions, tool calls by name, answers to tool outputs."""
        instructions = params.get("instructions", "")
        if "word for word" in instructions:
            return Reply(text=instructions.rsplit("\n\n", 1)[-1], audio=self.reply_audio)
        last = conn.items[-1] if conn.items else None
        if last is not None and last.get("type") == "function_call_output":
            outputs: list[str] = []
            for item in reversed(conn.items):
                if item.get("type") != "function_call_output":
                    break
                outputs.insert(0, item["output"])
            if len(outputs) == 1:
                return Reply(text=f"The answer is {outputs[0]}.", audio=self.reply_audio)
            return Reply(text=f"The answers are {'; '.join(outputs)}.", audio=self.reply_audio)
        if last is not None and last.get("role") == "user":
            said = last.get("heard") or " ".join(c.get("text", "") for c in last.get("content", []))
            tools = [t["name"] for t in conn.session.get("tools", [])]
            named = [name for name in tools if re.search(rf"\b{re.escape(name)}\b", said)]
            if named and params.get("tool_choice") != "none":
                return Reply(tools=named, text=self.preamble, audio=self.preamble_audio if self.preamble else 0.0)
            return Reply(text=f"You said: {said}", audio=self.reply_audio)
        return Reply(text="How can I help?", audio=self.reply_audio)

    def _arguments(self, conn: Connection, name: str) -> dict[str, Any]:
        if name in self.tool_arguments or not self.example_arguments:
            return self.tool_arguments.get(name, {})
        schema = next((t.get("parameters") or {} for t in conn.session.get("tools", []) if t.get("name") == name), {})
        return example_arguments(schema)

    def _start_response(self, conn: Connection, params: dict[str, Any]) -> None:
        conn.cancelled = asyncio.Event()
        conn.response_id = self._id("resp")
        reply = self.decide(conn, params)
        if not reply.tools and self.audio_items > 1:
            reply.items = self.audio_items
        conn.response = asyncio.get_running_loop().create_task(
            self._guarded(self._respond(conn, conn.response_id, reply, params.get("metadata"))))

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.protocol_errors.append(f"fake server response crashed: {exc!r}")

    async def _respond(self, conn: Connection, rid: str, reply: Reply, metadata: dict[str, str] | None) -> None:
        def e() -> str:
            return self._id("event")

        await self._send(conn, ResponseCreatedEvent(type="response.created", event_id=e(), response=RealtimeResponse(
            id=rid, object="realtime.response", status="in_progress", output=[], metadata=metadata)))
        output: list[Any] = []
        status: Literal["completed", "cancelled"] = "completed"
        if reply.text or not reply.tools:  # speech first (a tool-calling answer may say something first)
            words = reply.text.split(" ")
            per = -(-len(words) // reply.items)
            for index in range(reply.items):  # one assistant audio item after the other, as the server does
                item_id = self._id("item")
                part = Reply(text=" ".join(words[index * per : (index + 1) * per]), audio=reply.audio / reply.items)
                status = await self._speak(conn, rid, item_id, part, index)
                item = RealtimeConversationItemAssistantMessage.model_validate(
                    {"id": item_id, "type": "message", "role": "assistant",
                     "status": "completed" if status == "completed" else "incomplete",
                     "content": [{"type": "output_audio", "transcript": part.text}]})
                if status == "completed":
                    await self._send(conn, ResponseOutputItemDoneEvent(
                        type="response.output_item.done", event_id=e(), response_id=rid, output_index=index,
                        item=item))
                conn.items.append(item.model_dump(exclude_unset=True))
                output.append(item)
                if status != "completed":
                    break
        for name in reply.tools if status == "completed" else []:
            index, item_id = len(output), self._id("item")
            call = RealtimeConversationItemFunctionCall(
                id=item_id, type="function_call", call_id=self._id("call"), name=name,
                arguments=json.dumps(self._arguments(conn, name)), status="completed")
            assert call.call_id is not None
            await self._send(conn, ResponseOutputItemAddedEvent(
                type="response.output_item.added", event_id=e(), response_id=rid, output_index=index, item=call))
            await self._send(conn, ResponseFunctionCallArgumentsDeltaEvent(
                type="response.function_call_arguments.delta", event_id=e(), response_id=rid, item_id=item_id,
                output_index=index, call_id=call.call_id, delta=call.arguments))
            await self._send(conn, ResponseFunctionCallArgumentsDoneEvent(
                type="response.function_call_arguments.done", event_id=e(), response_id=rid, item_id=item_id,
                output_index=index, call_id=call.call_id, name=name, arguments=call.arguments))
            await self._send(conn, ResponseOutputItemDoneEvent(
                type="response.output_item.done", event_id=e(), response_id=rid, output_index=index, item=call))
            conn.items.append(call.model_dump(exclude_unset=True))
            output.append(call)
        details = (RealtimeResponseStatus(type="cancelled", reason="client_cancelled") if status == "cancelled"
                   else None)
        usage = RealtimeResponseUsage(input_tokens=12, output_tokens=34, total_tokens=46)
        await self._send(conn, ResponseDoneEvent(type="response.done", event_id=e(), response=RealtimeResponse(
            id=rid, object="realtime.response", status=status, status_details=details, output=output, usage=usage,
            metadata=metadata)))

    async def _speak(self, conn: Connection, rid: str, item_id: str, reply: Reply,
                     output_index: int = 0) -> Literal["completed", "cancelled"]:
        def e() -> str:
            return self._id("event")

        shell = RealtimeConversationItemAssistantMessage.model_validate(
            {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []})
        await self._send(conn, ResponseOutputItemAddedEvent(
            type="response.output_item.added", event_id=e(), response_id=rid, output_index=output_index, item=shell))
        await self._send(conn, ResponseContentPartAddedEvent.model_validate(
            {"type": "response.content_part.added", "event_id": e(), "response_id": rid, "item_id": item_id,
             "output_index": output_index, "content_index": 0, "part": {"type": "audio", "transcript": ""}}))
        pcm = tone_pcm(reply.audio)
        step = int(self.chunk * RATE) * 2
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        words = reply.text.split(" ")
        stragglers = None
        for i, chunk in enumerate(chunks):
            await conn.going.wait()
            if conn.cancelled.is_set():
                stragglers = self.stragglers if stragglers is None else stragglers - 1
                if stragglers <= 0:
                    break
            conn.audio_sent_ms[item_id] = conn.audio_sent_ms.get(item_id, 0.0) + 1000 * len(chunk) / 2 / RATE
            await self._send(conn, ResponseAudioDeltaEvent(
                type="response.output_audio.delta", event_id=e(), response_id=rid, item_id=item_id, output_index=output_index,
                content_index=0, delta=base64.b64encode(chunk).decode()))
            if i < len(words):
                await self._send(conn, ResponseAudioTranscriptDeltaEvent(
                    type="response.output_audio_transcript.delta", event_id=e(), response_id=rid, item_id=item_id,
                    output_index=output_index, content_index=0, delta=(" " if i else "") + words[i]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.cancelled.wait(), self.chunk_delay)
        if conn.cancelled.is_set():
            return "cancelled"
        rest = " ".join(words[len(chunks):])
        if rest:
            await self._send(conn, ResponseAudioTranscriptDeltaEvent(
                type="response.output_audio_transcript.delta", event_id=e(), response_id=rid, item_id=item_id,
                output_index=output_index, content_index=0, delta=" " + rest))
        await self._send(conn, ResponseAudioDoneEvent(
            type="response.output_audio.done", event_id=e(), response_id=rid, item_id=item_id, output_index=output_index,
            content_index=0))
        await self._send(conn, ResponseAudioTranscriptDoneEvent(
            type="response.output_audio_transcript.done", event_id=e(), response_id=rid, item_id=item_id,
            output_index=output_index, content_index=0, transcript=reply.text))
        await self._send(conn, ResponseContentPartDoneEvent.model_validate(
            {"type": "response.content_part.done", "event_id": e(), "response_id": rid, "item_id": item_id,
             "output_index": output_index, "content_index": 0, "part": {"type": "audio", "transcript": reply.text}}))
        return "completed"
