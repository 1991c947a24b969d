"""``OpenAIRealtime``: the OpenAI Realtime API (GA) as a core ``RealtimeModel``, over the official SDK's websocket."""

from __future__ import annotations

import binascii
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemParam,
    InputAudioBufferSpeechStartedEvent,
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
    SessionUpdatedEvent,
)
from openai.types.websocket_connection_options import WebSocketConnectionOptions
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agentsession.plugin import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AgentAudio,
    AgentTranscript,
    AudioChunk,
    AudioFrame,
    ChatContext,
    ChatItem,
    ChatMessage,
    EnergyVAD,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    LinkedRealtimeModel,
    ModelError,
    ModelOptions,
    ProviderLink,
    Reframer,
    Request,
    ResponseDone,
    ToolCall,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    abort,
    mask,
    redact,
)

from ._client import make_client, refused

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
_AUDIO_DELTA = "response.output_audio.delta"
_TEXT_DELTAS = frozenset({"response.output_audio_transcript.delta", "response.output_text.delta"})
_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_CHUNK_MS = 100  # the user's audio goes up in chunks of this
_CHUNKS_PER_APPEND = 1000 // _CHUNK_MS  # a second of audio per append at most
#: the server events ``_dispatch`` acts on but for the deltas (read from the JSON), each with the SDK's class for
#: it; the others (item added/done, content parts, committed, audio done, rate limits: about ten a turn) are not
#: parsed at all
_HANDLED: dict[str, type[BaseModel]] = {
    "input_audio_buffer.speech_started": InputAudioBufferSpeechStartedEvent,
    "input_audio_buffer.speech_stopped": InputAudioBufferSpeechStoppedEvent,
    "session.updated": SessionUpdatedEvent,
    "conversation.item.input_audio_transcription.delta": ConversationItemInputAudioTranscriptionDeltaEvent,
    "conversation.item.input_audio_transcription.completed": ConversationItemInputAudioTranscriptionCompletedEvent,
    "conversation.item.input_audio_transcription.failed": ConversationItemInputAudioTranscriptionFailedEvent,
    "response.created": ResponseCreatedEvent,
    "response.output_audio_transcript.done": ResponseAudioTranscriptDoneEvent,
    "response.output_text.done": ResponseTextDoneEvent,
    "response.function_call_arguments.done": ResponseFunctionCallArgumentsDoneEvent,
    "response.output_item.done": ResponseOutputItemDoneEvent,
    "response.done": ResponseDoneEvent,
    "error": RealtimeErrorEvent,
}
_UNSET: Any = object()
#: the ``response.metadata`` key that carries the session's id for a response it asked for
_RESPONSE_ID_KEY = "agentsession_response_id"
#: how many recent responses' audio items are remembered for truncation (the playout queue holds fewer)
_AUDIO_RECORDS = 32
#: a 100 ms chunk louder than this (dBFS) is the user's voice, for the liveness check
_VOICE_DB = -40.0


@dataclass
class OpenAIRealtimeConfig:
    """The session's settings, shaped as VideoSDK's ``OpenAIRealtimeConfig`` (so its users' code runs as is).

    ``turn_detection`` and ``input_audio_transcription`` take a dict or a pydantic model of the SDK's
    (``openai.types.beta.realtime.session.TurnDetection``/``InputAudioTranscription``, as VideoSDK's
    examples pass them, or the GA ``openai.types.realtime`` ones); ``None`` turns them off. Unset
    turn-detection fields get our defaults (:data:`DEFAULT_TURN_DETECTION`: the session decides
    barge-in, so ``interrupt_response`` is off unless you set it). ``modalities``: the GA API answers in
    one modality, so any list with ``"audio"`` gives audio (with its transcript), else text only.
    ``temperature`` is accepted for compatibility, but the GA Realtime API has no such setting: a value
    other than ``None`` is logged and not sent. ``noise_reduction``, ``speed`` and ``max_output_tokens``
    are ours, beyond VideoSDK's.
    """

    voice: str = "alloy"
    temperature: float | None = None
    turn_detection: Mapping[str, Any] | BaseModel | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    input_audio_transcription: Mapping[str, Any] | BaseModel | None = field(
        default_factory=lambda: dict(DEFAULT_TRANSCRIPTION)
    )
    tool_choice: str | None = "auto"
    modalities: list[str] = field(default_factory=lambda: ["text", "audio"])
    noise_reduction: str | None = None
    speed: float | None = None
    max_output_tokens: int | None = None


@dataclass
class _AudioItem:
    """One assistant audio content part of a response, and how much of its audio arrived."""

    item_id: str
    content_index: int
    ms: float = 0.0


@dataclass
class _Response:
    """The response being generated: our id for it and the server's, and what it holds back to its end."""

    rid: str
    server_id: str
    audio: list[_AudioItem] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # finished transcript parts
    calls: list[ToolCall] = field(default_factory=list)  # emitted at its response.done
    call_ids: set[str] = field(default_factory=set)


class OpenAIRealtime(LinkedRealtimeModel):
    """Speech to speech with OpenAI's Realtime API (``gpt-realtime``), through ``AsyncOpenAI().realtime.connect``.

    - Input: the session's mono 24 kHz frames, batched into 100 ms ``input_audio_buffer.append`` events
      by a sender task (``push_audio`` never blocks). What waits to be sent (while disconnected, say) is kept
      up to ``outage_buffer`` seconds, oldest dropped first and counted in :attr:`audio_lost`.
    - Output: the hot events (audio and transcript deltas, ~50 a second) are read from the JSON directly;
      the others it acts on become the SDK's typed events, each parsed as its own class.
    - Response ids: each ``response.create`` carries the session's id in ``response.metadata``
      (``agentsession_response_id``); the server echoes it in ``response.created``, and every event of
      that response is tagged with it. Responses the server VAD starts carry the server's ``response.id``.
      Requests are sent one at a time, in order (the API allows one active response).
    - Turns: server VAD (``turn_detection``, default :data:`DEFAULT_TURN_DETECTION`) with
      ``interrupt_response`` off: the session decides barge-in and calls :meth:`interrupt` with what the
      user heard of each response it stops: the one being generated gets ``response.cancel``, queued ones
      are dropped, and each one's own audio items get ``conversation.item.truncate`` at the heard position.
    - Tools: a response's function calls are emitted as ``ToolCall``s when it is done (just before its
      ``ResponseDone``); :meth:`send_tool_results` sends all outputs of a response, then one ``response.create``.
    - ``say(text)``: an in-band ``response.create`` whose instructions ask the model to speak ``text``
      verbatim (with tools off). The model voices it, so it is near-verbatim, not guaranteed.
    - ``update_agent``: ``session.update`` with the new instructions and tools; the conversation is kept.
    - The link (backlog, liveness, reconnects, bounded close, masking) is core's ``ProviderLink``. Liveness:
      a ``response.create`` or ``session.update`` unanswered within ``response_timeout``, a response whose
      own events stop for ``stall_timeout`` (other events do not count), the user's voice unanswered for
      ``stall_timeout`` (server VAD answers it with ``speech_started``), or a turn the server saw start and
      never ended: the link is stalled, closed and reconnected as for a drop. A server message over
      ``max_message_size`` bytes (websockets' ``max_size``) is a link fault too. A quiet room is not a stall.
    - Reconnect: a dropped or stalled socket is reopened with exponential backoff; the session config and
      the session's history (``ModelOptions.chat_ctx``: text messages, function calls and outputs) are
      replayed. A response in flight is reported (``Error`` recoverable + ``ResponseDone(interrupted)``);
      one asked for and not begun is asked again. ``Reconnecting(attempt, reason)`` is emitted when the
      link is lost and before each attempt, ``Reconnected(downtime, audio_lost)`` once it is back. The
      user's audio meanwhile is buffered (the last ``outage_buffer`` seconds, with what was sent since the
      server last answered, which may never have arrived; from the start of a turn the server saw begin)
      and sent first, in order, on the new connection; what did not fit is ``Reconnected.audio_lost``.
      After ``max_reconnect_attempts`` failures a non-recoverable ``Error`` closes the session.
    - ``close()`` returns within about ``close_timeout`` seconds whatever the socket does (a socket that
      does not finish the closing handshake in time is aborted).

    Configure it with keywords, with ``config=OpenAIRealtimeConfig(...)`` (VideoSDK's shape), or both: a
    keyword given wins over the config. The server is ``base_url``, else the SDK's ``OPENAI_BASE_URL``.
    """

    #: it answers in text when asked (``Pipeline(llm=OpenAIRealtime(), tts=...)``: VideoSDK's hybrid mode)
    supports_text_output = True

    provider = "openai"
    input_sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: str = "gpt-realtime",
        voice: str | None = None,
        *,
        config: OpenAIRealtimeConfig | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        turn_detection: Mapping[str, Any] | BaseModel | None = _UNSET,
        input_transcription: Mapping[str, Any] | BaseModel | None = _UNSET,
        noise_reduction: str | None = _UNSET,
        speed: float | None = _UNSET,
        max_output_tokens: int | None = _UNSET,
        connect_timeout: float = 10.0,
        max_reconnect_attempts: int = 5,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 8.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        response_timeout: float = 10.0,
        stall_timeout: float = 15.0,
        close_timeout: float = 2.0,
        outage_buffer: float = 10.0,
    ) -> None:
        super().__init__()
        if max_reconnect_attempts < 0:
            raise ValueError("max_reconnect_attempts must be >= 0")
        self.config = config if config is not None else OpenAIRealtimeConfig()
        cfg = self.config
        if cfg.temperature is not None:
            logger.warning("OpenAIRealtimeConfig.temperature is ignored: the GA Realtime API has no temperature")
        self.model = model
        self.voice = voice or cfg.voice
        self._api_key = api_key
        self.base_url = base_url
        self.websocket_base_url = websocket_base_url
        self.turn_detection = _turn_detection(cfg.turn_detection if turn_detection is _UNSET else turn_detection)
        self.input_transcription = _plain(
            cfg.input_audio_transcription if input_transcription is _UNSET else input_transcription
        )
        self.noise_reduction = cfg.noise_reduction if noise_reduction is _UNSET else noise_reduction
        self.speed = cfg.speed if speed is _UNSET else speed
        self.max_output_tokens = cfg.max_output_tokens if max_output_tokens is _UNSET else max_output_tokens
        self.tool_choice = cfg.tool_choice or "auto"
        self.output_modalities = ["audio"] if any(m.lower() == "audio" for m in cfg.modalities) else ["text"]
        self.max_reconnect_attempts = max_reconnect_attempts
        self.max_reconnect_delay = max_reconnect_delay
        self._link: ProviderLink[AsyncRealtimeConnection, RealtimeResponseCreateParamsParam] = ProviderLink(
            self, self.channel, name="OpenAI Realtime", connect_timeout=connect_timeout,
            response_timeout=response_timeout, stall_timeout=stall_timeout, close_timeout=close_timeout,
            outage_buffer=outage_buffer, max_reconnects=max_reconnect_attempts, reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay, max_message_size=max_message_size,
            # without server VAD, the server has nothing to say about the user's audio
            voice_owed=self.turn_detection is not None,
        )
        self._client: AsyncOpenAI | None = None
        self._instructions = ""
        self._tools: Sequence[FunctionTool] = ()
        self._chat_ctx = ChatContext()
        self._reframer = Reframer(SAMPLE_RATE, frame_ms=_CHUNK_MS)
        self._missed: list[ConversationItemParam] = []  # items not sent while disconnected
        self._reset_connection_state()

    def _reset_connection_state(self) -> None:
        self._current: _Response | None = None  # the response being generated
        # the audio items of recent responses (by our id), for truncation at what the user heard
        self._audio_items: OrderedDict[str, list[_AudioItem]] = OrderedDict()

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
        await self._link.start()

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"OpenAIRealtime takes {SAMPLE_RATE} Hz frames, got {frame.sample_rate} Hz")
        # batched here, so the sender wakes once per 100 ms chunk rather than for every frame
        for chunk in self._reframer.push(frame.to_mono()):
            self._link.push(chunk, EnergyVAD.level_db(chunk) > _VOICE_DB)

    async def send_text(self, text: str, *, response_id: str) -> None:
        await self._send_item(_message("user", text))
        self._link.ask(response_id, {})

    async def say(self, text: str, *, response_id: str) -> None:
        self._link.ask(response_id, {"instructions": _SAY_INSTRUCTIONS.format(text=text), "tool_choice": "none"})

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        params: RealtimeResponseCreateParamsParam = {}
        if instructions:
            params["instructions"] = f"{self._instructions}\n\n{instructions}" if self._instructions else instructions
        self._link.ask(response_id, params)

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        if not heard:
            return
        # all bookkeeping before the first await: from here on no event of these responses is emitted
        link = self._link
        link.drop(heard)  # the one asked for is cancelled as soon as the server creates it
        current = self._current
        cancel = current is not None and current.rid in heard and current.rid not in link.stopped
        if current is not None and cancel:
            link.stopped.add(current.rid)
        cuts = [(items, position, current is not None and current.rid == rid)
                for rid, position in heard.items() if (items := self._audio_items.pop(rid, None))]
        if current is not None and cancel:
            await self._send({"type": "response.cancel", "response_id": current.server_id})
        for items, position, generating in cuts:
            await self._truncate(items, position, generating)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        for result in results:
            await self._send_item({"type": "function_call_output", "call_id": result.call_id, "output": result.output})
        self._link.ask(response_id, {})

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        """The outputs go into the conversation; no ``response.create`` (a handoff: the new agent speaks first)."""
        for result in results:
            await self._send_item({"type": "function_call_output", "call_id": result.call_id, "output": result.output})

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._instructions = instructions
        self._tools = list(tools)
        # while disconnected, the reconnect sends the whole new config
        event_id = f"as_{uuid.uuid4().hex[:16]}"
        liveness = self._link.liveness
        liveness.expect(event_id, "session.update", self._link.now())
        sent = await self._send({"type": "session.update", "event_id": event_id,
                                 "session": cast(RealtimeSessionCreateRequestParam, {
                                     "type": "realtime",
                                     "instructions": instructions,
                                     "tools": self._tool_schemas(),
                                     "tool_choice": self.tool_choice,
                                 })})
        if not sent:
            liveness.answered(event_id)

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # ------------------------------------------------------------------ the link's protocol

    def _tool_schemas(self) -> list[dict[str, Any]]:
        return [{"type": "function", **tool.schema()} for tool in self._tools]

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
            "output_modalities": ["text"] if self.text_output else list(self.output_modalities),
            "audio": {"input": audio_in, "output": audio_out},
            "tools": self._tool_schemas(),
            "tool_choice": self.tool_choice,
        }
        if self.max_output_tokens is not None:
            config["max_output_tokens"] = self.max_output_tokens
        return cast(RealtimeSessionCreateRequestParam, config)

    async def link_open(self, first: bool) -> AsyncRealtimeConnection:
        """Connect, configure the session, replay the history; the connection is live when this returns."""
        assert self._client is not None
        # the closing handshake is bounded by close_timeout (websockets' default waits 10 s for a stalled peer);
        # an inbound message over max_message_size fails the socket (1009), which the link reconnects
        options = cast(WebSocketConnectionOptions, {"close_timeout": self.close_timeout,
                                                    "max_size": self.max_message_size, "compression": None})
        manager = self._client.realtime.connect(model=self.model, websocket_connection_options=options)
        try:
            conn = await manager.enter()
        except InvalidStatus as exc:
            status = exc.response.status_code
            error = refused(status, "OpenAIRealtime")  # says what to do: the key's variable, model=, ...
            # the first connection's refusal is the user's to fix; a reconnect's may pass (but for a key refused)
            raise ModelError(str(error), recoverable=not first and status != 401, code=error.code) from None
        try:
            await self._put(conn, {"type": "session.update", "session": self._session_config()})
            await _session_updated(conn, self._link)
            replayed = [_chat_item(item) for item in self._chat_ctx.items]
            items = [item for item in replayed if item is not None]
            for item in items:
                await self._put(conn, {"type": "conversation.item.create", "item": item})
            while self._missed:  # sent while we were away and not yet in the replayed history
                item = self._missed[0]
                if item in items:
                    items.remove(item)
                else:
                    await self._put(conn, {"type": "conversation.item.create", "item": item})
                self._missed.pop(0)
        except BaseException:
            abort(conn._connection)  # given up on: no closing handshake to wait for
            await self._link.wait_closed(conn)
            raise
        logger.info("connected to the OpenAI Realtime API (%s, %d history items replayed)", self.model, len(replayed))
        return conn

    def link_socket(self, conn: AsyncRealtimeConnection) -> ClientConnection:
        return conn._connection  # the SDK's websocket

    async def link_close(self, conn: AsyncRealtimeConnection) -> None:
        await conn.close()

    async def link_read(self, conn: AsyncRealtimeConnection) -> str:
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
        return "the server closed the connection"

    async def link_send_audio(self, conn: AsyncRealtimeConnection, chunks: list[AudioChunk]) -> None:
        # chunks that waited together (a backlog after an outage, a busy loop) go in appends of up to a second,
        # one websocket message each; the event is built by hand: the SDK's typed transform of it costs 8x the
        # JSON (135 us per append, 10 appends a second per session), and base64 needs no JSON escaping. The shape
        # is the SDK's own and the tests' fake server validates it against the SDK's client-event types.
        for start in range(0, len(chunks), _CHUNKS_PER_APPEND):
            pcm = b"".join(chunk.frame.to_bytes() for chunk in chunks[start : start + _CHUNKS_PER_APPEND])
            message = _APPEND_HEAD + binascii.b2a_base64(pcm, newline=False).decode("ascii") + '"}'
            self._link.tap_sent(message)
            # on the SDK's websocket itself: send_raw's queue serves the SDK's reconnect policy, which the link
            # replaces, and costs as much again per append
            await conn._connection.send(message)

    async def link_send_request(self, conn: AsyncRealtimeConnection,
                                request: Request[RealtimeResponseCreateParamsParam]) -> None:
        request.key = f"as_{uuid.uuid4().hex[:16]}"
        params: RealtimeResponseCreateParamsParam = {**request.payload, "metadata": {_RESPONSE_ID_KEY: request.rid}}
        self._link.liveness.expect(request.key, "response.create", self._link.now())
        await self._put(conn, {"type": "response.create", "event_id": request.key, "response": params})

    def link_lost(self, reason: str, dropped: bool) -> None:
        current = self._current
        if current is not None and current.rid not in self._link.stopped:  # the model cut it: say so
            self._link.error("the OpenAI Realtime connection dropped during a response; it was cut short",
                             code="connection_lost")
            self.channel.emit(ResponseDone(interrupted=True, response_id=current.rid))
        self._reset_connection_state()  # the new server session knows none of these items

    async def _on_message(self, conn: AsyncRealtimeConnection, raw: bytes) -> None:
        """One server message: the deltas straight from the JSON (the SDK's typed parse of the whole
        server-event union costs ~40 us, 50 times a second), the others acted on as the SDK's typed event."""
        kind: object = "?"
        link = self._link
        link.tap_received(raw)
        try:
            data = json.loads(raw)
            kind = data.get("type") if isinstance(data, dict) else None
            # it answers: what was sent before arrived (a turn's start keeps the turn's audio, below)
            link.heard(confirm=not link.liveness.server_speech and kind != "input_audio_buffer.speech_started")
            current = self._current
            if current is not None and data.get("response_id") == current.server_id:
                link.progress()  # the response awaited moves on (unrelated events do not count)
            if kind == _AUDIO_DELTA:
                self._on_audio(data["response_id"], data["item_id"], data["content_index"], data["delta"])
            elif kind in _TEXT_DELTAS:
                self._on_text_delta(data["response_id"], data["delta"])
            elif kind in _HANDLED:
                await self._dispatch(_parse_event(kind, data))
        except Exception:
            logger.exception("handling the server event %r failed", kind)

    async def _on_event(self, event: RealtimeServerEvent) -> None:
        try:
            await self._dispatch(event)
        except Exception:
            logger.exception("handling the server event %r failed", getattr(event, "type", "?"))

    async def _send(self, event: RealtimeClientEventParam) -> bool:
        conn = self._link.conn
        return conn is not None and await self._link.send(lambda: self._put(conn, event))

    async def _put(self, conn: AsyncRealtimeConnection, event: RealtimeClientEventParam) -> None:
        """Send ``event`` on ``conn`` (every client event but the audio goes through here, for the link's taps)."""
        self._link.tap_sent(lambda: json.dumps(event))
        await conn.send(event)

    async def _send_item(self, item: ConversationItemParam) -> None:
        if not await self._send({"type": "conversation.item.create", "item": item}):
            self._missed.append(item)

    # ------------------------------------------------------------------ responses

    async def _truncate(self, items: list[_AudioItem], position: float | None, generating: bool) -> None:
        """Cut a response's audio items at ``position`` seconds of its audio (``None``: nothing heard).

        Items the user heard whole are left alone; the one the position falls in is cut there, later ones
        are cut to nothing. The last item of a response still being generated is cut even when all of its
        audio that arrived was heard: the server may have produced more that was dropped here.
        """
        heard_ms = 0.0 if position is None else max(0.0, position * 1000)
        offset = 0.0
        for i, item in enumerate(items):
            end = offset + item.ms
            last_live = generating and i == len(items) - 1
            if heard_ms < end - 1e-6 or last_live:
                audio_end_ms = min(int(max(0.0, heard_ms - offset) + 1e-6), int(item.ms + 1e-6))
                await self._send({"type": "conversation.item.truncate", "item_id": item.item_id,
                                  "content_index": item.content_index, "audio_end_ms": audio_end_ms})
            offset = end

    def _remember_audio(self, response: _Response) -> None:
        self._audio_items[response.rid] = response.audio
        while len(self._audio_items) > _AUDIO_RECORDS:
            self._audio_items.popitem(last=False)

    def _live(self, server_id: str) -> _Response | None:
        """The response ``server_id`` if it is the one being generated and was not stopped."""
        current = self._current
        if current is None or current.server_id != server_id or current.rid in self._link.stopped:
            return None
        return current

    # ------------------------------------------------------------------ server events

    async def _dispatch(self, event: RealtimeServerEvent) -> None:
        kind = event.type
        if kind == "input_audio_buffer.speech_started":
            started = cast(InputAudioBufferSpeechStartedEvent, event)
            self._link.liveness.server_speech = True
            # the turn's audio is held from its start (with VAD's prefix padding): a new connection hears it whole
            self._link.backlog.confirm(turn_start=self._link.position(started.audio_start_ms))
            self.channel.emit(UserSpeechStarted())
        elif kind == "input_audio_buffer.speech_stopped":
            stopped = cast(InputAudioBufferSpeechStoppedEvent, event)
            self._link.liveness.server_speech = False
            self._link.backlog.confirm()
            self.channel.emit(UserSpeechStopped(audio_end=self._link.position(stopped.audio_end_ms)))
        elif kind == "session.updated":
            self._link.liveness.answered_first("session.update")
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
            transcript = cast(ResponseAudioTranscriptDoneEvent, event)
            self._on_text_done(transcript.response_id, transcript.transcript)
        elif kind == "response.output_text.done":
            text = cast(ResponseTextDoneEvent, event)
            self._on_text_done(text.response_id, text.text)
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
        response = event.response
        server_id = response.id or ""
        ours = (response.metadata or {}).get(_RESPONSE_ID_KEY)
        self._link.begin(ours)
        current = _Response(ours or server_id, server_id)  # the server VAD's own responses keep its id
        self._current = current
        self._remember_audio(current)
        if current.rid in self._link.stopped:  # interrupt() came before the server created it
            await self._send({"type": "response.cancel", "response_id": server_id})

    def _on_audio(self, server_id: str, item_id: str, content_index: int, delta: str) -> None:
        current = self._current
        if current is None or current.server_id != server_id:
            return
        pcm = binascii.a2b_base64(delta)
        items = current.audio
        if not items or items[-1].item_id != item_id or items[-1].content_index != content_index:
            items.append(_AudioItem(item_id, content_index))
        items[-1].ms += len(pcm) * 500 / SAMPLE_RATE  # pcm16 mono: 2 bytes a sample, counted even if dropped
        if current.rid not in self._link.stopped:
            self.channel.emit(AgentAudio(AudioFrame.from_bytes(pcm, SAMPLE_RATE), response_id=current.rid))

    def _on_text_delta(self, server_id: str, delta: str) -> None:
        current = self._live(server_id)
        if current is not None:
            self.channel.emit(AgentTranscript(delta, final=False, response_id=current.rid))

    def _on_text_done(self, server_id: str, text: str) -> None:
        current = self._live(server_id)
        if current is None:
            return
        current.texts.append(text)
        self.channel.emit(AgentTranscript(" ".join(t for t in current.texts if t), final=True,
                                          response_id=current.rid))

    def _on_tool_call(self, server_id: str, call_id: str, name: str, arguments: str) -> None:
        current = self._live(server_id)
        if current is None or call_id in current.call_ids:
            return
        current.call_ids.add(call_id)
        current.calls.append(ToolCall(call_id, name, arguments or "{}", response_id=current.rid))

    async def _on_response_done(self, event: ResponseDoneEvent) -> None:
        response = event.response
        current = self._current
        if current is None or current.server_id != (response.id or ""):
            logger.debug("response.done for an unknown response %s", response.id)
            return
        self._current = None
        self._link.end()
        if current.rid in self._link.stopped:  # interrupt() stopped it: nothing more of it is reported
            self._link.stopped.discard(current.rid)
            return
        if response.status == "failed":
            error = response.status_details.error if response.status_details else None
            message = (error.message if error else None) or "the response failed"
            self._link.error(f"OpenAI Realtime: {message}", code=error.code if error else None)
        usage = response.usage.model_dump(exclude_none=True) if response.usage else {}
        for call in current.calls:  # with the response complete: results can't overtake its response.done
            self.channel.emit(call)
        self.channel.emit(ResponseDone(interrupted=response.status == "cancelled", usage=usage,
                                       response_id=current.rid))

    async def _on_error(self, event: RealtimeErrorEvent) -> None:
        error = event.error
        code = error.code
        if code == "response_cancel_not_active":
            logger.debug("response.cancel found no active response")
            return
        link = self._link
        if error.event_id:
            link.liveness.answered(error.event_id)
        requested = link.requested
        if requested is not None and error.event_id == requested.key:
            retry = code == "conversation_already_has_active_response"  # asked too early: again after the current
            link.refused(requested, retry=retry and requested.rid not in link.stopped)
            if requested.rid in link.stopped:  # stopped before it began: nothing owed
                link.stopped.discard(requested.rid)
            elif not retry:
                link.error(f"OpenAI Realtime: {error.message}", code=code)
                self.channel.emit(ResponseDone(response_id=requested.rid))
            if not retry:
                link.pump()
            return
        fatal = code in _FATAL_CODES or error.type == "authentication_error"
        link.error(f"OpenAI Realtime: {error.message}", recoverable=not fatal, code=code)


async def _session_updated(conn: AsyncRealtimeConnection, link: ProviderLink[Any, Any]) -> None:
    while True:
        raw = await conn.recv_bytes()
        link.tap_received(raw)
        event = conn.parse_event(raw)
        if event.type == "session.updated":
            return
        if event.type == "error":
            error = event.error
            fatal = error.code in _FATAL_CODES or error.type == "authentication_error"
            raise ModelError(redact(f"OpenAI Realtime rejected the session: {error.message}"),
                             recoverable=not fatal, code=error.code)


def _parse_event(kind: str, data: dict[str, Any]) -> RealtimeServerEvent:
    """``data`` as the SDK's typed event: what its ``parse_event`` gives, 3-10x faster, without validating against
    the whole union of its 46 server events first. It validates against the one class for ``kind``, and builds a
    malformed event leniently, as the SDK falls back to doing."""
    cls = _HANDLED[kind]
    try:
        return cast(RealtimeServerEvent, cls.model_validate(data))
    except ValidationError:
        return cast(RealtimeServerEvent, cls.construct(**data))


def _message(role: str, text: str) -> ConversationItemParam:
    kind = "output_text" if role == "assistant" else "input_text"
    return cast(ConversationItemParam, {"type": "message", "role": role, "content": [{"type": kind, "text": text}]})


def _chat_item(item: ChatItem) -> ConversationItemParam | None:
    """A history item as a Realtime conversation item (``None``: nothing to replay, as handoff records)."""
    if isinstance(item, ChatMessage):
        role = "system" if item.role == "developer" else item.role
        return _message(role, item.text) if item.text.strip() else None
    if isinstance(item, FunctionCall):
        return {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}
    if isinstance(item, FunctionCallOutput):
        return {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
    return None


def _plain(value: Mapping[str, Any] | BaseModel | None) -> dict[str, Any] | None:
    """A setting given as a dict or as one of the SDK's pydantic models, as a dict (``None``/empty: off)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True, exclude_unset=True) or None
    return dict(value) or None


def _turn_detection(value: Mapping[str, Any] | BaseModel | None) -> dict[str, Any] | None:
    """Turn detection as sent: what was given, over our defaults (server VAD; barge-in is the session's)."""
    given = _plain(value)
    return None if given is None else {**DEFAULT_TURN_DETECTION, **given}
