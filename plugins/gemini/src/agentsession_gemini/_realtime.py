"""``GeminiRealtime``: Gemini Live speech-to-speech through ``google.genai``'s ``client.aio.live.connect``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google import genai
from google.genai import errors, types
from websockets.asyncio.client import ClientConnection

from agentsession.plugin import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AgentAudio,
    AgentTranscript,
    AudioChunk,
    AudioFrame,
    ChatContext,
    ChatMessage,
    EnergyVAD,
    FunctionTool,
    LinkedRealtimeModel,
    ModelError,
    ModelOptions,
    ProviderLink,
    Reframer,
    Request,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    abort,
)

from ._schema import function_declarations
from ._server_audio import server_audio
from ._shared import Credentials, response_payload

_CHUNK_MS = 50  # the user's audio goes up in chunks of this (20 messages a second, not 50)
_AUDIO_HEAD = '{"realtime_input": {"audio": {"data": "'  # then urlsafe base64, then _audio_tail

logger = logging.getLogger("agentsession.gemini")

DEFAULT_MODEL = "gemini-live-2.5-flash-preview"
_FATAL_CLOSE_CODES = {1007, 1008}  # invalid argument (bad setup), policy violation (bad key, quota)
_Send = Callable[[genai.live.AsyncSession], Awaitable[None]]
#: how many recent responses' audio lengths (and cancelled tool call ids) are remembered
_RECENT = 32


@dataclass
class GeminiLiveConfig:
    """The Live session's settings, shaped as VideoSDK's ``GeminiLiveConfig`` (so its users' code runs as is).

    The sampling fields are sent when set. ``response_modalities``: the
    Live API answers in one modality, so any list with ``"AUDIO"`` gives audio (with its transcription),
    else text. ``input_audio_transcription``/``output_audio_transcription``: ``None`` turns the user's or
    the model's transcripts off. ``language_code`` defaults to ``None`` (the model's choice) where
    VideoSDK's says ``"en-US"``.
    """

    voice: str | None = "Puck"
    language_code: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    candidate_count: int | None = None
    max_output_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_modalities: list[str] | None = field(default_factory=lambda: ["AUDIO"])
    input_audio_transcription: types.AudioTranscriptionConfig | None = field(
        default_factory=types.AudioTranscriptionConfig
    )
    output_audio_transcription: types.AudioTranscriptionConfig | None = field(
        default_factory=types.AudioTranscriptionConfig
    )

    def sampling(self, temperature: float | None) -> dict[str, Any]:
        """The sampling settings given (``temperature`` overriding), as ``LiveConnectConfig`` fields: those
        it has directly, the others (``candidate_count``, the penalties) in a ``generation_config``."""
        direct = {"temperature": temperature if temperature is not None else self.temperature,
                  "top_p": self.top_p, "top_k": self.top_k, "max_output_tokens": self.max_output_tokens}
        extra = {"candidate_count": self.candidate_count, "presence_penalty": self.presence_penalty,
                 "frequency_penalty": self.frequency_penalty}
        fields: dict[str, Any] = {name: value for name, value in direct.items() if value is not None}
        given = {name: value for name, value in extra.items() if value is not None}
        if given:
            fields["generation_config"] = types.GenerationConfig.model_validate(given)
        return fields

    @property
    def audio(self) -> bool:
        return any(str(m).upper().endswith("AUDIO") for m in self.response_modalities or ["AUDIO"])


@dataclass(frozen=True, slots=True)
class _Live:
    """One connection: the SDK's session, and what closes it."""

    session: genai.live.AsyncSession
    stack: contextlib.AsyncExitStack


@dataclass
class _Generation:
    """One model turn (a generation) and the response it answers."""

    rid: str
    discard: bool = False  # interrupt() named it: nothing more of it is forwarded
    text: str = ""
    audio: float = 0.0  # seconds of its audio received


class GeminiRealtime(LinkedRealtimeModel):
    """Gemini Live (``BidiGenerateContent``) as a ``RealtimeModel``.

    Audio goes up as 16 kHz pcm16 (the core resamples) and comes back as 24 kHz pcm16. Turn taking is
    the server's automatic activity detection. Gemini sends no speech start/stop events, so:
    ``UserSpeechStarted`` comes from the server's ``voice_activity`` signal when it sends one, from
    ``interrupted`` (the server heard the user over the model), or from the first input transcription of
    a new turn while the local ``EnergyVAD`` hears voice in the pushed audio; ``UserSpeechStopped``
    comes when the model starts answering (or from ``voice_activity``), with ``audio_end`` from the
    local VAD.

    Responses are the model's turns, in order. ``say``/``reply``/``send_text``/``send_tool_results`` are
    queued and sent one at a time, each once the model's previous turn is over (a client turn sent during
    a turn would cut it); the next turn the model takes answers the request sent, and carries its id. A
    turn the model takes by itself (an answer to the user's speech) gets ``gemini-turn-<n>``.

    ``interrupt(heard)``: Gemini has no cancel and no truncation. The named turn is no longer forwarded
    (the rest of it is dropped until the server ends it) and queued requests named are dropped. The
    server's context then holds words the user did not hear, so the next connection (a reconnect, a
    ``go_away``, an agent handoff) replays the session's history, which has what was heard, instead of
    resuming the server session.

    ``update_agent``: the Live API cannot change the system instruction or tools mid-session, so the model
    reconnects with the new setup once the current turn is over: resuming with the session resumption
    handle (the server keeps the conversation), or replaying the history when there is none (or the
    context holds unheard words). The session is resumed likewise after ``go_away`` or a dropped socket;
    ``max_reconnects`` failed attempts after a loss end it with a non-recoverable ``Error``.

    The link (backlog, liveness, reconnects, bounded close, masking) is core's ``ProviderLink``. A request
    unanswered (the model's turn not begun) within ``response_timeout``, the model's turn making no progress
    for ``stall_timeout`` (other messages do not count), or, with input transcription on, the user's voice
    unanswered that long: the link is stalled, closed and reconnected as for a drop, with
    ``Reconnecting``/``Reconnected``. A message the SDK cannot read is logged and skipped. ``go_away`` is a
    planned handover: the answer in flight is received to its end, then the session is resumed, without
    those events. The user's audio meanwhile is kept (the last ``outage_buffer`` seconds) and sent first on
    the new connection; what did not fit is ``Reconnected.audio_lost``.

    Configure it with keywords, with ``config=GeminiLiveConfig(...)`` (VideoSDK's shape), or both: a
    keyword given wins over the config.
    """

    #: it answers in text when asked (``Pipeline(llm=GeminiRealtime(), tts=...)``: VideoSDK's hybrid mode)
    supports_text_output = True

    provider = "gemini"
    #: automatic activity detection sends no "user started speaking": the session runs its own VAD
    reports_user_speech = False
    input_sample_rate = 16000
    output_sample_rate = 24000

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        config: GeminiLiveConfig | None = None,
        voice: str | None = None,
        api_key: str | None = None,
        vertexai: bool = False,
        project: str | None = None,
        location: str | None = None,
        language: str | None = None,
        temperature: float | None = None,
        http_options: types.HttpOptions | None = None,
        max_reconnects: int = 3,
        reconnect_delay: float = 0.5,
        connect_timeout: float = 15.0,
        response_timeout: float = 10.0,
        stall_timeout: float = 15.0,
        close_timeout: float = 2.0,
        outage_buffer: float = 10.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else GeminiLiveConfig()
        self._credentials = Credentials(
            "GeminiRealtime", api_key=api_key, vertexai=vertexai, project=project, location=location,
            http_options=_live_http_options(http_options, close_timeout, max_message_size, self._tapped()),
        )
        self._link: ProviderLink[_Live, _Send] = ProviderLink(
            self, self.channel, name="Gemini Live", connect_timeout=connect_timeout,
            response_timeout=response_timeout, stall_timeout=stall_timeout, close_timeout=close_timeout,
            outage_buffer=outage_buffer, max_reconnects=max_reconnects, reconnect_delay=reconnect_delay,
            max_reconnect_delay=5.0, max_message_size=max_message_size, audio_batch=None,
            # the server transcribes the user as they speak: voice it does not answer is a stall
            voice_owed=self.config.input_audio_transcription is not None, describe=self._credentials.describe,
        )
        self.model = model
        self.voice = voice or self.config.voice or "Puck"
        self.vertexai = vertexai
        self.project = project
        self.location = location
        self.language = language or self.config.language_code
        self.temperature = temperature
        self.max_reconnects = max_reconnects
        self._options = ModelOptions(instructions="")
        self._started = False
        self._handle: str | None = None
        self._turn_start: float | None = None  # where the local VAD heard the user's current turn start
        self._vad = EnergyVAD()
        self._chunker = Reframer(self.input_sample_rate, frame_ms=_CHUNK_MS)
        self._audio_tail = f'", "mime_type": "{self._mime}"}}}}}}'  # closes an audio message after _AUDIO_HEAD + data
        self._pushed = 0.0  # seconds of the user's audio pushed (the link has them once a chunk is whole)
        self._last_voice: float | None = None  # position where the local VAD last heard voice
        self._voice_end: float | None = None  # where the local VAD's latest speech segment ended
        # the user's turn
        self._user_speaking = False
        self._answer_owed = False  # the user's turn ended: a response (maybe empty) ends it
        self._in_text = ""
        # responses
        self._gen: _Generation | None = None  # the model's turn being received
        self._turns = itertools.count(1)
        self._after_tool_call = False  # the last turn ended in tool calls (a turn_complete of it is stale)
        self._usage: dict[str, Any] = {}
        self._audio_len: OrderedDict[str, float] = OrderedDict()  # recent responses' audio seconds
        self._cancelled_calls: deque[str] = deque(maxlen=_RECENT)
        self._pending_calls: set[str] = set()  # calls made on this connection and not answered yet
        # what the server's context holds
        self.heard: OrderedDict[str, float | None] = OrderedDict()  # responses cut short: seconds heard
        self._context_stale = False  # it holds model output the user did not hear: replay, don't resume
        self._handover = ""  # why the link is to reconnect once the model's turn is over ("": it is not)
        self._setup_version = 0  # bumped by update_agent(); a connection made with an older one is redone

    def __repr__(self) -> str:
        return f"<GeminiRealtime model={self.model!r} voice={self.voice!r} key={self._credentials!r}>"

    @property
    def resumption_handle(self) -> str | None:
        """The latest session resumption handle the server gave."""
        return self._handle

    # ------------------------------------------------------------------ RealtimeModel API

    async def start(self, options: ModelOptions) -> None:
        if self._started:
            raise ModelError("GeminiRealtime.start() called twice")
        self._started = True
        self._options = options
        self._credentials.client()  # settings the SDK refuses fail start(), not the first connection
        await self._link.start()

    def push_audio(self, frame: AudioFrame) -> None:
        link = self._link
        if link.closed or link.failed:
            return
        self._pushed += frame.duration
        for event in self._vad.push(frame):
            self._voice_end = event.position if event.kind == "end" else None
            if event.kind == "start":
                self._turn_start = event.position
        if self._vad.speaking:
            self._last_voice = self._pushed
        for chunk in self._chunker.push(frame):  # voiced: this chunk's level, not the VAD's state
            link.push(chunk, EnergyVAD.level_db(chunk) > self._vad.threshold_db)

    async def send_text(self, text: str, *, response_id: str) -> None:
        self._client_turn(response_id, text)

    async def say(self, text: str, *, response_id: str) -> None:
        self._client_turn(
            response_id, "Say the following text out loud, word for word, adding nothing before or after it:\n" + text
        )

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        if instructions:
            self._client_turn(response_id, f"(Instructions for your next reply, not said by the user: {instructions})")
        else:
            self._link.ask(response_id, lambda s: s.send_client_content(turn_complete=True))

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        if not heard:
            return
        self._link.drop(heard)  # a request named that was sent has its turn dropped when it begins
        gen = self._gen
        if gen is not None and gen.rid in heard and not gen.discard:
            gen.discard = True  # no cancel in Gemini: the rest of the turn is dropped as it comes
            self._link.end()  # a dropped turn does not wait: the next client turn makes the server stop it
        for rid, position in heard.items():
            length = self._audio_len.pop(rid, None)
            live = gen is not None and gen.rid == rid  # the server may have generated more than arrived
            if length is not None and (live or position is None or position < length - 1e-3):
                self._cut(rid, position)
        self._maybe_hand_over()

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        responses = [
            types.FunctionResponse(id=r.call_id, name=r.name, response=response_payload(r.output, r.is_error))
            for r in results
            if r.call_id not in self._cancelled_calls
        ]
        if not responses:  # every call was withdrawn (the server moved on): nothing to continue
            self.channel.emit(ResponseDone(response_id=response_id))
            return
        self._link.ask(response_id, lambda s: self._send_results(s, responses))

    async def _send_results(self, session: genai.live.AsyncSession, responses: list[types.FunctionResponse]) -> None:
        """Tool results for calls this connection made go as a ``tool_response``; the calls of an earlier
        connection (a handoff or a reconnect came between) are unknown to this server session, so their
        results go as a client turn (the history replayed on connecting has the conversation up to them)."""
        if any(r.id in self._pending_calls for r in responses):
            self._pending_calls.difference_update(r.id for r in responses)
            await session.send_tool_response(function_responses=responses)
            return
        said = "; ".join(f"{r.name} returned {json.dumps(r.response)}" for r in responses)
        text = f"(Function results, not said by the user: {said})"
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=text)]),
                                          turn_complete=True)

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        """The results reach the model without a turn of its own (a handoff: the new agent speaks first): a
        ``SILENT`` tool response for this connection's calls; the calls of an earlier one are in the history the
        next connection replays."""
        responses = [
            types.FunctionResponse(id=r.call_id, name=r.name, response=response_payload(r.output, r.is_error),
                                   scheduling=types.FunctionResponseScheduling.SILENT)
            for r in results if r.call_id in self._pending_calls and r.call_id not in self._cancelled_calls
        ]
        self._pending_calls.difference_update(r.call_id for r in results)
        live = self._link.conn
        if responses and live is not None:
            await self._link.send(lambda: live.session.send_tool_response(function_responses=responses))

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._options = ModelOptions(instructions, list(tools), self._options.chat_ctx)
        self._setup_version += 1
        if self._link.conn is None:
            return  # not connected: the next connection has the new setup
        self._hand_over_when_idle("reconnecting with the new agent's setup")

    async def _close_client(self) -> None:
        await self._credentials.aclose()

    # ------------------------------------------------------------------ the link's protocol

    def _config(self, handle: str | None) -> types.LiveConnectConfig:
        declarations = function_declarations(self._options.tools)
        voice = types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice))
        instructions = self._options.instructions
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO if self.config.audio and not self.text_output
                                 else types.Modality.TEXT],
            speech_config=types.SpeechConfig(voice_config=voice, language_code=self.language),
            system_instruction=types.Content(parts=[types.Part(text=instructions)]) if instructions else None,
            tools=[types.Tool(function_declarations=declarations)] if declarations else None,
            input_audio_transcription=self.config.input_audio_transcription,
            output_audio_transcription=self.config.output_audio_transcription,
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=False)
            ),
            session_resumption=types.SessionResumptionConfig(handle=handle),
            context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
            **self.config.sampling(self.temperature),
        )

    async def link_open(self, first: bool) -> _Live:
        # a context holding words the user did not hear is not resumed: the history replaces it
        handle = None if self._context_stale else self._handle
        version = self._setup_version
        stack = contextlib.AsyncExitStack()
        try:
            session = await stack.enter_async_context(
                self._credentials.client().aio.live.connect(model=self.model, config=self._config(handle)))
        except errors.APIError as exc:
            if exc.code in _FATAL_CLOSE_CODES:
                raise ModelError(f"Gemini Live refused the session: {self._credentials.describe(exc)}",
                                 recoverable=False, code="connection_failed") from None
            raise
        live = _Live(session, stack)
        try:
            if handle is None and (not first or len(self._options.chat_ctx)):
                await self._replay(session)
        except BaseException:
            abort(self.link_socket(live))  # given up on: no closing handshake to wait for
            await self._link.close_socket(live)
            raise
        self._context_stale = False
        self._handover = ""
        if version != self._setup_version:  # changed meanwhile: again, with the new one
            self._hand_over_when_idle("reconnecting with the new agent's setup")
        logger.info("connected to Gemini Live %s (%s)", self.model, "resumed" if handle else "new")
        return live

    def _tapped(self) -> type[ClientConnection]:
        """The SDK's websocket class, with every message sent and received shown to the link's taps (a recorder's
        cassette). Given to ``websockets.connect`` as ``create_connection``, through ``async_client_args``."""
        model = self

        class TappedConnection(ClientConnection):
            # set while the link reads this connection: takes a message of the model's audio (see ``_inline_audio``)
            inline: Callable[[str | bytes], bool] | None = None

            async def send(self, message: Any, text: bool | None = None) -> None:
                model._link.tap_sent(message)
                await super().send(message, text=text)

            async def recv(self, decode: bool | None = None) -> Any:
                while True:
                    message = await super().recv(decode)
                    model._link.tap_received(message)
                    if self.inline is None or not self.inline(message):
                        return message  # the SDK's to read

        return TappedConnection

    def link_socket(self, conn: _Live) -> Any:
        return getattr(conn.session, "_ws", None)  # the SDK's websocket

    async def link_close(self, conn: _Live) -> None:
        await conn.stack.aclose()

    async def link_read(self, conn: _Live) -> str:
        ws = self.link_socket(conn)
        if hasattr(ws, "inline") and not self.vertexai:  # our tapped socket, with the Gemini API's field names
            ws.inline = self._inline_audio
        while True:
            try:
                async for message in conn.session.receive():
                    self._link.heard(turn_start=self._turn_start)
                    self._on_message(conn, message)
            except (TypeError, ValueError) as exc:
                # a message the SDK cannot read (garbage, or a shape it does not know): skipped, the link goes on
                logger.warning("Gemini Live: skipped a server message the SDK could not read (%s)",
                               self._credentials.describe(exc))
            except errors.APIError as exc:
                if exc.code in _FATAL_CLOSE_CODES:
                    raise ModelError(f"Gemini Live closed the session: {self._credentials.describe(exc)}",
                                     recoverable=False, code="connection_failed") from None
                raise

    async def link_send_audio(self, conn: _Live, chunks: list[AudioChunk]) -> None:
        data = b"".join(chunk.frame.to_bytes() for chunk in chunks)
        ws = None if self.vertexai else getattr(conn.session, "_ws", None)
        if ws is None:  # Vertex AI (its own field names), or an SDK without the attribute: the SDK's way
            await conn.session.send_realtime_input(audio=types.Blob(data=data, mime_type=self._mime))
            return
        # the message the SDK's send_realtime_input sends, byte for byte, built by hand: its typed conversion
        # (pydantic models, a walk of the dict, json.dumps) costs ~10x the base64, 50 times a second a session
        await ws.send(_AUDIO_HEAD + base64.urlsafe_b64encode(data).decode("ascii") + self._audio_tail)

    async def link_send_request(self, conn: _Live, request: Request[_Send]) -> None:
        await request.payload(conn.session)
        request.key = uuid.uuid4().hex  # delivered: the model's next turn answers it
        self._link.liveness.expect(request.key, "a request", self._link.now())

    def link_lost(self, reason: str, dropped: bool) -> None:
        gen, self._gen = self._gen, None
        if gen is not None and not gen.discard:  # the model's turn was cut: say so
            self._context_stale = True  # a resumed context would hold more of it than was played
            self._link.error(f"Gemini Live connection lost during a response ({reason or 'reconnect'})",
                             code="connection_lost")
            self._end_generation(gen, interrupted=True)
        self._after_tool_call = False
        if self._pending_calls:
            # a server session holds no resumable state while calls are pending: the last handle is from
            # before the user's request, so the history (which has it) is replayed instead
            self._context_stale = True
            self._pending_calls.clear()

    @property
    def _mime(self) -> str:
        return f"audio/pcm;rate={self.input_sample_rate}"


    async def _replay(self, session: genai.live.AsyncSession) -> None:
        """A new server session without a handle: give it the conversation so far (as the session recorded
        it: what the user heard of each answer) as context."""
        turns = _history_turns(self._options.chat_ctx)
        if turns:
            await session.send_client_content(turns=turns, turn_complete=False)

    def _client_turn(self, rid: str, text: str) -> None:
        content = types.Content(role="user", parts=[types.Part(text=text)])
        self._link.ask(rid, lambda s: s.send_client_content(turns=content, turn_complete=True))

    def _delivered(self) -> Request[_Send] | None:
        """The request sent whose turn has not begun (the model's next turn answers it)."""
        requested = self._link.requested
        return requested if requested is not None and requested.key else None

    def _hand_over_when_idle(self, reason: str) -> None:
        """Reconnect (``update_agent``'s new setup, a ``go_away``) once the model's turn is over; no request is
        sent meanwhile."""
        self._handover = reason
        self._link.hold = True
        self._maybe_hand_over()

    def _maybe_hand_over(self) -> None:
        if self._handover and self._link.requested is None and (self._gen is None or self._gen.discard):
            self._link.handover(self._handover)

    async def _hand_over_by(self, conn: _Live, seconds: float) -> None:
        """A ``go_away``'s deadline: the server closes then, whether the turn is over or not."""
        await asyncio.sleep(seconds)
        if self._link.conn is conn:
            self._link.handover("go_away: the server's deadline")

    def _cut(self, rid: str, position: float | None) -> None:
        self.heard[rid] = position
        while len(self.heard) > _RECENT:
            self.heard.popitem(last=False)
        self._context_stale = True

    # ------------------------------------------------------------------ server messages

    def _on_message(self, conn: _Live, message: types.LiveServerMessage) -> None:
        if message.go_away is not None:  # a planned handover: the answer in flight is finished first
            left = _seconds(message.go_away.time_left)
            logger.info("Gemini Live go_away (time left %s): resuming once the turn is over", message.go_away.time_left)
            self._link.spawn(self._hand_over_by(conn, max(0.0, left - 0.5) if left is not None else 0.0))
            self._hand_over_when_idle("go_away")
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle = update.new_handle
        if message.usage_metadata is not None:
            self._usage = message.usage_metadata.model_dump(mode="json", exclude_none=True)
        activity = message.voice_activity
        if activity is not None and activity.voice_activity_type == types.VoiceActivityType.ACTIVITY_START:
            self._user_started()
        elif activity is not None and activity.voice_activity_type == types.VoiceActivityType.ACTIVITY_END:
            self._user_stopped()
        content = message.server_content
        if content is not None:
            self._on_content(content)
        if message.tool_call is not None:
            self._on_tool_call(message.tool_call)
        if message.tool_call_cancellation is not None and message.tool_call_cancellation.ids:
            ids = tuple(message.tool_call_cancellation.ids)
            self._cancelled_calls.extend(ids)
            self._pending_calls.difference_update(ids)
            self.channel.emit(ToolCallCancelled(ids))

    def _on_content(self, content: types.LiveServerContent) -> None:
        if content.input_transcription is not None and content.input_transcription.text:
            self._on_input_transcript(content.input_transcription.text)
        if content.interrupted:
            self._on_interrupted()
        if content.model_turn is not None:
            for part in content.model_turn.parts or ():
                blob = part.inline_data
                if blob is not None and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
                    self._on_audio(blob.data, blob.mime_type or "")
                elif part.text and not part.thought:  # a text-modality answer
                    self._on_output_text(part.text)
        if content.output_transcription is not None and content.output_transcription.text:
            self._on_output_text(content.output_transcription.text)
        if content.turn_complete:
            self._on_turn_complete()

    def _on_audio(self, data: bytes, mime: str) -> None:
        gen = self._generation()
        if not gen.discard:
            frame = AudioFrame.from_bytes(data, _rate(mime, self.output_sample_rate))
            gen.audio += frame.duration
            self._audio_len[gen.rid] = gen.audio
            self.channel.emit(AgentAudio(frame, response_id=gen.rid))

    def _inline_audio(self, message: str | bytes) -> bool:
        """Take ``message`` here, before the SDK reads it, if it holds only the model's audio and its transcript
        (most of what the server sends while the model speaks), as ``_on_message`` would; return whether it was
        taken. The SDK's typed read of such a message costs ~5x this; every other message is the SDK's."""
        read = server_audio(message)
        if read is None:
            return False
        self._link.heard(turn_start=self._turn_start)
        try:
            for data, mime in read.chunks:
                self._on_audio(data, mime)
            if read.transcript:
                self._on_output_text(read.transcript)
        except Exception:  # logged, and the link reads on (the SDK, which called this, is not told)
            logger.exception("Gemini Live: handling the model's audio failed")
        return True

    def _on_output_text(self, text: str) -> None:
        gen = self._generation()
        if not gen.discard:
            gen.text += text
            self.channel.emit(AgentTranscript(text, final=False, response_id=gen.rid))

    def _on_input_transcript(self, text: str) -> None:
        heard = self._last_voice is not None and self._pushed - self._last_voice < 1.5
        answering = self._gen is not None and not self._gen.discard
        if not answering and not self._user_speaking and heard:
            self._user_started()
        self._in_text += text
        self.channel.emit(UserTranscript(text, final=False))

    def _on_interrupted(self) -> None:
        """The server stopped its turn: the user spoke over it, or our new client turn replaced a dropped one."""
        gen, self._gen = self._gen, None
        if gen is not None and gen.discard:
            self._after_generation()
            return
        self._user_started()
        if gen is not None:  # the server cut the model's turn for the user's speech
            self._end_generation(gen, interrupted=True)
            self._after_generation()

    def _on_turn_complete(self) -> None:
        gen, self._gen = self._gen, None
        self._user_stopped()
        if not self._vad.speaking:
            self._turn_start = None
        sent = self._delivered()
        if gen is not None:
            if not gen.discard:
                self._end_generation(gen, interrupted=False)
        elif self._after_tool_call and sent is None:
            self._after_tool_call = False  # the end of a turn that ended in tool calls: already reported
            return
        else:  # a turn with no output: an empty answer to our request, or the user's turn left unanswered
            self._flush_user_text()
            stopped = self._link.stopped
            if sent is not None:
                self._link.begin(sent.rid)
                if sent.rid not in stopped:
                    self.channel.emit(ResponseDone(usage=self._take_usage(), response_id=sent.rid))
                stopped.discard(sent.rid)
            elif self._answer_owed:
                self.channel.emit(ResponseDone(usage=self._take_usage(), response_id=self._turn_id()))
            self._answer_owed = False
        self._after_generation()

    def _on_tool_call(self, call: types.LiveServerToolCall) -> None:
        gen = self._generation()
        self._gen = None
        self._after_tool_call = True  # the turn waits for the results; they are a new response
        if not gen.discard:  # calls of a dropped turn are never answered
            for fc in call.function_calls or ():
                call_id = fc.id or f"call_{uuid.uuid4().hex[:12]}"
                self._pending_calls.add(call_id)
                self.channel.emit(ToolCall(call_id, fc.name or "", json.dumps(fc.args or {}), response_id=gen.rid))
            self._end_generation(gen, interrupted=False)
        self._after_generation()

    # ------------------------------------------------------------------ turn bookkeeping

    def _generation(self) -> _Generation:
        """The model's turn being received; output starting a new one ties it to the request it answers."""
        gen = self._gen
        if gen is not None:
            if not gen.discard:
                self._link.progress()
            return gen
        self._user_stopped()
        self._answer_owed = False
        self._after_tool_call = False
        if not self._vad.speaking:  # the user's turn is answered: its audio need not be sent again
            self._turn_start = None
        number = next(self._turns)
        sent = self._delivered()
        rid = sent.rid if sent is not None else f"gemini-turn-{number}"
        self._link.begin(rid)
        stopped = self._link.stopped
        gen = _Generation(rid, discard=rid in stopped)
        stopped.discard(rid)
        if gen.discard:
            self._link.end()
            self._cut(rid, None)  # the server answers a request nobody will hear
        else:
            self._audio_len[rid] = 0.0
            while len(self._audio_len) > _RECENT:
                self._audio_len.popitem(last=False)
        self._gen = gen
        return gen

    def _turn_id(self) -> str:
        return f"gemini-turn-{next(self._turns)}"

    def _take_usage(self) -> dict[str, Any]:
        usage, self._usage = self._usage, {}
        return usage

    def _end_generation(self, gen: _Generation, *, interrupted: bool) -> None:
        self._flush_user_text()
        if gen.text and not interrupted:
            self.channel.emit(AgentTranscript(gen.text, final=True, response_id=gen.rid))
        self.channel.emit(ResponseDone(interrupted=interrupted, usage=self._take_usage(), response_id=gen.rid))

    def _after_generation(self) -> None:
        self._link.end()
        self._maybe_hand_over()

    def _user_started(self) -> None:
        if not self._user_speaking:
            self._flush_user_text()
            self._user_speaking = True
            self.channel.emit(UserSpeechStarted())

    def _user_stopped(self) -> None:
        if self._user_speaking:
            self._user_speaking = False
            self._answer_owed = True
            audio_end = None if self._vad.speaking else self._voice_end
            self.channel.emit(UserSpeechStopped(audio_end=audio_end))

    def _flush_user_text(self) -> None:
        if self._in_text.strip():
            self.channel.emit(UserTranscript(self._in_text.strip(), final=True))
        self._in_text = ""


def _live_http_options(options: types.HttpOptions | None, close_timeout: float,
                       max_message_size: int | None, connection: type[ClientConnection]) -> types.HttpOptions:
    """``options`` with websockets' ``close_timeout`` (10 s by default) bounded by ours, its ``max_size`` ours
    (a larger inbound message fails the socket, which the link reconnects), no ``compression`` (websockets offers
    permessage-deflate by default: base64 audio gains little from it, and deflating every message both ways
    costs CPU) and ``connection`` as its ``create_connection`` (the link's taps): the SDK passes the
    ``async_client_args`` that ``websockets.connect`` takes on to it, and drops them from its HTTP clients'.
    Each is only a default: ``async_client_args`` given by the caller win."""
    options = options if options is not None else types.HttpOptions()
    args = dict(options.async_client_args or {})
    args.setdefault("close_timeout", close_timeout)
    args.setdefault("max_size", max_message_size)
    args.setdefault("compression", None)
    args.setdefault("create_connection", connection)
    return options.model_copy(update={"async_client_args": args})


def _seconds(duration: str | None) -> float | None:
    """A protobuf duration (``"1.5s"``) in seconds; ``None`` if it is not one."""
    if not duration or not duration.endswith("s"):
        return None
    try:
        return float(duration[:-1])
    except ValueError:
        return None


def _rate(mime: str, default: int) -> int:
    for param in mime.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name == "rate" and value.isdigit():
            return int(value)
    return default


def _history_turns(ctx: ChatContext) -> list[types.Content | types.ContentDict]:
    turns: list[types.Content | types.ContentDict] = []
    for item in ctx:
        if isinstance(item, ChatMessage) and item.text.strip() and item.role in ("user", "assistant"):
            role = "user" if item.role == "user" else "model"
            turns.append(types.Content(role=role, parts=[types.Part(text=item.text)]))
    return turns
