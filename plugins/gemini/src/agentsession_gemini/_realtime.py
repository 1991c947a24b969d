"""``GeminiRealtime``: Gemini Live speech-to-speech through ``google.genai``'s ``client.aio.live.connect``."""

from __future__ import annotations

import asyncio
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

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    ChatMessage,
    EnergyVAD,
    Error,
    FunctionTool,
    ModelError,
    ModelOptions,
    RealtimeModel,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)

from ._schema import function_declarations
from ._shared import Credentials, response_payload

logger = logging.getLogger("agentsession.gemini")

DEFAULT_MODEL = "gemini-live-2.5-flash-preview"
_FATAL_CLOSE_CODES = {1007, 1008}  # invalid argument (bad setup), policy violation (bad key, quota)
_Send = Callable[[genai.live.AsyncSession], Awaitable[None]]
#: how many recent responses' audio lengths (and cancelled tool call ids) are remembered
_RECENT = 32
#: seconds of voice sent with no server message at all before the link is suspected
_MIN_VOICE = 0.5
#: the least user audio kept while it waits to be sent, whatever ``outage_buffer`` says (a healthy link's backlog)
_MIN_BACKLOG = 0.5
#: audio kept from before the local VAD heard a turn start (its onset), for a new connection to hear it whole
_TURN_PADDING = 0.3


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


@dataclass
class _Request:
    """A response the session asked for: what to send for it (a client turn or tool responses)."""

    rid: str
    send: _Send
    delivered: bool = False
    delivered_at: float = 0.0  # loop time


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Pushed user audio: where it starts (seconds pushed before it), its pcm16 and length, and if it is voice."""

    position: float
    data: bytes
    seconds: float
    voiced: bool


@dataclass
class _Generation:
    """One model turn (a generation) and the response it answers."""

    rid: str
    discard: bool = False  # interrupt() named it: nothing more of it is forwarded
    text: str = ""
    audio: float = 0.0  # seconds of its audio received


class GeminiRealtime(RealtimeModel):
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
    ``max_reconnects`` failures in a row end it with a non-recoverable ``Error``.

    Liveness: besides the socket's own state, the link counts as stalled (closed, and reconnected as for a
    drop) when a request (a client turn, tool results) has no answer (the model's turn) within
    ``response_timeout`` seconds, a send blocks that long, or no server message at all arrives for
    ``stall_timeout`` seconds during the model's turn or, with input transcription on (the server then
    transcribes as the user speaks), after at least 0.5 s of the user's voice. A quiet room is not a stall.
    A lost or stalled link emits ``Reconnecting(attempt, reason)`` (and again before each further attempt),
    then ``Reconnected(downtime, audio_lost)``; a ``go_away`` or an agent handoff reconnects without them.
    The user's audio meanwhile is kept (the last ``outage_buffer`` seconds, with what was sent since the
    server last said anything, from the start of a turn the local VAD heard begin) and sent first, in order,
    on the new connection; what did not fit is ``Reconnected.audio_lost``. ``close()`` returns within about
    ``close_timeout`` seconds whatever the socket does.

    Configure it with keywords, with ``config=GeminiLiveConfig(...)`` (VideoSDK's shape), or both: a
    keyword given wins over the config.
    """

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
    ) -> None:
        super().__init__()
        if min(response_timeout, stall_timeout, close_timeout) <= 0 or outage_buffer < 0:
            raise ValueError("response_timeout, stall_timeout and close_timeout must be > 0, outage_buffer >= 0")
        self._credentials = Credentials(
            "GeminiRealtime", api_key=api_key, vertexai=vertexai, project=project, location=location,
            http_options=_live_http_options(http_options, close_timeout),
        )
        self.config = config if config is not None else GeminiLiveConfig()
        self.model = model
        self.voice = voice or self.config.voice or "Puck"
        self.vertexai = vertexai
        self.project = project
        self.location = location
        self.language = language or self.config.language_code
        self.temperature = temperature
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.stall_timeout = stall_timeout
        self.close_timeout = close_timeout
        self.outage_buffer = outage_buffer
        #: seconds of the user's audio that never reached a server (the outage buffer overflowed)
        self.audio_lost = 0.0
        self._options = ModelOptions(instructions="")
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._first: asyncio.Future[None] | None = None
        self._session: genai.live.AsyncSession | None = None
        self._connected = asyncio.Event()
        self._ended = asyncio.Event()  # set when the current connection ends
        self._closed = False
        self._failed = False
        self._handle: str | None = None
        self._heard_server = False
        # audio up: what waits to be sent (kept while reconnecting, bounded), and what was sent since the
        # server last said anything (sent again if the link turns out to be gone)
        self._audio: deque[_Chunk] = deque()
        self._audio_s = 0.0
        self._unconfirmed: deque[_Chunk] = deque()
        self._unconfirmed_s = 0.0
        self._unconfirmed_dropped = 0.0
        self._turn_start: float | None = None  # where the local VAD heard the user's current turn start
        self._audio_ready = asyncio.Event()
        self._vad = EnergyVAD()
        self._pushed = 0.0
        self._last_voice: float | None = None  # position where the local VAD last heard voice
        self._voice_end: float | None = None  # where the local VAD's latest speech segment ended
        # the user's turn
        self._user_speaking = False
        self._answer_owed = False  # the user's turn ended: a response (maybe empty) ends it
        self._in_text = ""
        # responses
        self._queue: deque[_Request] = deque()  # asked for, not sent yet
        self._sent: _Request | None = None  # sent; the model's next turn answers it
        self._gen: _Generation | None = None  # the model's turn being received
        self._stopped: set[str] = set()  # sent and named by interrupt() before their turn began
        self._turns = itertools.count(1)
        self._after_tool_call = False  # the last turn ended in tool calls (a turn_complete of it is stale)
        self._usage: dict[str, Any] = {}
        self._audio_len: OrderedDict[str, float] = OrderedDict()  # recent responses' audio seconds
        self._cancelled_calls: deque[str] = deque(maxlen=_RECENT)
        self._pending_calls: set[str] = set()  # calls made on this connection and not answered yet
        # what the server's context holds
        self.heard: OrderedDict[str, float | None] = OrderedDict()  # responses cut short: seconds heard
        self._context_stale = False  # it holds model output the user did not hear: replay, don't resume
        self._restart_pending = False  # update_agent(): reconnect with the new setup when the turn is over
        self._setup_version = 0  # bumped by update_agent(); a connection made with an older one is redone
        self._restart = asyncio.Event()
        # liveness
        self._heard_at = 0.0  # loop time of the server's last message
        self._voice_since: float | None = None  # when voice was first sent since then
        self._voiced = 0.0
        self._broken: str | None = None  # why a send judged the link stalled
        self._outage: tuple[float, float] | None = None  # (loop time, audio_lost) when the link was lost

    def __repr__(self) -> str:
        return f"<GeminiRealtime model={self.model!r} voice={self.voice!r} key={self._credentials!r}>"

    @property
    def resumption_handle(self) -> str | None:
        """The latest session resumption handle the server gave."""
        return self._handle

    # ------------------------------------------------------------------ RealtimeModel API

    async def start(self, options: ModelOptions) -> None:
        if self._task is not None:
            raise ModelError("GeminiRealtime.start() called twice")
        self._options = options
        self._credentials.client()  # settings the SDK refuses fail start(), not the first connection
        loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._task = loop.create_task(self._run(), name="agentsession:gemini-connection")
        try:
            await asyncio.wait_for(asyncio.shield(self._first), self.connect_timeout)
        except BaseException:
            await self._stop_task()
            raise

    def push_audio(self, frame: AudioFrame) -> None:
        if self._closed or self._failed:
            return
        position = self._pushed
        self._pushed += frame.duration
        for event in self._vad.push(frame):
            self._voice_end = event.position if event.kind == "end" else None
            if event.kind == "start":
                self._turn_start = event.position
        if self._vad.speaking:
            self._last_voice = self._pushed
        voiced = EnergyVAD.level_db(frame) > self._vad.threshold_db  # this frame, not the VAD's settled state
        self._audio.append(_Chunk(position, frame.to_bytes(), frame.duration, voiced))
        self._audio_s += frame.duration
        self._trim_audio()
        self._audio_ready.set()

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
            self._ask(response_id, lambda s: s.send_client_content(turn_complete=True))

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        if not heard:
            return
        self._queue = deque(r for r in self._queue if r.rid not in heard)
        gen, sent = self._gen, self._sent
        if gen is not None and gen.rid in heard:
            gen.discard = True  # no cancel in Gemini: the rest of the turn is dropped as it comes
        if sent is not None and sent.rid in heard:
            self._stopped.add(sent.rid)  # its turn is dropped when it begins
        for rid, position in heard.items():
            length = self._audio_len.pop(rid, None)
            live = gen is not None and gen.rid == rid  # the server may have generated more than arrived
            if length is not None and (live or position is None or position < length - 1e-3):
                self._cut(rid, position)
        self._pump()

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        responses = [
            types.FunctionResponse(id=r.call_id, name=r.name, response=response_payload(r.output, r.is_error))
            for r in results
            if r.call_id not in self._cancelled_calls
        ]
        if not responses:  # every call was withdrawn (the server moved on): nothing to continue
            self.channel.emit(ResponseDone(response_id=response_id))
            return
        self._ask(response_id, lambda s: self._send_results(s, responses))

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

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self._options = ModelOptions(instructions, list(tools), self._options.chat_ctx)
        self._setup_version += 1
        if self._task is None or self._closed or self._failed:
            return  # not connected yet: the first connection has the new setup
        self._restart_pending = True
        self._maybe_restart()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        session = self._session
        if session is not None:
            await self._close_session(session)
        await self._stop_task()  # every await in it is bounded (websockets' close_timeout is close_timeout)
        try:
            async with asyncio.timeout(self.close_timeout):
                await self._credentials.aclose()
        except TimeoutError:
            logger.debug("closing the Gemini client took over %g s", self.close_timeout)
        self.channel.end()

    async def _close_session(self, session: genai.live.AsyncSession) -> None:
        """The closing handshake, bounded by ``close_timeout``; the socket is aborted if it takes longer."""
        try:
            async with asyncio.timeout(self.close_timeout):
                await session.close()
        except BaseException as exc:
            _abort(session)
            if isinstance(exc, asyncio.CancelledError):
                raise
            logger.debug("closing the Gemini Live socket: %s", self._credentials.describe(exc))
        await self._wait_closed(session)

    async def _wait_closed(self, session: genai.live.AsyncSession) -> None:
        """Wait (briefly) for a closed or aborted socket to be torn down, websockets' keepalive task with it."""
        ws = getattr(session, "_ws", None)  # the SDK's websocket
        if not isinstance(ws, ClientConnection):
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await ws.wait_closed()
                keepalive = ws.keepalive_task
                if keepalive is not None and not keepalive.done():
                    await asyncio.wait({keepalive})
        except TimeoutError:
            logger.debug("the Gemini Live socket was not torn down in %g s", self.close_timeout)

    # ------------------------------------------------------------------ connection

    def _config(self, handle: str | None) -> types.LiveConnectConfig:
        declarations = function_declarations(self._options.tools)
        voice = types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice))
        instructions = self._options.instructions
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO if self.config.audio else types.Modality.TEXT],
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

    async def _run(self) -> None:
        assert self._first is not None
        failures = 0
        while True:
            # a context holding words the user did not hear is not resumed: the history replaces it
            handle = None if self._context_stale else self._handle
            version = self._setup_version
            outcome = "dropped"
            problem = "the connection closed"
            self._heard_server = False
            connected = False
            try:
                client = self._credentials.client()
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(self.connect_timeout):  # a server that stalls now fails the attempt
                        session = await stack.enter_async_context(
                            client.aio.live.connect(model=self.model, config=self._config(handle)))
                        first = not self._first.done()
                        if handle is None and (not first or len(self._options.chat_ctx)):
                            await self._replay(session)
                    self._context_stale = False
                    self._restart_pending = version != self._setup_version  # changed meanwhile: again
                    self._restart.clear()
                    self._session, self._ended = session, asyncio.Event()
                    self._heard_at, self._voice_since, self._voiced, self._broken = self._now(), None, 0.0, None
                    self._connected.set()
                    connected = True
                    if first:
                        self._first.set_result(None)
                    logger.info("connected to Gemini Live %s (%s)", self.model, "resumed" if handle else "new")
                    if self._outage is not None:
                        down_at, lost_before = self._outage
                        self._outage = None
                        self.channel.emit(Reconnected(self._now() - down_at, self.audio_lost - lost_before))
                    self._maybe_restart()
                    self._pump()
                    outcome = await self._serve(session)
                    if outcome == "stalled":
                        problem = f"stalled: {self._broken}"
                        _abort(session)  # a closing handshake would wait for nothing
                        await self._wait_closed(session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                problem = self._credentials.describe(exc)
                if not self._first.done():
                    self._first.set_exception(ModelError(f"cannot connect to Gemini Live: {problem}"))
                    return
                if isinstance(exc, errors.APIError) and exc.code in _FATAL_CLOSE_CODES:
                    self._fail(f"Gemini Live closed the session: {problem}")
                    return
            finally:
                self._session = None
                self._connected.clear()
                self._ended.set()
            if self._closed:
                return
            if self._heard_server:
                failures = 0
            if outcome == "restart":
                self._restart.clear()
                logger.info("Gemini Live: reconnecting with the new agent's setup")
                self._connection_lost(False, "")
                continue
            lost = outcome in ("dropped", "stalled")
            lost_before = self.audio_lost
            if lost:
                failures += 1
                logger.warning("Gemini Live connection lost (%s); reconnect %d/%d", problem, failures,
                               self.max_reconnects)
            self._connection_lost(connected and lost, problem)
            if failures > self.max_reconnects:
                self._fail(f"Gemini Live: gave up after {self.max_reconnects} reconnects ({problem})")
                return
            if failures:
                if self._outage is None:
                    self._outage = (self._now(), lost_before)
                self.channel.emit(Reconnecting(failures, problem if connected else f"attempt failed: {problem}"))
                await asyncio.sleep(min(5.0, self.reconnect_delay * 2 ** (failures - 1)))

    async def _serve(self, session: genai.live.AsyncSession) -> str:
        """Receive until ``go_away`` (``"go_away"``), a reconnect for a new setup (``"restart"``), the watchdog
        judging the link stalled (``"stalled"``, the reason in ``_broken``) or the socket closes (raises)."""
        loop = asyncio.get_running_loop()
        sender = loop.create_task(self._send_audio(session), name="gemini-live:audio")
        receiver = loop.create_task(self._receive(session), name="gemini-live:receive")
        restart = loop.create_task(self._restart.wait(), name="gemini-live:restart")
        watchdog = loop.create_task(self._watch(), name="gemini-live:watchdog")
        try:
            done, _ = await asyncio.wait({receiver, restart, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                return receiver.result()
            if watchdog in done:
                self._broken = watchdog.result()
                return "stalled"
            return "restart"
        finally:
            for task in (sender, receiver, restart, watchdog):
                task.cancel()
            await asyncio.gather(sender, receiver, restart, watchdog, return_exceptions=True)

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
        sent = self._sent
        if sent is not None and sent.delivered and now - sent.delivered_at >= self.response_timeout:
            return f"no answer to a request in {self.response_timeout:g} s"
        quiet = now - self._heard_at
        if quiet < self.stall_timeout:
            return None
        if self._gen is not None:
            return f"no server message for {quiet:.1f} s during the model's turn"
        voice = self._voice_since
        if (self.config.input_audio_transcription is not None and voice is not None and self._voiced >= _MIN_VOICE
                and now - voice >= self.stall_timeout):
            return f"no server message for {now - voice:.1f} s while the user spoke"
        return None

    async def _receive(self, session: genai.live.AsyncSession) -> str:
        while True:
            async for message in session.receive():
                self._heard_server = True
                self._heard_at, self._voice_since, self._voiced = self._now(), None, 0.0
                self._confirm()
                self._on_message(message)
                if message.go_away is not None:
                    logger.info("Gemini Live go_away (time left %s): resuming", message.go_away.time_left)
                    return "go_away"

    async def _send_audio(self, session: genai.live.AsyncSession) -> None:
        """Send what waits, in order, in one message per wake-up; what is sent is held until the server answers."""
        mime = f"audio/pcm;rate={self.input_sample_rate}"
        self._audio_ready.set()  # what was kept while disconnected goes first
        while True:
            await self._audio_ready.wait()
            self._audio_ready.clear()
            while self._audio:
                chunks = list(self._audio)
                self._audio.clear()
                self._audio_s = 0.0
                now = self._now()
                for chunk in chunks:
                    self._unconfirmed.append(chunk)
                    self._unconfirmed_s += chunk.seconds
                    if chunk.voiced:
                        if self._voice_since is None:
                            self._voice_since = now
                        self._voiced += chunk.seconds
                while self._unconfirmed_s > self.outage_buffer + 1e-9 and len(self._unconfirmed) > 1:
                    dropped = self._unconfirmed.popleft().seconds
                    self._unconfirmed_s -= dropped
                    self._unconfirmed_dropped += dropped  # lost if the link turns out to be gone
                data = b"".join(chunk.data for chunk in chunks)
                try:
                    async with asyncio.timeout(self.response_timeout):
                        await session.send_realtime_input(audio=types.Blob(data=data, mime_type=mime))
                except TimeoutError:
                    self._broken = f"a send blocked for {self.response_timeout:g} s"
                    return

    def _trim_audio(self) -> None:
        """Keep the last ``outage_buffer`` seconds waiting to be sent; what goes is lost."""
        limit = max(self.outage_buffer, _MIN_BACKLOG) + 1e-9
        while self._audio_s > limit:
            chunk = self._audio.popleft()
            self._audio_s -= chunk.seconds
            self.audio_lost += chunk.seconds

    def _confirm(self) -> None:
        """The server said something: forget the audio sent before, but for the user's turn in progress (from
        where the local VAD heard it begin, or the voice just sent that the VAD has not settled on yet)."""
        starts = [start for start in (self._turn_start, self._trailing_voice()) if start is not None]
        keep_from = min(starts) - _TURN_PADDING if starts else None
        while self._unconfirmed and (keep_from is None or self._unconfirmed[0].position + 1e-9 < keep_from):
            self._unconfirmed_s -= self._unconfirmed.popleft().seconds
        if not self._unconfirmed:
            self._unconfirmed_s = 0.0
        self._unconfirmed_dropped = 0.0

    def _trailing_voice(self) -> float | None:
        """Where the voice at the end of what was sent began (pauses under ``_TURN_PADDING`` s bridged)."""
        start = None
        end = self._unconfirmed[-1].position + self._unconfirmed[-1].seconds if self._unconfirmed else 0.0
        for chunk in reversed(self._unconfirmed):
            if end - (chunk.position + chunk.seconds) > _TURN_PADDING:
                break
            if chunk.voiced:
                start, end = chunk.position, chunk.position
        return start

    def _replay_unconfirmed(self) -> None:
        """The link is gone: what was sent since the server last said anything goes again, before the rest
        (what of it was not kept is lost)."""
        self.audio_lost += self._unconfirmed_dropped
        self._unconfirmed_dropped = 0.0
        if self._unconfirmed:
            self._audio.extendleft(reversed(self._unconfirmed))
            self._audio_s += self._unconfirmed_s
            self._unconfirmed.clear()
            self._unconfirmed_s = 0.0
            self._trim_audio()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _replay(self, session: genai.live.AsyncSession) -> None:
        """A new server session without a handle: give it the conversation so far (as the session recorded
        it: what the user heard of each answer) as context."""
        turns = _history_turns(self._options.chat_ctx)
        if turns:
            await session.send_client_content(turns=turns, turn_complete=False)

    async def _call(self, send: _Send) -> bool:
        """Send on the live session, once more on the next connection if it fails; else report it."""
        problem = "not connected"
        for _ in range(2):
            if self._closed or self._failed:
                return False
            try:
                await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
            except TimeoutError:
                problem = f"no connection within {self.connect_timeout:g} s"
                break
            session, ended = self._session, self._ended
            if session is None:
                continue
            try:
                async with asyncio.timeout(self.response_timeout):
                    await send(session)
                return True
            except TimeoutError:
                problem = self._broken = f"a send blocked for {self.response_timeout:g} s"
            except Exception as exc:
                problem = self._credentials.describe(exc)
            try:  # the socket is going down: wait for the receiver to notice, then for the next connection
                await asyncio.wait_for(ended.wait(), self.connect_timeout)
            except TimeoutError:
                break
        if not (self._closed or self._failed):
            self.channel.emit(Error(f"Gemini Live: could not send ({problem})", recoverable=True, code="send_failed"))
        return False

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _connection_lost(self, dropped: bool, problem: str) -> None:
        """The connection ended (dropped, ``go_away``, or our own restart): settle what was in flight."""
        if dropped:
            self._replay_unconfirmed()
        gen, self._gen = self._gen, None
        if gen is not None and not gen.discard:  # the model's turn was cut: say so
            self._context_stale = True  # a resumed context would hold more of it than was played
            self.channel.emit(Error(f"Gemini Live connection lost during a response ({problem or 'reconnect'})",
                                    recoverable=True, code="connection_lost"))
            self._end_generation(gen, interrupted=True)
        sent, self._sent = self._sent, None
        if sent is not None and sent.delivered and sent.rid not in self._stopped:
            sent.delivered = False
            self._queue.appendleft(sent)  # its turn never began: asked again on the next connection
        self._stopped.clear()
        self._after_tool_call = False
        if self._pending_calls:
            # a server session holds no resumable state while calls are pending: the last handle is from
            # before the user's request, so the history (which has it) is replayed instead
            self._context_stale = True
            self._pending_calls.clear()

    def _fail(self, message: str) -> None:
        self._failed = True
        gen, self._gen = self._gen, None
        if gen is not None and not gen.discard:
            self._end_generation(gen, interrupted=True)
        logger.error("%s", message)
        self.channel.emit(Error(message, recoverable=False, code="connection_failed"))

    # ------------------------------------------------------------------ requests

    def _client_turn(self, rid: str, text: str) -> None:
        content = types.Content(role="user", parts=[types.Part(text=text)])
        self._ask(rid, lambda s: s.send_client_content(turns=content, turn_complete=True))

    def _ask(self, rid: str, send: _Send) -> None:
        self._queue.append(_Request(rid, send))
        self._pump()

    def _pump(self) -> None:
        """Send the next request when the model's turn is over (or dropped) and nothing is awaiting its turn."""
        if self._sent is not None or not self._queue or self._closed or self._failed or self._restart_pending:
            return
        if self._gen is not None and not self._gen.discard:
            return  # a dropped turn does not wait: the new client turn makes the server stop it
        request = self._queue.popleft()
        self._sent = request
        self._spawn(self._send_request(request))

    async def _send_request(self, request: _Request) -> None:
        if await self._call(request.send):
            request.delivered, request.delivered_at = True, self._now()
            return
        if self._sent is request:
            self._sent = None
            if request.rid not in self._stopped:
                self.channel.emit(ResponseDone(interrupted=True, response_id=request.rid))
            self._stopped.discard(request.rid)
            self._pump()

    def _maybe_restart(self) -> None:
        """Reconnect for ``update_agent`` once no turn is being received and none is awaited."""
        if self._restart_pending and self._sent is None and (self._gen is None or self._gen.discard):
            self._restart.set()

    def _cut(self, rid: str, position: float | None) -> None:
        self.heard[rid] = position
        while len(self.heard) > _RECENT:
            self.heard.popitem(last=False)
        self._context_stale = True

    # ------------------------------------------------------------------ server messages

    def _on_message(self, message: types.LiveServerMessage) -> None:
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
                    gen = self._generation()
                    if not gen.discard:
                        frame = AudioFrame.from_bytes(blob.data, _rate(blob.mime_type or "", self.output_sample_rate))
                        gen.audio += frame.duration
                        self._audio_len[gen.rid] = gen.audio
                        self.channel.emit(AgentAudio(frame, response_id=gen.rid))
                elif part.text and not part.thought:  # a text-modality answer
                    self._on_output_text(part.text)
        if content.output_transcription is not None and content.output_transcription.text:
            self._on_output_text(content.output_transcription.text)
        if content.turn_complete:
            self._on_turn_complete()

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
        if gen is not None:
            if not gen.discard:
                self._end_generation(gen, interrupted=False)
        elif self._after_tool_call and not (self._sent is not None and self._sent.delivered):
            self._after_tool_call = False  # the end of a turn that ended in tool calls: already reported
            return
        else:  # a turn with no output: an empty answer to our request, or the user's turn left unanswered
            self._flush_user_text()
            sent = self._sent
            if sent is not None and sent.delivered:
                self._sent = None
                if sent.rid not in self._stopped:
                    self.channel.emit(ResponseDone(usage=self._take_usage(), response_id=sent.rid))
                self._stopped.discard(sent.rid)
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
            return gen
        self._user_stopped()
        self._answer_owed = False
        self._after_tool_call = False
        if not self._vad.speaking:  # the user's turn is answered: its audio need not be sent again
            self._turn_start = None
        number = next(self._turns)
        sent = self._sent
        if sent is not None and sent.delivered:
            self._sent = None
            rid = sent.rid
        else:
            rid = f"gemini-turn-{number}"
        gen = _Generation(rid, discard=rid in self._stopped)
        self._stopped.discard(rid)
        if gen.discard:
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
        self._maybe_restart()
        self._pump()

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


def _abort(session: genai.live.AsyncSession) -> None:
    """Drop the socket now, without a closing handshake (the SDK keeps the websocket as ``_ws``)."""
    transport = getattr(getattr(session, "_ws", None), "transport", None)
    if transport is not None:
        transport.abort()


def _live_http_options(options: types.HttpOptions | None, close_timeout: float) -> types.HttpOptions:
    """``options`` with websockets' ``close_timeout`` (10 s by default) bounded by ours: the SDK passes the
    ``async_client_args`` that ``websockets.connect`` takes on to it, and drops them from its HTTP clients'."""
    options = options if options is not None else types.HttpOptions()
    args = dict(options.async_client_args or {})
    args.setdefault("close_timeout", close_timeout)
    return options.model_copy(update={"async_client_args": args})


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
