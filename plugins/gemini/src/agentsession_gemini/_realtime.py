"""``GeminiRealtime``: Gemini Live speech-to-speech through ``google.genai``'s ``client.aio.live.connect``."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from google import genai
from google.genai import errors, types

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    ChatMessage,
    EnergyVAD,
    Error,
    ModelError,
    ModelOptions,
    RealtimeModel,
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


class GeminiRealtime(RealtimeModel):
    """Gemini Live (``BidiGenerateContent``) as a ``RealtimeModel``.

    Audio goes up as 16 kHz pcm16 (the core resamples) and comes back as 24 kHz pcm16. Turn taking is
    the server's automatic activity detection. Gemini sends no speech start/stop events, so:
    ``UserSpeechStarted`` comes from the server's ``voice_activity`` signal when it sends one, from
    ``interrupted`` (the server heard the user over the model), or from the first input transcription of
    a new turn while the local ``EnergyVAD`` hears voice in the pushed audio; ``UserSpeechStopped``
    comes when the model starts answering (or from ``voice_activity``), with ``audio_end`` from the
    local VAD.

    ``say``/``reply``/``send_text`` send a user turn (``send_client_content``); ``interrupt`` stops
    the response locally (Gemini has no cancel and no truncation: the server keeps the whole response
    in its context). The session is resumed with the latest resumption handle after ``go_away`` or a
    dropped socket; ``max_reconnects`` failures in a row end it with a non-recoverable ``Error``.
    """

    provider = "gemini"
    input_sample_rate = 16000
    output_sample_rate = 24000

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        voice: str = "Puck",
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
    ) -> None:
        super().__init__()
        self._credentials = Credentials(
            "GeminiRealtime", api_key=api_key, vertexai=vertexai, project=project, location=location,
            http_options=http_options,
        )
        self.model = model
        self.voice = voice
        self.vertexai = vertexai
        self.project = project
        self.location = location
        self.language = language
        self.temperature = temperature
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self._options = ModelOptions(instructions="")
        self._instructions = ""
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
        # audio up
        self._audio: deque[bytes] = deque(maxlen=100)  # 2 s, kept while reconnecting
        self._audio_ready = asyncio.Event()
        self._vad = EnergyVAD()
        self._pushed = 0.0
        self._last_voice: float | None = None  # position where the local VAD last heard voice
        self._voice_end: float | None = None  # where the local VAD's latest speech segment ended
        # conversation state
        self._user_speaking = False
        self._responding = False  # a ResponseDone is owed to the session
        self._generating = False  # the server is producing output for the current generation
        self._requested = False  # we asked for a response that has not started yet
        self._discarding = False  # interrupt(): drop the rest of the generation
        self._in_text = ""
        self._out_text = ""
        self._usage: dict[str, Any] = {}
        self._call_groups: list[dict[str, types.FunctionResponse | None]] = []

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
        self._instructions = options.instructions
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
        self._pushed += frame.duration
        for event in self._vad.push(frame):
            self._voice_end = event.position if event.kind == "end" else None
        if self._vad.speaking:
            self._last_voice = self._pushed
        self._audio.append(frame.to_bytes())
        self._audio_ready.set()

    async def send_text(self, text: str) -> None:
        await self._client_turn(text)

    async def say(self, text: str) -> None:
        await self._client_turn(
            "Say the following text out loud, word for word, adding nothing before or after it:\n" + text
        )

    async def reply(self, instructions: str | None = None) -> None:
        if instructions:
            await self._client_turn(f"(Instructions for your next reply, not said by the user: {instructions})")
        else:
            self._request()
            await self._call(lambda s: s.send_client_content(turn_complete=True))

    async def interrupt(self, played: float | None = None) -> None:
        if not self._responding:
            return
        if self._generating or self._requested:
            self._discarding = True
        self._finish_response(interrupted=True)

    async def send_tool_result(self, result: ToolResult) -> None:
        group = next((g for g in self._call_groups if result.call_id in g), None)
        if group is None:
            logger.warning("tool result for unknown or cancelled call %s ignored", result.call_id)
            return
        group[result.call_id] = types.FunctionResponse(
            id=result.call_id, name=result.name, response=response_payload(result.output, result.is_error)
        )
        if all(r is not None for r in group.values()):  # Gemini continues once every call has its result
            await self._send_results(group)

    async def _send_results(self, group: dict[str, types.FunctionResponse | None]) -> None:
        self._call_groups.remove(group)
        responses = [r for r in group.values() if r is not None]
        self._request()
        await self._call(lambda s: s.send_tool_response(function_responses=responses))

    async def update_instructions(self, instructions: str) -> None:
        self._instructions = instructions
        content = types.Content(parts=[types.Part(text=instructions)])
        await self._call(lambda s: s.send_context_update(system_instruction=content), respond=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop_task()
        await self._credentials.aclose()
        self.channel.end()

    # ------------------------------------------------------------------ connection

    def _config(self) -> types.LiveConnectConfig:
        declarations = function_declarations(self._options.tools)
        voice = types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice))
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            speech_config=types.SpeechConfig(voice_config=voice, language_code=self.language),
            system_instruction=types.Content(parts=[types.Part(text=self._instructions)])
            if self._instructions
            else None,
            tools=[types.Tool(function_declarations=declarations)] if declarations else None,
            temperature=self.temperature,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=False)
            ),
            session_resumption=types.SessionResumptionConfig(handle=self._handle),
            context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
        )

    async def _run(self) -> None:
        assert self._first is not None
        failures = 0
        while True:
            resumed = self._handle is not None
            outcome = "dropped"
            problem = "the connection closed"
            self._heard_server = False
            connected = False
            try:
                async with self._credentials.client().aio.live.connect(model=self.model, config=self._config()) as session:
                    self._session, self._ended = session, asyncio.Event()
                    self._connected.set()
                    connected = True
                    first = not self._first.done()
                    if first:
                        self._first.set_result(None)
                    logger.info("connected to Gemini Live %s (%s)", self.model, "resumed" if resumed else "new")
                    if not resumed and (not first or len(self._options.chat_ctx)):
                        await self._replay(session)
                    outcome = await self._serve(session)
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
            if self._heard_server:
                failures = 0
            if outcome == "dropped":
                failures += 1
                logger.warning("Gemini Live connection lost (%s); reconnect %d/%d", problem, failures,
                               self.max_reconnects)
            self._connection_lost(connected and outcome == "dropped", problem)
            if failures > self.max_reconnects:
                self._fail(f"Gemini Live: gave up after {self.max_reconnects} reconnects ({problem})")
                return
            if failures:
                await asyncio.sleep(min(5.0, self.reconnect_delay * 2 ** (failures - 1)))

    async def _serve(self, session: genai.live.AsyncSession) -> str:
        """Receive until ``go_away`` (returns ``"go_away"``) or the socket closes (raises)."""
        sender = asyncio.get_running_loop().create_task(self._send_audio(session))
        try:
            while True:
                async for message in session.receive():
                    self._heard_server = True
                    self._on_message(message)
                    if message.go_away is not None:
                        logger.info("Gemini Live go_away (time left %s): resuming", message.go_away.time_left)
                        return "go_away"
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send_audio(self, session: genai.live.AsyncSession) -> None:
        mime = f"audio/pcm;rate={self.input_sample_rate}"
        while True:
            await self._audio_ready.wait()
            self._audio_ready.clear()
            while self._audio:
                chunks = [self._audio.popleft() for _ in range(len(self._audio))]
                await session.send_realtime_input(audio=types.Blob(data=b"".join(chunks), mime_type=mime))

    async def _replay(self, session: genai.live.AsyncSession) -> None:
        """A new server session without a handle: give it the conversation so far as context."""
        turns = _history_turns(self._options.chat_ctx)
        if turns:
            await session.send_client_content(turns=turns, turn_complete=False)

    async def _call(self, send: _Send, *, respond: bool = True) -> None:
        """Send on the live session, once more on the next connection if it fails; else tell the session."""
        problem = "not connected"
        for _ in range(2):
            if self._closed or self._failed:
                return
            try:
                await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
            except TimeoutError:
                problem = f"no connection within {self.connect_timeout:g} s"
                break
            session, ended = self._session, self._ended
            if session is None:
                continue
            try:
                await send(session)
                return
            except Exception as exc:
                problem = self._credentials.describe(exc)
            try:  # the socket is going down: wait for the receiver to notice, then for the next connection
                await asyncio.wait_for(ended.wait(), self.connect_timeout)
            except TimeoutError:
                break
        if self._closed or self._failed:
            return
        if respond and self._responding:
            self._finish_response(interrupted=True)
        self.channel.emit(Error(f"Gemini Live: could not send ({problem})", recoverable=True, code="send_failed"))

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
        if self._responding:
            self._finish_response(interrupted=True)
        self._generating = self._requested = self._discarding = False
        if dropped:
            self.channel.emit(Error(f"Gemini Live connection lost ({problem}); reconnecting", code="reconnecting"))

    def _fail(self, message: str) -> None:
        self._failed = True
        if self._responding:
            self._finish_response(interrupted=True)
        logger.error("%s", message)
        self.channel.emit(Error(message, recoverable=False, code="connection_failed"))

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
            for group in self._call_groups:
                for call_id in ids:
                    group.pop(call_id, None)
            self._call_groups = [g for g in self._call_groups if g]
            self.channel.emit(ToolCallCancelled(ids))
            for group in [g for g in self._call_groups if all(r is not None for r in g.values())]:
                self._spawn(self._send_results(group))  # the calls left all have their results

    def _on_content(self, content: types.LiveServerContent) -> None:
        if content.input_transcription is not None and content.input_transcription.text:
            self._on_input_transcript(content.input_transcription.text)
        if content.interrupted:
            self._on_interrupted()
        if content.model_turn is not None:
            for part in content.model_turn.parts or ():
                blob = part.inline_data
                if blob is not None and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
                    if self._begin_output():
                        rate = _rate(blob.mime_type or "", self.output_sample_rate)
                        self.channel.emit(AgentAudio(AudioFrame.from_bytes(blob.data, rate)))
        if content.output_transcription is not None and content.output_transcription.text:
            if self._begin_output():
                self._out_text += content.output_transcription.text
                self.channel.emit(AgentTranscript(content.output_transcription.text, final=False))
        if content.turn_complete:
            self._on_turn_complete()

    def _on_input_transcript(self, text: str) -> None:
        heard = self._last_voice is not None and self._pushed - self._last_voice < 1.5
        if not self._generating and not self._user_speaking and heard:
            self._user_started()
        self._in_text += text
        self.channel.emit(UserTranscript(text, final=False))

    def _on_interrupted(self) -> None:
        """The server stopped its generation: the user spoke over it, or our new turn replaced it."""
        if self._discarding:
            self._discarding = False
            self._generating = False
            return
        if not self._requested:
            self._user_started()
        if self._generating:
            pending = self._requested
            self._finish_response(interrupted=True)
            if pending:  # our own request interrupted the previous response: its answer is still owed
                self._responding = self._requested = True

    def _on_turn_complete(self) -> None:
        if self._discarding:
            self._discarding = self._generating = False
            if self._requested and not self._responding:
                self._requested = False
            return
        self._user_stopped()
        if self._responding:
            self._finish_response(interrupted=False)
        else:
            self._flush_user_text()
            self._generating = False

    def _on_tool_call(self, call: types.LiveServerToolCall) -> None:
        if self._discarding:  # calls of an interrupted response are dropped (never answered)
            self._discarding = self._generating = False
            return
        self._begin_output()
        group: dict[str, types.FunctionResponse | None] = {}
        for fc in call.function_calls or ():
            call_id = fc.id or f"call_{uuid.uuid4().hex[:12]}"
            group[call_id] = None
            self.channel.emit(ToolCall(call_id, fc.name or "", json.dumps(fc.args or {})))
        if group:
            self._call_groups.append(group)
        self._finish_response(interrupted=False)  # the continuation after the results is a new response

    # ------------------------------------------------------------------ turn bookkeeping

    def _request(self) -> None:
        self._responding = True
        self._requested = True

    async def _client_turn(self, text: str) -> None:
        self._request()
        content = types.Content(role="user", parts=[types.Part(text=text)])
        await self._call(lambda s: s.send_client_content(turns=content, turn_complete=True))

    def _begin_output(self) -> bool:
        """Model output arrived: False if it must be dropped (interrupted response)."""
        if self._discarding:
            return False
        self._user_stopped()
        self._responding = self._generating = True
        self._requested = False
        return True

    def _user_started(self) -> None:
        if not self._user_speaking:
            self._flush_user_text()
            self._user_speaking = True
            self.channel.emit(UserSpeechStarted())

    def _user_stopped(self) -> None:
        if self._user_speaking:
            self._user_speaking = False
            self._responding = True  # the session now waits for the answer
            audio_end = None if self._vad.speaking else self._voice_end
            self.channel.emit(UserSpeechStopped(audio_end=audio_end))

    def _flush_user_text(self) -> None:
        if self._in_text.strip():
            self.channel.emit(UserTranscript(self._in_text.strip(), final=True))
        self._in_text = ""

    def _finish_response(self, *, interrupted: bool) -> None:
        self._flush_user_text()
        if self._out_text and not interrupted:
            self.channel.emit(AgentTranscript(self._out_text, final=True))
        self._out_text = ""
        usage, self._usage = self._usage, {}
        self.channel.emit(ResponseDone(interrupted=interrupted, usage=usage))
        self._responding = self._generating = self._requested = False


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
