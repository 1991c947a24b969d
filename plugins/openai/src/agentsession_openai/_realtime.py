"""``OpenAIRealtime``: the OpenAI Realtime API (GA) as a core ``RealtimeModel``, over the official SDK's websocket."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from openai import AsyncOpenAI, OpenAIError
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
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
)
from openai.types.websocket_connection_options import WebSocketConnectionOptions
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    ChatItem,
    ChatMessage,
    EnergyVAD,
    Error,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    ModelError,
    ModelOptions,
    RealtimeModel,
    Reconnected,
    Reconnecting,
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
#: the ``response.metadata`` key that carries the session's id for a response it asked for
_RESPONSE_ID_KEY = "agentsession_response_id"
#: how many recent responses' audio items are remembered for truncation (the playout queue holds fewer)
_AUDIO_RECORDS = 32
#: a 100 ms chunk louder than this (dBFS) is the user's voice, for the liveness check
_VOICE_DB = -40.0
#: seconds of voice sent with no server event at all before the link is suspected (a cough may go unanswered)
_MIN_VOICE = 0.5
#: the least user audio kept while it waits to be sent, whatever ``outage_buffer`` says (a healthy link's backlog)
_MIN_BACKLOG = 0.5
#: audio kept from before a turn's start (its onset, VAD's prefix padding), for a new connection to hear it whole
_TURN_PADDING = 0.3


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
class _Request:
    """A response the session asked for, by its id: queued, then sent (``event_id`` set)."""

    rid: str
    params: RealtimeResponseCreateParamsParam
    event_id: str = ""


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


class OpenAIRealtime(RealtimeModel):
    """Speech to speech with OpenAI's Realtime API (``gpt-realtime``), through ``AsyncOpenAI().realtime.connect``.

    - Input: the session's mono 24 kHz frames, batched into 100 ms ``input_audio_buffer.append`` events
      by a sender task (``push_audio`` never blocks). What waits to be sent (while disconnected, say) is kept
      up to ``outage_buffer`` seconds, oldest dropped first and counted in :attr:`audio_lost`.
    - Output: the hot events (audio and transcript deltas, ~50 a second) are read from the JSON directly;
      every other event goes through the SDK's typed ``parse_event``.
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
    - Liveness: besides the socket's own state, the link counts as stalled (and is closed and reconnected
      as for a drop) when a ``response.create`` or ``session.update`` gets no answer within
      ``response_timeout`` seconds, a send blocks that long, or no server event at all arrives for
      ``stall_timeout`` seconds while one is owed: during a response, after at least 0.5 s of the user's
      voice (server VAD answers voice with ``speech_started``), or after the user fell silent in a turn the
      server saw start (it owes ``speech_stopped``). A quiet room, where the server has nothing to say, is
      not a stall. Checked every ``min(0.5, timeout / 10)`` seconds.
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
        response_timeout: float = 10.0,
        stall_timeout: float = 15.0,
        close_timeout: float = 2.0,
        outage_buffer: float = 10.0,
    ) -> None:
        super().__init__()
        if max_reconnect_attempts < 0:
            raise ValueError("max_reconnect_attempts must be >= 0")
        if min(response_timeout, stall_timeout, close_timeout) <= 0 or outage_buffer < 0:
            raise ValueError("response_timeout, stall_timeout and close_timeout must be > 0, outage_buffer >= 0")
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
        self.connect_timeout = connect_timeout
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.response_timeout = response_timeout
        self.stall_timeout = stall_timeout
        self.close_timeout = close_timeout
        self.outage_buffer = outage_buffer
        self._client: AsyncOpenAI | None = None
        self._conn: AsyncRealtimeConnection | None = None
        self._instructions = ""
        self._tools: Sequence[FunctionTool] = ()
        self._chat_ctx = ChatContext()
        self._reframer = Reframer(SAMPLE_RATE, frame_ms=100)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._queued: list[_Request] = []  # responses asked for and not sent yet, in order
        self._missed: list[ConversationItemParam] = []  # items not sent while disconnected
        self.reconnects = 0
        #: seconds of the user's audio that never reached a server (the outage buffer overflowed)
        self.audio_lost = 0.0
        # the user's audio: 100 ms chunks with their position (seconds pushed before them) waiting to be sent,
        # and those sent since the server last answered (replayed if the link turns out to be gone)
        self._pushed = 0.0
        self._backlog: deque[tuple[float, AudioFrame]] = deque()
        self._backlog_s = 0.0
        self._unconfirmed: deque[tuple[float, AudioFrame, bool]] = deque()  # (position, chunk, voiced)
        self._unconfirmed_s = 0.0
        self._unconfirmed_dropped = 0.0  # seconds sent since the server last answered that were not kept
        self._audio_ready = asyncio.Event()
        self._origin: float | None = None  # position of the first chunk sent on this connection
        self._dead: AsyncRealtimeConnection | None = None  # a connection a send failed on
        self._broken: str | None = None  # why a send judged the link stalled
        self._heard_at = 0.0  # loop time of the server's last event
        self._reset_connection_state()

    def _reset_connection_state(self) -> None:
        self._current: _Response | None = None  # the response being generated
        self._requested: _Request | None = None  # sent, not created yet
        self._stopped: set[str] = set()  # responses interrupt() named that the server has not ended yet
        # the audio items of recent responses (by our id), for truncation at what the user heard
        self._audio_items: OrderedDict[str, list[_AudioItem]] = OrderedDict()
        # liveness: requests awaiting their answer (event id -> (type, loop time sent)), the server's view of
        # the user's turn, and the user's voice and silence sent since the server last said anything
        self._awaiting: dict[str, tuple[str, float]] = {}
        self._server_speech = False
        self._voice_since: float | None = None
        self._voiced = 0.0
        self._silent_since: float | None = None

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
        chunks = self._reframer.push(frame.to_mono())
        if not chunks:
            return
        for chunk in chunks:
            self._backlog.append((self._pushed, chunk))
            self._backlog_s += chunk.duration
            self._pushed += chunk.duration
        self._trim_backlog()
        self._audio_ready.set()

    async def send_text(self, text: str, *, response_id: str) -> None:
        await self._send_item(_message("user", text))
        await self._request_response(response_id, {})

    async def say(self, text: str, *, response_id: str) -> None:
        await self._request_response(
            response_id, {"instructions": _SAY_INSTRUCTIONS.format(text=text), "tool_choice": "none"}
        )

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        params: RealtimeResponseCreateParamsParam = {}
        if instructions:
            params["instructions"] = f"{self._instructions}\n\n{instructions}" if self._instructions else instructions
        await self._request_response(response_id, params)

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        if not heard:
            return
        # all bookkeeping before the first await: from here on no event of these responses is emitted
        self._queued = [request for request in self._queued if request.rid not in heard]
        current, requested = self._current, self._requested
        cancel = current is not None and current.rid in heard and current.rid not in self._stopped
        if current is not None and cancel:
            self._stopped.add(current.rid)
        if requested is not None and requested.rid in heard:
            self._stopped.add(requested.rid)  # cancelled as soon as the server creates it
        cuts = [(items, position, current is not None and current.rid == rid)
                for rid, position in heard.items() if (items := self._audio_items.pop(rid, None))]
        if current is not None and cancel:
            await self._send({"type": "response.cancel", "response_id": current.server_id})
        for items, position, generating in cuts:
            await self._truncate(items, position, generating)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        for result in results:
            await self._send_item({"type": "function_call_output", "call_id": result.call_id, "output": result.output})
        await self._request_response(response_id, {})

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._instructions = instructions
        self._tools = list(tools)
        # while disconnected, the reconnect sends the whole new config
        event_id = f"as_{uuid.uuid4().hex[:16]}"
        self._awaiting[event_id] = ("session.update", self._now())
        sent = await self._send({"type": "session.update", "event_id": event_id,
                                 "session": cast(RealtimeSessionCreateRequestParam, {
                                     "type": "realtime",
                                     "instructions": instructions,
                                     "tools": self._tool_schemas(),
                                     "tool_choice": self.tool_choice,
                                 })})
        if not sent:
            self._awaiting.pop(event_id, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # every await in them is bounded
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close_conn(conn)
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await client.close()
            except (Exception, TimeoutError):
                logger.debug("closing the OpenAI client failed", exc_info=True)
        self.channel.end()

    # ------------------------------------------------------------------ connection

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
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_in, "output": audio_out},
            "tools": self._tool_schemas(),
            "tool_choice": self.tool_choice,
        }
        if self.max_output_tokens is not None:
            config["max_output_tokens"] = self.max_output_tokens
        return cast(RealtimeSessionCreateRequestParam, config)

    async def _open(self) -> AsyncRealtimeConnection:
        """Connect, configure the session, replay the history; the connection is live when this returns."""
        assert self._client is not None
        # the closing handshake is bounded by close_timeout (websockets' default waits 10 s for a stalled peer)
        options = cast(WebSocketConnectionOptions, {"close_timeout": self.close_timeout})
        manager = self._client.realtime.connect(model=self.model, websocket_connection_options=options)
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn = await manager.enter()
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ModelError(
                f"the OpenAI Realtime API refused the connection (HTTP {status})",
                recoverable=False,
                code="invalid_api_key" if status == 401 else f"http_{status}",
            ) from None
        try:
            async with asyncio.timeout(self.connect_timeout):  # a server that stalls now fails the attempt
                await conn.send({"type": "session.update", "session": self._session_config()})
                await _session_updated(conn)
                replayed = [_chat_item(item) for item in self._chat_ctx.items]
                items = [item for item in replayed if item is not None]
                for item in items:
                    await conn.send({"type": "conversation.item.create", "item": item})
                while self._missed:  # sent while we were away and not yet in the replayed history
                    item = self._missed[0]
                    if item in items:
                        items.remove(item)
                    else:
                        await conn.send({"type": "conversation.item.create", "item": item})
                    self._missed.pop(0)
        except BaseException:
            _abort(conn)  # given up on: no closing handshake to wait for
            await self._wait_closed(conn)
            raise
        self._conn = conn
        self._origin = None
        self._heard_at = self._now()
        self._broken = None
        self._audio_ready.set()  # what was kept meanwhile goes first
        logger.info("connected to the OpenAI Realtime API (%s, %d history items replayed)", self.model, len(replayed))
        return conn

    async def _supervise(self, conn: AsyncRealtimeConnection) -> None:
        """Read events and watch the link; on a drop or a stall, report what was lost and reconnect."""
        while True:
            reason = await self._serve(conn)
            if self._closed:
                return
            logger.warning("OpenAI Realtime connection lost (%s); reconnecting", reason)
            lost_before, down_at = self.audio_lost, self._now()
            self._on_drop()
            _abort(conn)  # gone already, or stalled: a closing handshake would wait for nothing
            await self._wait_closed(conn)
            reconnected = await self._reconnect(reason, down_at, lost_before)
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

    async def _serve(self, conn: AsyncRealtimeConnection) -> str:
        """Read until the socket closes or the watchdog finds the link stalled; returns why it ended."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(conn), name="openai-realtime:read")
        watchdog = loop.create_task(self._watch(), name="openai-realtime:watchdog")
        try:
            done, _ = await asyncio.wait({reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, watchdog):
                task.cancel()
            await asyncio.gather(reader, watchdog, return_exceptions=True)
        if reader in done:
            return reader.result()
        return f"stalled: {watchdog.result()}"

    async def _watch(self) -> str:
        """Check the link's liveness every tick; returns why it is judged stalled."""
        tick = min(0.5, self.response_timeout / 10, self.stall_timeout / 10)
        while True:
            await asyncio.sleep(tick)
            reason = self._broken or self._stall(self._now())
            if reason is not None:
                return reason

    def _stall(self, now: float) -> str | None:
        """Why the link is stalled at ``now``, or ``None`` while it is alive (or has nothing to say)."""
        for kind, sent_at in self._awaiting.values():
            if now - sent_at >= self.response_timeout:
                return f"no answer to {kind} in {self.response_timeout:g} s"
        quiet = now - self._heard_at
        if quiet < self.stall_timeout:
            return None
        if self._current is not None:
            return f"no server event for {quiet:.1f} s during a response"
        if self.turn_detection is None:
            return None  # without server VAD, the server has nothing to say about the user's audio
        voice = self._voice_since
        if voice is not None and self._voiced >= _MIN_VOICE and now - voice >= self.stall_timeout:
            return f"no server event for {now - voice:.1f} s while the user spoke"
        silent = self._silent_since
        if self._server_speech and silent is not None and now - max(silent, self._heard_at) >= self.stall_timeout:
            return f"no end of the user's turn {now - max(silent, self._heard_at):.1f} s after they stopped"
        return None

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
        self._heard_at = self._now()
        self._voice_since, self._voiced = None, 0.0
        try:
            data = json.loads(raw)
            kind = data.get("type") if isinstance(data, dict) else None
            if not self._server_speech and kind != "input_audio_buffer.speech_started":
                self._confirm()  # it answers: what was sent before arrived
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
        self._replay_unconfirmed()
        current, requested = self._current, self._requested
        if current is not None and current.rid not in self._stopped:  # the model cut it: say so
            self.channel.emit(
                Error("the OpenAI Realtime connection dropped during a response; it was cut short",
                      recoverable=True, code="connection_lost")
            )
            self.channel.emit(ResponseDone(interrupted=True, response_id=current.rid))
        if requested is not None and requested.rid not in self._stopped:
            requested.event_id = ""
            self._queued.insert(0, requested)  # never begun: asked again on the next connection
        self._reset_connection_state()  # the new server session knows none of these items

    async def _reconnect(self, reason: str, down_at: float, lost_before: float) -> AsyncRealtimeConnection | None:
        for attempt in range(1, self.max_reconnect_attempts + 1):
            self.channel.emit(Reconnecting(attempt, reason))
            await asyncio.sleep(min(self.reconnect_delay * 2 ** (attempt - 1), self.max_reconnect_delay))
            try:
                conn = await self._open()
            except ModelError as exc:
                if exc.code == "invalid_api_key":
                    logger.error("reconnect refused: %s", exc)
                    return None
                logger.warning("reconnect attempt %d/%d failed: %s", attempt, self.max_reconnect_attempts, exc)
                reason = f"attempt {attempt} failed: {exc}"
            except (*_NETWORK_ERRORS, TimeoutError) as exc:
                logger.warning("reconnect attempt %d/%d failed: %s", attempt, self.max_reconnect_attempts,
                               _describe(exc))
                reason = f"attempt {attempt} failed: {_describe(exc)}"
            else:
                self.channel.emit(Reconnected(self._now() - down_at, self.audio_lost - lost_before))
                return conn
        return None

    async def _close_conn(self, conn: AsyncRealtimeConnection) -> None:
        """The closing handshake, bounded by ``close_timeout``; the socket is aborted if it takes longer."""
        try:
            async with asyncio.timeout(self.close_timeout):
                await conn.close()
        except BaseException as exc:
            _abort(conn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            logger.debug("closing the realtime socket: %s", _describe(exc))
        await self._wait_closed(conn)

    async def _wait_closed(self, conn: AsyncRealtimeConnection) -> None:
        """Wait (briefly) for a closed or aborted socket to be torn down, websockets' keepalive task with it."""
        ws = getattr(conn, "_connection", None)  # the SDK's websocket
        if not isinstance(ws, ClientConnection):
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await ws.wait_closed()
                keepalive = ws.keepalive_task
                if keepalive is not None and not keepalive.done():
                    await asyncio.wait({keepalive})
        except TimeoutError:
            logger.debug("the realtime socket was not torn down in %g s", self.close_timeout)

    async def _send(self, event: RealtimeClientEventParam) -> bool:
        conn = self._conn
        if conn is None or conn is self._dead:
            return False
        try:
            async with asyncio.timeout(self.response_timeout):
                await conn.send(event)
        except TimeoutError:
            self._broken = f"a send blocked for {self.response_timeout:g} s"
            return False
        except _NETWORK_ERRORS as exc:
            logger.debug("send failed (%s); the reader will reconnect", _describe(exc))
            return False
        return True

    async def _send_item(self, item: ConversationItemParam) -> None:
        if not await self._send({"type": "conversation.item.create", "item": item}):
            self._missed.append(item)

    async def _send_audio(self) -> None:
        """Send the backlog, in order, while a live connection is there (it is kept, bounded, meanwhile)."""
        while True:
            await self._audio_ready.wait()
            self._audio_ready.clear()
            while self._backlog:
                conn = self._conn
                if conn is None or conn is self._dead:
                    break  # kept until the next connection
                position, chunk = self._backlog.popleft()
                self._backlog_s -= chunk.duration
                # held as sent and unconfirmed from now on: replayed if the link turns out to be gone
                voiced = self._note_sent(chunk)
                self._unconfirmed.append((position, chunk, voiced))
                self._unconfirmed_s += chunk.duration
                while self._unconfirmed_s > self.outage_buffer + 1e-9 and len(self._unconfirmed) > 1:
                    dropped = self._unconfirmed.popleft()[1].duration
                    self._unconfirmed_s -= dropped
                    self._unconfirmed_dropped += dropped  # lost if the link turns out to be gone
                if self._origin is None:
                    self._origin = position
                try:
                    # the event is built by hand: the SDK's typed transform of it costs 8x the JSON (135 us
                    # per append, 10 appends a second per session); the shape is the SDK's own and the
                    # tests' fake server validates it against the SDK's client-event types
                    audio = base64.b64encode(chunk.to_bytes()).decode("ascii")
                    async with asyncio.timeout(self.response_timeout):  # not wait_for: it can swallow a cancel
                        await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
                except TimeoutError:
                    self._broken = f"a send blocked for {self.response_timeout:g} s"
                    self._dead = conn
                except _NETWORK_ERRORS:
                    self._dead = conn  # the reader will see it closed

    def _note_sent(self, chunk: AudioFrame) -> bool:
        """The user's voice and silence as sent, for the liveness check; whether ``chunk`` is voice."""
        now = self._now()
        voiced = EnergyVAD.level_db(chunk) > _VOICE_DB
        if voiced:
            self._silent_since = None
            if not self._server_speech:  # the server owes a speech_started
                if self._voice_since is None:
                    self._voice_since = now
                self._voiced += chunk.duration
        elif self._silent_since is None:
            self._silent_since = now
        return voiced

    def _trim_backlog(self) -> None:
        """Keep the last ``outage_buffer`` seconds waiting to be sent; what goes is lost."""
        limit = max(self.outage_buffer, _MIN_BACKLOG) + 1e-9
        while self._backlog_s > limit:
            _, chunk = self._backlog.popleft()
            self._backlog_s -= chunk.duration
            self.audio_lost += chunk.duration

    def _confirm(self, keep_from: float | None = None) -> None:
        """The server answered: forget the audio sent before (before ``keep_from``, a position, if given), but for
        the voice at its end, which the server may not have had time to hear start."""
        voice = self._trailing_voice()
        if voice is not None:
            keep_from = voice - _TURN_PADDING if keep_from is None else min(keep_from, voice - _TURN_PADDING)
        while self._unconfirmed and (keep_from is None or self._unconfirmed[0][0] + 1e-9 < keep_from):
            self._unconfirmed_s -= self._unconfirmed.popleft()[1].duration
        if not self._unconfirmed:
            self._unconfirmed_s = 0.0
        self._unconfirmed_dropped = 0.0

    def _trailing_voice(self) -> float | None:
        """Where the voice at the end of what was sent began (pauses under ``_TURN_PADDING`` s bridged)."""
        if not self._unconfirmed:
            return None
        start = None
        last_position, last_chunk, _ = self._unconfirmed[-1]
        end = last_position + last_chunk.duration
        for position, chunk, voiced in reversed(self._unconfirmed):
            if end - (position + chunk.duration) > _TURN_PADDING:
                break
            if voiced:
                start = end = position
        return start

    def _replay_unconfirmed(self) -> None:
        """The link is gone: what was sent since the server last answered goes again, before the rest (what of it
        was not kept is lost)."""
        self.audio_lost += self._unconfirmed_dropped
        self._unconfirmed_dropped = 0.0
        if self._unconfirmed:
            self._backlog.extendleft((position, chunk) for position, chunk, _ in reversed(self._unconfirmed))
            self._backlog_s += self._unconfirmed_s
            self._unconfirmed.clear()
            self._unconfirmed_s = 0.0
            self._trim_backlog()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # ------------------------------------------------------------------ responses

    async def _request_response(self, rid: str, params: RealtimeResponseCreateParamsParam) -> None:
        self._queued.append(_Request(rid, params))
        await self._pump()

    async def _pump(self) -> None:
        """Send the next queued ``response.create`` when no response is being generated."""
        if self._conn is None or self._current is not None or self._requested is not None or not self._queued:
            return
        request = self._queued.pop(0)
        request.event_id = f"as_{uuid.uuid4().hex[:16]}"
        self._requested = request
        params: RealtimeResponseCreateParamsParam = {**request.params, "metadata": {_RESPONSE_ID_KEY: request.rid}}
        self._awaiting[request.event_id] = ("response.create", self._now())
        if not await self._send({"type": "response.create", "event_id": request.event_id, "response": params}):
            self._awaiting.pop(request.event_id, None)
            if self._requested is request:
                self._requested = None
                self._queued.insert(0, request)

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

    def _position(self, ms: int) -> float:
        """Seconds of input audio pushed at ``ms`` of this connection's input buffer."""
        return (self._origin if self._origin is not None else self._pushed) + ms / 1000

    def _remember_audio(self, response: _Response) -> None:
        self._audio_items[response.rid] = response.audio
        while len(self._audio_items) > _AUDIO_RECORDS:
            self._audio_items.popitem(last=False)

    def _live(self, server_id: str) -> _Response | None:
        """The response ``server_id`` if it is the one being generated and was not stopped."""
        current = self._current
        if current is None or current.server_id != server_id or current.rid in self._stopped:
            return None
        return current

    # ------------------------------------------------------------------ server events

    async def _dispatch(self, event: RealtimeServerEvent) -> None:
        kind = event.type
        if kind == "input_audio_buffer.speech_started":
            started = cast(InputAudioBufferSpeechStartedEvent, event)
            self._server_speech = True
            # the turn's audio is held from its start (with VAD's prefix padding): a new connection hears it whole
            self._confirm(keep_from=self._position(started.audio_start_ms) - _TURN_PADDING)
            self.channel.emit(UserSpeechStarted())
        elif kind == "input_audio_buffer.speech_stopped":
            stopped = cast(InputAudioBufferSpeechStoppedEvent, event)
            self._server_speech = False
            self._confirm()
            self.channel.emit(UserSpeechStopped(audio_end=self._position(stopped.audio_end_ms)))
        elif kind == "session.updated":
            first = next((eid for eid, (what, _) in self._awaiting.items() if what == "session.update"), None)
            if first is not None:
                self._awaiting.pop(first)
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
        requested = self._requested
        if ours is not None and requested is not None and requested.rid == ours:
            self._requested = None
            self._awaiting.pop(requested.event_id, None)
        current = _Response(ours or server_id, server_id)  # the server VAD's own responses keep its id
        self._current = current
        self._remember_audio(current)
        if current.rid in self._stopped:  # interrupt() came before the server created it
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
        if current.rid not in self._stopped:
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
            await self._pump()
            return
        self._current = None
        if current.rid in self._stopped:  # interrupt() stopped it: nothing more of it is reported
            self._stopped.discard(current.rid)
            await self._pump()
            return
        if response.status == "failed":
            error = response.status_details.error if response.status_details else None
            message = (error.message if error else None) or "the response failed"
            self.channel.emit(Error(f"OpenAI Realtime: {message}", recoverable=True, code=error.code if error else None))
        usage = response.usage.model_dump(exclude_none=True) if response.usage else {}
        for call in current.calls:  # with the response complete: results can't overtake its response.done
            self.channel.emit(call)
        self.channel.emit(ResponseDone(interrupted=response.status == "cancelled", usage=usage,
                                       response_id=current.rid))
        await self._pump()

    async def _on_error(self, event: RealtimeErrorEvent) -> None:
        error = event.error
        code = error.code
        if code == "response_cancel_not_active":
            logger.debug("response.cancel found no active response")
            return
        if error.event_id:
            self._awaiting.pop(error.event_id, None)
        requested = self._requested
        if requested is not None and error.event_id == requested.event_id:
            self._requested = None
            if requested.rid in self._stopped:  # stopped before it began: nothing owed
                self._stopped.discard(requested.rid)
            elif code == "conversation_already_has_active_response":
                self._queued.insert(0, requested)  # asked too early: asked again after the current one
                return
            else:
                self.channel.emit(Error(f"OpenAI Realtime: {error.message}", recoverable=True, code=code))
                self.channel.emit(ResponseDone(response_id=requested.rid))
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


def _abort(conn: AsyncRealtimeConnection) -> None:
    """Drop the socket now, without a closing handshake (the SDK keeps the websocket as ``_connection``)."""
    transport = getattr(getattr(conn, "_connection", None), "transport", None)
    if transport is not None:
        transport.abort()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
