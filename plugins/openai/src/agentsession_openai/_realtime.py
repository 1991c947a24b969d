"""``OpenAIRealtime``: the OpenAI Realtime API (GA) as a core ``RealtimeModel``, over the official SDK's websocket."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from openai import AsyncOpenAI, OpenAIError
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemParam,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeClientEventParam,
    RealtimeErrorEvent,
    RealtimeResponseCreateParamsParam,
    RealtimeServerEvent,
    RealtimeSessionCreateRequestParam,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    ChatMessage,
    Error,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    ModelError,
    ModelOptions,
    RealtimeModel,
    Reframer,
    ResponseDone,
    ToolCall,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    mask,
)

from ._client import make_client

logger = logging.getLogger("agentsession.openai.realtime")

SAMPLE_RATE = 24000
_PCM = {"type": "audio/pcm", "rate": SAMPLE_RATE}
#: server VAD that detects turns and answers them, but leaves barge-in to the session (which filters
#: false interruptions), so ``interrupt_response`` is off.
DEFAULT_TURN_DETECTION: dict[str, Any] = {"type": "server_vad", "create_response": True, "interrupt_response": False}
DEFAULT_TRANSCRIPTION: dict[str, Any] = {"model": "gpt-4o-mini-transcribe"}
#: error codes after which going on is pointless
_FATAL_CODES = frozenset({"invalid_api_key", "insufficient_quota", "model_not_found", "unsupported_model"})
_SAY_INSTRUCTIONS = (
    "Say exactly the following text, word for word, in your normal voice. Do not add, drop or change "
    "anything and do not answer it:\n\n{text}"
)
_NETWORK_ERRORS = (ConnectionClosed, WebSocketException, OpenAIError, OSError)
_AUDIO_DELTA = "response.output_audio.delta"
_TEXT_DELTAS = frozenset({"response.output_audio_transcript.delta", "response.output_text.delta"})
_UNSET: Any = object()


class OpenAIRealtime(RealtimeModel):
    """Speech to speech with OpenAI's Realtime API (``gpt-realtime``), through ``AsyncOpenAI().realtime.connect``.

    - Input: the session's mono 24 kHz frames, batched into 100 ms ``input_audio_buffer.append`` events
      by a sender task (``push_audio`` never blocks; while disconnected, audio is dropped).
    - Output: the hot events (audio and transcript deltas, ~50 a second) are read from the JSON directly;
      every other event goes through the SDK's typed ``parse_event``.
    - Turns: server VAD (``turn_detection``, default :data:`DEFAULT_TURN_DETECTION`) with
      ``interrupt_response`` off: the session decides barge-in and calls :meth:`interrupt`, which sends
      ``response.cancel`` and ``conversation.item.truncate`` at what the user heard.
    - Tools: a response's function calls are emitted as ``ToolCall``s when it is done (just before its
      ``ResponseDone``); once every call of it has a result, one ``response.create`` continues.
    - ``say(text)``: an in-band ``response.create`` whose instructions ask the model to speak ``text``
      verbatim (with tools off). The model voices it, so it is near-verbatim, not guaranteed; the spoken
      words land in the server's conversation like any answer.
    - Reconnect: a dropped socket is reopened with exponential backoff; the session config and the
      session's history (``ModelOptions.chat_ctx``: text messages, function calls and outputs) are
      replayed. A response in flight is reported (``Error`` recoverable + ``ResponseDone(interrupted)``);
      after ``max_reconnect_attempts`` failures a non-recoverable ``Error`` closes the session.
    """

    provider = "openai"
    input_sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: str = "gpt-realtime",
        voice: str = "alloy",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        turn_detection: Mapping[str, Any] | None = _UNSET,
        input_transcription: Mapping[str, Any] | None = _UNSET,
        noise_reduction: str | None = None,
        speed: float | None = None,
        max_output_tokens: int | None = None,
        connect_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 8.0,
    ) -> None:
        super().__init__()
        if max_reconnect_attempts < 0:
            raise ValueError("max_reconnect_attempts must be >= 0")
        self.model = model
        self.voice = voice
        self._api_key = api_key
        self.base_url = base_url
        self.websocket_base_url = websocket_base_url
        self.turn_detection = dict(DEFAULT_TURN_DETECTION if turn_detection is _UNSET else turn_detection or {}) or None
        self.input_transcription = (
            dict(DEFAULT_TRANSCRIPTION if input_transcription is _UNSET else input_transcription or {}) or None
        )
        self.noise_reduction = noise_reduction
        self.speed = speed
        self.max_output_tokens = max_output_tokens
        self.connect_timeout = connect_timeout
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self._client: AsyncOpenAI | None = None
        self._conn: AsyncRealtimeConnection | None = None
        self._instructions = ""
        self._tools: Sequence[FunctionTool] = ()
        self._chat_ctx = ChatContext()
        self._reframer = Reframer(SAMPLE_RATE, frame_ms=100)
        self._audio_q: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=50)  # 5 s of 100 ms chunks
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._reset_connection_state()
        # tool calls: pending call ids per response, and the responses that are done
        self._calls: dict[str, set[str]] = {}
        self._call_response: dict[str, str] = {}
        self._finished: set[str] = set()
        self._emitted_calls: set[str] = set()
        self._queued: list[RealtimeResponseCreateParamsParam] = []  # responses waiting for their turn
        self._missed: list[ConversationItemParam] = []  # items not sent while disconnected
        self._audio_offset = 0.0  # seconds of input audio sent on previous connections
        self._sent_audio = 0.0  # seconds of input audio sent on this connection
        self.reconnects = 0

    def _reset_connection_state(self) -> None:
        self._response_id: str | None = None  # the response being generated
        self._requested: tuple[str, RealtimeResponseCreateParamsParam] | None = None  # sent, not created yet
        self._cancel_requested = False  # interrupt() came before the requested response was created
        self._cancelled: set[str] = set()
        self._texts: list[str] = []  # finished transcript parts of the current response
        self._held_calls: list[ToolCall] = []  # the current response's tool calls, emitted at its end
        self._audio_item: tuple[str, int, str] | None = None  # (item_id, content_index, response_id)
        self._audio_ms = 0.0  # audio of that item received so far

    def __repr__(self) -> str:
        return (
            f"OpenAIRealtime(model={self.model!r}, voice={self.voice!r}, api_key={mask(self._api_key)!r}, "
            f"base_url={self.base_url!r})"
        )

    # ------------------------------------------------------------------ RealtimeModel

    async def start(self, options: ModelOptions) -> None:
        self._instructions = options.instructions
        self._tools = list(options.tools)
        self._chat_ctx = options.chat_ctx
        self._client = make_client(self._api_key, "OpenAIRealtime", self.base_url, self.websocket_base_url)
        try:
            conn = await self._open()
        except ModelError:
            raise
        except (*_NETWORK_ERRORS, TimeoutError) as exc:
            raise ModelError(f"cannot connect to the OpenAI Realtime API: {_describe(exc)}", code="connect_failed") from None
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise(conn), name="openai-realtime:reader"),
            loop.create_task(self._send_audio(), name="openai-realtime:audio"),
        ]

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"OpenAIRealtime takes {SAMPLE_RATE} Hz frames, got {frame.sample_rate} Hz")
        if self._closed:
            return
        # batched here, so the sender wakes once per 100 ms chunk rather than for every frame
        for chunk in self._reframer.push(frame.to_mono()):
            if self._audio_q.full():  # the sender is stuck (reconnecting): old audio goes first
                self._audio_q.get_nowait()
            self._audio_q.put_nowait(chunk)

    async def send_text(self, text: str) -> None:
        await self._send_item(_message("user", text))
        await self._request_response({})

    async def say(self, text: str) -> None:
        await self._request_response({"instructions": _SAY_INSTRUCTIONS.format(text=text), "tool_choice": "none"})

    async def reply(self, instructions: str | None = None) -> None:
        params: RealtimeResponseCreateParamsParam = {}
        if instructions:
            params["instructions"] = f"{self._instructions}\n\n{instructions}" if self._instructions else instructions
        await self._request_response(params)

    async def interrupt(self, played: float | None = None) -> None:
        rid = self._response_id
        self._queued.clear()
        if rid is not None and rid not in self._cancelled:
            self._cancelled.add(rid)  # from here on its events are dropped, its response.done included
            self._held_calls = []
            for call_id in self._calls.pop(rid, set()):
                self._call_response.pop(call_id, None)
            self.channel.purge_audio()
            self.channel.emit(ResponseDone(interrupted=True))
            await self._send({"type": "response.cancel", "response_id": rid})
        elif self._requested is not None and not self._cancel_requested:
            self._cancel_requested = True  # cancelled as soon as the server creates it
            self.channel.emit(ResponseDone(interrupted=True))
        item = self._audio_item
        if item is None or played is None:
            return
        item_id, content_index, item_rid = item
        heard_ms = min(int(played * 1000 + 1e-6), int(self._audio_ms))
        # played == 0 means nothing is playing: only the cancelled response's audio was cut unheard
        if heard_ms < int(self._audio_ms) and (played > 0 or item_rid == rid):
            self._audio_item = None
            await self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": content_index,
                    "audio_end_ms": heard_ms,
                }
            )

    async def send_tool_result(self, result: ToolResult) -> None:
        await self._send_item({"type": "function_call_output", "call_id": result.call_id, "output": result.output})
        rid = self._call_response.pop(result.call_id, None)
        if rid is None:
            logger.warning("tool result for unknown call %s: asking for a response anyway", result.call_id)
            await self._request_response({})
            return
        self._calls.get(rid, set()).discard(result.call_id)
        await self._continue_after_tools(rid)

    async def update_instructions(self, instructions: str) -> None:
        self._instructions = instructions
        await self._send({"type": "session.update", "session": {"type": "realtime", "instructions": instructions}})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                logger.debug("closing the realtime socket failed", exc_info=True)
        if self._client is not None:
            await self._client.close()
        self.channel.end()

    # ------------------------------------------------------------------ connection

    def _session_config(self) -> RealtimeSessionCreateRequestParam:
        audio_in: dict[str, Any] = {"format": dict(_PCM), "turn_detection": self.turn_detection}
        if self.input_transcription is not None:
            audio_in["transcription"] = dict(self.input_transcription)
        if self.noise_reduction is not None:
            audio_in["noise_reduction"] = {"type": self.noise_reduction}
        audio_out: dict[str, Any] = {"format": dict(_PCM), "voice": self.voice}
        if self.speed is not None:
            audio_out["speed"] = self.speed
        config: dict[str, Any] = {
            "type": "realtime",
            "instructions": self._instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": audio_out},
            "tools": [{"type": "function", **tool.schema()} for tool in self._tools],
            "tool_choice": "auto",
        }
        if self.max_output_tokens is not None:
            config["max_output_tokens"] = self.max_output_tokens
        return cast(RealtimeSessionCreateRequestParam, config)

    async def _open(self) -> AsyncRealtimeConnection:
        """Connect, configure the session, replay the history; the connection is live when this returns."""
        assert self._client is not None
        manager = self._client.realtime.connect(model=self.model)
        try:
            conn = await asyncio.wait_for(manager.enter(), self.connect_timeout)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ModelError(
                f"the OpenAI Realtime API refused the connection (HTTP {status})",
                recoverable=False,
                code="invalid_api_key" if status == 401 else f"http_{status}",
            ) from None
        try:
            await conn.send({"type": "session.update", "session": self._session_config()})
            await asyncio.wait_for(_session_updated(conn), self.connect_timeout)
            replayed = [_chat_item(item) for item in self._chat_ctx.items]
            items = [item for item in replayed if item is not None]
            for item in items:
                await conn.send({"type": "conversation.item.create", "item": item})
            while self._missed:  # sent while we were away and not yet in the replayed history
                item = self._missed.pop(0)
                if item in items:
                    items.remove(item)
                else:
                    await conn.send({"type": "conversation.item.create", "item": item})
        except BaseException:
            try:
                await conn.close()
            except Exception:
                logger.debug("closing a half-open realtime socket failed", exc_info=True)
            raise
        self._conn = conn
        self._sent_audio = 0.0
        logger.info("connected to the OpenAI Realtime API (%s, %d history items replayed)", self.model, len(replayed))
        return conn

    async def _supervise(self, conn: AsyncRealtimeConnection) -> None:
        """Read events; on a drop, report what was lost and reconnect."""
        while True:
            reason = await self._read(conn)
            if self._closed:
                return
            logger.warning("OpenAI Realtime connection lost (%s); reconnecting", reason)
            self._on_drop()
            reconnected = await self._reconnect()
            if reconnected is None:
                self.channel.emit(
                    Error(
                        f"lost the OpenAI Realtime connection ({reason}) and could not reconnect after "
                        f"{self.max_reconnect_attempts} attempts",
                        recoverable=False,
                        code="reconnect_failed",
                    )
                )
                return
            conn = reconnected
            self.reconnects += 1
            await self._pump()

    async def _read(self, conn: AsyncRealtimeConnection) -> str:
        try:
            while True:
                try:
                    raw = await conn.recv_bytes()
                except ConnectionClosed:
                    break
                await self._on_message(conn, raw)
            # closed: the SDK's own iterator takes the close as it always would (its reconnect policy, unset
            # here, and its unsent messages), raising the error or ending on a normal close
            async for event in conn:
                await self._on_event(event)
        except _NETWORK_ERRORS as exc:
            return _describe(exc)
        return "the server closed the connection"

    async def _on_message(self, conn: AsyncRealtimeConnection, raw: bytes) -> None:
        """One server message: the deltas straight from the JSON (the SDK's typed parse of the whole
        server-event union costs ~56 us, 50 times a second), anything else as the SDK's typed event."""
        kind: object = "?"
        try:
            data = json.loads(raw)
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == _AUDIO_DELTA:
                self._on_audio(data["response_id"], data["item_id"], data["content_index"], data["delta"])
            elif kind in _TEXT_DELTAS:
                self._on_text_delta(data["response_id"], data["delta"])
            else:
                await self._dispatch(conn.parse_event(raw))
        except Exception:
            logger.exception("handling the server event %r failed", kind)

    async def _on_event(self, event: RealtimeServerEvent) -> None:
        try:
            await self._dispatch(event)
        except Exception:
            logger.exception("handling the server event %r failed", getattr(event, "type", "?"))

    def _on_drop(self) -> None:
        self._conn = None
        self._audio_offset += self._sent_audio
        self._sent_audio = 0.0
        rid = self._response_id
        live = rid is not None and rid not in self._cancelled
        if live or (self._requested is not None and not self._cancel_requested):
            self.channel.emit(
                Error("the OpenAI Realtime connection dropped during a response; it was cut short",
                      recoverable=True, code="connection_lost")
            )
            self.channel.emit(ResponseDone(interrupted=True))
        if rid is not None and rid in self._calls:
            self._finished.add(rid)  # its tool calls still get their results and a follow-up response
        self._reset_connection_state()

    async def _reconnect(self) -> AsyncRealtimeConnection | None:
        for attempt in range(1, self.max_reconnect_attempts + 1):
            await asyncio.sleep(min(self.reconnect_delay * 2 ** (attempt - 1), self.max_reconnect_delay))
            try:
                return await self._open()
            except ModelError as exc:
                if exc.code == "invalid_api_key":
                    logger.error("reconnect refused: %s", exc)
                    return None
                logger.warning("reconnect attempt %d/%d failed: %s", attempt, self.max_reconnect_attempts, exc)
            except (*_NETWORK_ERRORS, TimeoutError) as exc:
                logger.warning("reconnect attempt %d/%d failed: %s", attempt, self.max_reconnect_attempts,
                               _describe(exc))
        return None

    async def _send(self, event: RealtimeClientEventParam) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.send(event)
        except _NETWORK_ERRORS as exc:
            logger.debug("send failed (%s); the reader will reconnect", _describe(exc))
            return False
        return True

    async def _send_item(self, item: ConversationItemParam) -> None:
        if not await self._send({"type": "conversation.item.create", "item": item}):
            self._missed.append(item)

    async def _send_audio(self) -> None:
        while True:
            chunk = await self._audio_q.get()
            conn = self._conn
            if conn is None:
                continue  # disconnected: this audio is lost
            try:
                # the event is built by hand: the SDK's typed transform of it costs 8x the JSON (135 us
                # per append, 10 appends a second per session); the shape is the SDK's own and the
                # tests' fake server validates it against the SDK's client-event types
                audio = base64.b64encode(chunk.to_bytes()).decode("ascii")
                await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            except _NETWORK_ERRORS:
                continue
            if conn is self._conn:
                self._sent_audio += chunk.duration

    # ------------------------------------------------------------------ responses

    async def _request_response(self, params: RealtimeResponseCreateParamsParam) -> None:
        self._queued.append(params)
        await self._pump()

    async def _pump(self) -> None:
        """Send the next queued ``response.create`` when no response is being generated."""
        if self._conn is None or self._response_id is not None or self._requested is not None or not self._queued:
            return
        params = self._queued.pop(0)
        event_id = f"as_{uuid.uuid4().hex[:16]}"
        self._requested = (event_id, params)
        if not await self._send({"type": "response.create", "event_id": event_id, "response": params}):
            self._requested = None
            self._queued.insert(0, params)

    async def _continue_after_tools(self, rid: str) -> None:
        if rid in self._finished and not self._calls.get(rid):
            self._finished.discard(rid)
            self._calls.pop(rid, None)
            await self._request_response({})

    # ------------------------------------------------------------------ server events

    async def _dispatch(self, event: RealtimeServerEvent) -> None:
        kind = event.type
        if kind == "input_audio_buffer.speech_started":
            self.channel.emit(UserSpeechStarted())
        elif kind == "input_audio_buffer.speech_stopped":
            stopped = cast(InputAudioBufferSpeechStoppedEvent, event)
            self.channel.emit(UserSpeechStopped(audio_end=self._audio_offset + stopped.audio_end_ms / 1000))
        elif kind == "conversation.item.input_audio_transcription.delta":
            delta = cast(ConversationItemInputAudioTranscriptionDeltaEvent, event).delta
            if delta:
                self.channel.emit(UserTranscript(delta, final=False))
        elif kind == "conversation.item.input_audio_transcription.completed":
            done = cast(ConversationItemInputAudioTranscriptionCompletedEvent, event)
            self.channel.emit(UserTranscript(done.transcript, final=True))
        elif kind == "response.created":
            await self._on_response_created(cast(ResponseCreatedEvent, event))
        elif kind == _AUDIO_DELTA:
            audio = cast(ResponseAudioDeltaEvent, event)
            self._on_audio(audio.response_id, audio.item_id, audio.content_index, audio.delta)
        elif kind in _TEXT_DELTAS:
            text_delta = cast(ResponseAudioTranscriptDeltaEvent | ResponseTextDeltaEvent, event)
            self._on_text_delta(text_delta.response_id, text_delta.delta)
        elif kind == "response.output_audio_transcript.done":
            self._on_text_done(cast(ResponseAudioTranscriptDoneEvent, event).response_id,
                               cast(ResponseAudioTranscriptDoneEvent, event).transcript)
        elif kind == "response.output_text.done":
            self._on_text_done(cast(ResponseTextDoneEvent, event).response_id, cast(ResponseTextDoneEvent, event).text)
        elif kind == "response.function_call_arguments.done":
            args = cast(ResponseFunctionCallArgumentsDoneEvent, event)
            self._on_tool_call(args.response_id, args.call_id, args.name, args.arguments)
        elif kind == "response.output_item.done":
            done_item = cast(ResponseOutputItemDoneEvent, event)
            item = done_item.item
            if item.type == "function_call" and item.call_id and item.name:
                self._on_tool_call(done_item.response_id, item.call_id, item.name, item.arguments)
        elif kind == "response.done":
            await self._on_response_done(cast(ResponseDoneEvent, event))
        elif kind == "error":
            await self._on_error(cast(RealtimeErrorEvent, event))
        elif kind == "conversation.item.input_audio_transcription.failed":
            logger.warning("input audio transcription failed: %s", getattr(event, "error", None))

    async def _on_response_created(self, event: ResponseCreatedEvent) -> None:
        rid = event.response.id or ""
        self._response_id = rid
        self._requested = None
        self._texts = []
        self._held_calls = []
        if self._cancel_requested:
            self._cancel_requested = False
            self._cancelled.add(rid)
            await self._send({"type": "response.cancel", "response_id": rid})

    def _on_audio(self, rid: str, item_id: str, content_index: int, delta: str) -> None:
        if rid in self._cancelled:
            return
        frame = AudioFrame.from_bytes(binascii.a2b_base64(delta), SAMPLE_RATE)
        key = (item_id, content_index, rid)
        if self._audio_item != key:
            self._audio_item, self._audio_ms = key, 0.0
        self._audio_ms += frame.duration * 1000
        self.channel.emit(AgentAudio(frame))

    def _on_text_delta(self, rid: str, delta: str) -> None:
        if rid not in self._cancelled:
            self.channel.emit(AgentTranscript(delta, final=False))

    def _on_text_done(self, rid: str, text: str) -> None:
        if rid in self._cancelled:
            return
        self._texts.append(text)
        self.channel.emit(AgentTranscript(" ".join(t for t in self._texts if t), final=True))

    def _on_tool_call(self, rid: str, call_id: str, name: str, arguments: str) -> None:
        if call_id in self._emitted_calls or rid in self._cancelled:
            return
        self._emitted_calls.add(call_id)
        self._calls.setdefault(rid, set()).add(call_id)
        self._call_response[call_id] = rid
        self._held_calls.append(ToolCall(call_id, name, arguments or "{}"))

    async def _on_response_done(self, event: ResponseDoneEvent) -> None:
        response = event.response
        rid = response.id or ""
        if self._response_id == rid:
            self._response_id = None
        if rid in self._cancelled:  # interrupt() already reported it
            self._cancelled.discard(rid)
            await self._after_response(rid)
            return
        if response.status == "failed":
            error = response.status_details.error if response.status_details else None
            message = (error.message if error else None) or "the response failed"
            self.channel.emit(Error(f"OpenAI Realtime: {message}", recoverable=True, code=error.code if error else None))
        usage = response.usage.model_dump(exclude_none=True) if response.usage else {}
        for call in self._held_calls:  # with the response complete: results can't overtake its response.done
            self.channel.emit(call)
        self._held_calls = []
        self.channel.emit(ResponseDone(interrupted=response.status == "cancelled", usage=usage))
        await self._after_response(rid)

    async def _after_response(self, rid: str) -> None:
        if rid in self._calls:
            self._finished.add(rid)
            await self._continue_after_tools(rid)
        await self._pump()

    async def _on_error(self, event: RealtimeErrorEvent) -> None:
        error = event.error
        code = error.code
        if code == "response_cancel_not_active":
            logger.debug("response.cancel found no active response")
            return
        requested = self._requested
        if requested is not None and error.event_id == requested[0]:
            self._requested = None
            if code == "conversation_already_has_active_response":
                self._queued.insert(0, requested[1])  # asked too early: ask again after the current one
                return
            self.channel.emit(Error(f"OpenAI Realtime: {error.message}", recoverable=True, code=code))
            self.channel.emit(ResponseDone())
            await self._pump()
            return
        fatal = code in _FATAL_CODES or error.type == "authentication_error"
        self.channel.emit(Error(f"OpenAI Realtime: {error.message}", recoverable=not fatal, code=code))


async def _session_updated(conn: AsyncRealtimeConnection) -> None:
    while True:
        event = await conn.recv()
        if event.type == "session.updated":
            return
        if event.type == "error":
            error = event.error
            fatal = error.code in _FATAL_CODES or error.type == "authentication_error"
            raise ModelError(f"OpenAI Realtime rejected the session: {error.message}", recoverable=not fatal,
                             code=error.code)


def _message(role: str, text: str) -> ConversationItemParam:
    kind = "output_text" if role == "assistant" else "input_text"
    return cast(ConversationItemParam, {"type": "message", "role": role, "content": [{"type": kind, "text": text}]})


def _chat_item(item: ChatMessage | FunctionCall | FunctionCallOutput) -> ConversationItemParam | None:
    """A history item as a Realtime conversation item (``None``: nothing to replay)."""
    if isinstance(item, ChatMessage):
        return _message(item.role, item.text) if item.text.strip() else None
    if isinstance(item, FunctionCall):
        return {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}
    return {"type": "function_call_output", "call_id": item.call_id, "output": item.output}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
