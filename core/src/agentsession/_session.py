"""``AgentSession``: the coordinator. It runs an agent on a pipeline's engine and a transport, and delegates:
answers (speeches, responses, playout, tools, interruption) to ``Answers`` through a narrow port, the wake-up to
``WakeUpTimer``, plugin hooks to ``HookCaller``, pipeline hooks to ``PipelineHooks``. States are derived in one
place (``_update_states``), once per entry point (a pipeline event, an API call, a timer, a playout callback)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ._agent import Agent
from ._answers import TOOL_OF, Answers, AnswersHost
from ._audio import AudioConverter, AudioFrame
from ._background_audio import (
    BackgroundAudioHandlerConfig,
    BackgroundMixer,
    Track,
    load_track,
    office_sound,
    thinking_sound,
)
from ._cascade import ConversationFlow
from ._chat import ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from ._emitter import EventEmitter
from ._errors import AgentSessionError
from ._events import (
    AgentChanged,
    AgentStateChanged,
    Closed,
    ErrorOccurred,
    FalseInterruption,
    ReconnectedEvent,
    ReconnectingEvent,
    SessionEvent,
    UserAudio,
    UserStateChanged,
    UserTranscribed,
    WakeUp,
    check_event_name,
)
from ._gc import freeze_heap_at_first_start
from ._hooks import HookCaller
from ._link import LinkTap, link_taps
from ._manager import best_vad, create_manager
from ._mcp import MCPTools
from ._models import VAD, ModelOptions, PipelineEngine, RealtimeModel
from ._pipeline import Pipeline
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    PipelineEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._ports import JobView, current_job
from ._secrets import install_log_redaction
from ._speech import SpeechHandle
from ._states import AgentState, UserState
from ._tools import FunctionTool, HandoffTarget
from ._transport import NullTransport, Transport
from ._wake_up import WakeUpTimer, call_handler

logger = logging.getLogger("agentsession.session")

_IN_EXIT: contextvars.ContextVar[bool] = contextvars.ContextVar("agentsession_in_exit", default=False)
#: the speech whose tool is running (in that tool's task): interrupt() from a tool stops its audio, not the tool

EXIT_PLAYOUT_TIMEOUT = 5.0  # on_exit plus its goodbye's playout, at most
HANDOFF_TIMEOUT = 5.0  # update_agent() waits this long for the new agent's on_enter
UNANSWERED_AFTER = 10.0  # a user turn heard by the session's own VAD that the model has not answered by then
#: an answer the model started at most this long before the session's own VAD reported the start of speech answers
#: that speech (a VAD reports late: it needs some speech to be sure, and the model may hear the user sooner)
LATE_VAD_GRACE = 0.3


@dataclass
class RunResult:
    """What one ``session.run(user_input=...)`` turn added to the history."""

    items: list[ChatItem] = field(default_factory=list)

    @property
    def messages(self) -> list[ChatMessage]:
        return [i for i in self.items if isinstance(i, ChatMessage)]

    @property
    def function_calls(self) -> list[FunctionCall]:
        return [i for i in self.items if isinstance(i, FunctionCall)]

    @property
    def function_outputs(self) -> list[FunctionCallOutput]:
        return [i for i in self.items if isinstance(i, FunctionCallOutput)]

    @property
    def text(self) -> str:
        """Everything the agent said in the turn."""
        return " ".join(m.text for m in self.messages if m.role == "assistant" and m.text)


class AgentSession:
    """Runs ``agent`` on ``pipeline`` over the transport of the current job (DESIGN.md sections 4-6)."""

    def __init__(
        self,
        agent: Agent,
        pipeline: Pipeline | RealtimeModel,
        conversation_flow: ConversationFlow | None = None,
        wake_up: float | None = None,
        plugins: Sequence[object] | None = None,
        *,
        allow_interruptions: bool = True,
        min_interruption_duration: float = 0.5,
        vad: VAD | None = None,
        background_audio: BackgroundAudioHandlerConfig | None = None,
    ) -> None:
        """``pipeline``: a ``Pipeline`` (or a realtime model alone). ``vad``: the voice detector the session runs
        on the user's audio when the model reports no user speech of its own (Gemini Live); by default the best
        one installed (``agentsession_vads``). A pipeline's ``interrupt_config`` sets ``min_interruption_duration``."""
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an Agent, got {type(agent).__name__}")
        if isinstance(pipeline, RealtimeModel):
            pipeline = Pipeline(llm=pipeline)
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a Pipeline (Pipeline(llm=...), RealTimePipeline, CascadingPipeline) "
                            f"or a realtime model, got {type(pipeline).__name__}")
        if conversation_flow is not None and not isinstance(conversation_flow, ConversationFlow):
            raise TypeError(f"conversation_flow must be a ConversationFlow, got {type(conversation_flow).__name__}")
        if wake_up is not None and (isinstance(wake_up, bool) or not wake_up > 0):
            raise ValueError(f"wake_up must be a number of seconds > 0, got {wake_up!r}")
        if min_interruption_duration < 0:
            raise ValueError("min_interruption_duration must be >= 0")
        if conversation_flow is not None:
            pipeline.conversation_flow = conversation_flow
        interrupt_config = pipeline.interrupt_config
        if interrupt_config is not None:
            min_interruption_duration = interrupt_config.interrupt_min_duration
        self.interrupt_config = interrupt_config
        self.agent = agent
        self.pipeline = pipeline
        self.conversation_flow = conversation_flow
        self.wake_up = wake_up
        self.plugins = list(plugins or ())
        self.allow_interruptions = allow_interruptions
        self.min_interruption_duration = min_interruption_duration
        self.vad = vad
        self.background_audio = background_audio  # VideoSDK's: a track that plays from the start
        self.on_wake_up: Callable[[], Awaitable[None] | None] | None = None
        self.history = ChatContext()
        self._emitter = EventEmitter()
        self._pm: pluggy.PluginManager | None = None
        self._hooks: HookCaller | None = None
        self._transport: Transport | None = None
        self._owns_transport = False
        self._job: JobView | None = None
        self._engine: PipelineEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_anchor = (0.0, 0.0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting: asyncio.Task[Any] | None = None
        self._start_stopped = asyncio.Event()  # set when a start() that close() interrupted has cleaned up
        self._started = False
        self._close_task: asyncio.Task[None] | None = None
        self._closed_early = False
        self._user_state = UserState.IDLE
        self._agent_state = AgentState.IDLE  # before start(): not running yet (VideoSDK's initial state)
        # the facts the states are derived from
        self._user_speaking = False
        self._closing = False
        self._tearing_down = False
        self._pushed = 0.0  # seconds of user audio pushed to the pipeline
        self._local_vad: VAD | None = None  # runs when the pipeline does not report the user's speech
        self._answer: SpeechHandle | None = None  # the model's answer to the utterance the local VAD hears
        self._recent_answer: tuple[float, SpeechHandle] | None = None  # (when it began, it): an answer of the
        # model's own that began while the local VAD heard nobody
        self._unanswered: asyncio.TimerHandle | None = None
        self._answers = Answers(AnswersHost(
            history=self.history, engine=self._driven, ready=self._ready, clock=self._loop_time, now=self.now,
            spawn=self._spawn, emit=self._emit, listening=self._emitter.has_listeners, notify=self._notify,
            changed=self._update_states, activity=self._activity, tearing_down=lambda: self._tearing_down,
            hand_over=self._hand_over, first_audio_is_model=pipeline.is_realtime and pipeline.tts is None,
            elapsed=self._elapsed, hook=pipeline.hooks.fire, answered=self._model_answered,
        ))
        self._barge_in: asyncio.TimerHandle | None = None
        self._paused_for: asyncio.TimerHandle | None = None  # resume_on_false_interrupt: the pause's limit
        self._wake: WakeUpTimer | None = None
        # MCP: the agent's MCP servers run with it (nothing starts for an agent without any)
        self._mcp = MCPTools(lambda message: self.report_error(message, code="mcp_server_failed", component="mcp"),
                             self._mcp_tools_withdrawn)

    # ------------------------------------------------------------------ public API

    @property
    def user_state(self) -> UserState:
        return self._user_state

    @property
    def agent_state(self) -> AgentState:
        return self._agent_state

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The speech being played (or, if none is, the next one), if any."""
        return self._answers.speeches[0] if self._answers.speeches else None

    @property
    def current_utterance(self) -> SpeechHandle | None:
        """VideoSDK 1.0's name for ``current_speech``."""
        return self.current_speech

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise AgentSessionError("the session has no transport before start()")
        return self._transport

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        if self._pm is None:
            raise AgentSessionError("plugins are discovered at start()")
        return self._pm

    @property
    def closed(self) -> bool:
        return self._closed_early or (self._close_task is not None and self._close_task.done())

    def on(self, event: str, callback: Callable[[Any], Any] | None = None) -> Any:
        """Subscribe to a session event (sync or async callback; usable as a decorator). An unknown name is a
        ``ValueError`` naming the closest one (the names: ``agentsession.EventName``)."""
        check_event_name(event)
        return self._emitter.on(event, callback)

    def once(self, event: str, callback: Callable[[Any], Any]) -> Any:
        check_event_name(event)
        return self._emitter.once(event, callback)

    def off(self, event: str, callback: Callable[[Any], Any] | None = None) -> None:
        self._emitter.off(event, callback)

    def has_listeners(self, event: str) -> bool:
        """Whether anything is subscribed to ``event`` (a transport's view can leave out what the app shows)."""
        return self._emitter.has_listeners(event)

    def now(self) -> float:
        """Wall-clock time (epoch seconds) that follows the event loop's clock, virtual ones included."""
        loop_t0, wall_t0 = self._clock_anchor
        loop = self._loop
        return wall_t0 + (loop.time() - loop_t0) if loop is not None else time.time()

    def get_context_history(self, *, include_function_calls: bool = False, include_system_messages: bool = False
                            ) -> list[dict[str, Any]]:
        """The conversation so far as plain dicts, as VideoSDK gives it: the user's and the agent's messages,
        with tool calls and their outputs, and system messages, only when asked for."""
        items: list[dict[str, Any]] = self.history.to_dict()["items"]
        return [item for item in items
                if (include_function_calls or item.get("type") not in ("function_call", "function_call_output"))
                and (include_system_messages or item.get("role") != "system")]

    async def start(self, wait_for_participant: bool = False, run_until_shutdown: bool = False, *,
                    transport: Transport | None = None) -> None:
        """Discover plugins, connect the pipeline, start the agent. ``transport`` defaults to the current job's.

        VideoSDK 1.0's lifecycle in one call: ``wait_for_participant`` connects the job (if the entrypoint did not)
        and waits for the user (in file, console and playground modes the input is the user, there at once);
        ``run_until_shutdown`` then returns only when the job ends (room ended, input done, Ctrl-C, the session
        closed), having closed the session and shut the job down.

        ``close()`` while this runs stops it: the pipeline is closed and ``start()`` raises ``AgentSessionError``.
        """
        job = current_job.get() if transport is None else None
        if job is not None and (wait_for_participant or run_until_shutdown) and not job.connected:
            await job.connect()
        if job is not None and wait_for_participant:
            await job.wait_for_participant()
        await self._start(transport)
        if run_until_shutdown:
            if job is not None:
                await job.wait_for_shutdown()
                await self.close()
                await job.shutdown()
            else:
                await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the session has closed."""
        while self._close_task is None and not self._closed_early:
            await self._emitter_closed()
        if self._close_task is not None:
            await asyncio.shield(self._close_task)

    async def _emitter_closed(self) -> None:
        done = asyncio.get_running_loop().create_future()
        self._emitter.once("closed", lambda _: None if done.done() else done.set_result(None))
        await done

    async def _start(self, transport: Transport | None) -> None:
        if self._starting is not None or self._closed_early:
            raise AgentSessionError("an AgentSession can be started once")
        self._starting = asyncio.current_task()
        self._loop = loop = asyncio.get_running_loop()
        self._clock_anchor = (loop.time(), time.time())
        self._set_agent_state(AgentState.STARTING)
        install_log_redaction()
        pm = create_manager(self.plugins)
        freeze_heap_at_first_start()  # the plugins are imported now
        hooks = HookCaller(pm)
        if self.wake_up is not None and self.on_wake_up is None and not hooks.implemented("agentsession_wake_up"):
            raise ValueError(
                f"wake_up={self.wake_up} needs a handler: set session.on_wake_up = async_fn, "
                "or install a plugin implementing agentsession_wake_up"
            )
        self._pm, self._hooks = pm, hooks
        engine = self._engine = self.pipeline.engine
        if not engine.reports_user_speech:
            self._local_vad = self.vad if self.vad is not None else best_vad(pm)
        self._transport = transport or self._job_transport()
        if self._transport is None:
            self._transport = NullTransport()
            self._owns_transport = True
            await self._transport.start()
        self.agent._session = self
        try:
            await self._mcp.start(self.agent.mcp_servers)  # MCP
            tools = self._answers.set_tools(self._agent_tools())
            # the links the engine starts take them, and so does what runs in the tasks the session starts from
            # here on (a cascade's HTTP requests): the context is this task's, copied by each task it creates
            link_taps.set(self._link_taps(pm))
            await engine.start(ModelOptions(self.agent.instructions, tools, self.history))
            if self._closed_early:
                raise asyncio.CancelledError
        except BaseException as exc:  # a missing API key, or close() meanwhile: leave nothing running
            closed_meanwhile = isinstance(exc, asyncio.CancelledError) and self._closed_early
            if closed_meanwhile and self._starting is not None:
                self._starting.uncancel()  # close() cancelled the connecting, not the caller
            await self._abort_start()
            self._start_stopped.set()
            if closed_meanwhile:
                raise AgentSessionError("the session was closed while it was starting") from None
            raise
        self._started = True
        if self.wake_up is not None:
            self._wake = WakeUpTimer(self.wake_up, self._run_wake_up, self._spawn)
        self._tasks.add(self._answers.start_playout(self._transport))
        self._transport.bind(self)
        if self._job is not None:
            self._job.attach_session(self)
        engine.attach(self._on_event)
        self._spawn(self._input_loop(), "audio-input")
        text = self._transport.text_input()
        if text is not None:
            self._spawn(self._text_loop(text), "text-input")
        hooks.call_now("agentsession_session_started", session=self)
        self._update_states()
        self._spawn(self._guarded(self.agent.on_enter(), "on_enter"), "on_enter")
        if self.background_audio is not None:
            self._spawn(self._guarded(self.play_background_audio(self.background_audio), "background audio"),
                        "background-audio")

    def _link_taps(self, pm: Any) -> tuple[LinkTap, ...]:
        """What the plugins' ``agentsession_link_tap`` return (one that raises is logged and skipped)."""
        taps: list[LinkTap] = []
        for impl in pm.hook.agentsession_link_tap.get_hookimpls():
            try:
                tap = impl.function(session=self)
            except Exception:
                logger.exception("plugin %r raised in agentsession_link_tap", impl.plugin_name)
                continue
            if tap is not None:
                taps.append(tap)
        return tuple(taps)

    async def say(self, message: str | None = None, *, interruptible: bool | None = None,
                  allow_interruptions: bool | None = None, wait_for_playback: bool = False,
                  add_to_chat_context: bool = True, text: str | None = None) -> SpeechHandle:
        """Speak ``message``; returns its handle (``await handle`` waits until it was played out; so does
        ``wait_for_playback``). ``interruptible`` (VideoSDK's name) or ``allow_interruptions``: whether the
        user's speech and ``interrupt()`` may cut it; ``add_to_chat_context=False`` keeps it out of the history
        (a hold message, say). ``text`` is the older name of ``message``."""
        message = _one_of("message", message, "text", text)
        if not isinstance(message, str) or not message.strip():
            raise ValueError("say() needs non-empty text")
        allow = _one_of("interruptible", interruptible, "allow_interruptions", allow_interruptions, default=True)
        handle = self._answers.new_speech("say", allow_interruptions=allow)
        if handle is not None:
            handle.in_history = add_to_chat_context
            self._update_states()
            await self._driven().say(message, response_id=handle.next_response_id())
            if wait_for_playback:
                await handle.wait_for_playout()
        return self._answers.handle_or_done(handle)

    async def reply(self, instructions: str | None = None, wait_for_playback: bool = True, *,
                    interruptible: bool | None = None, allow_interruptions: bool | None = None) -> SpeechHandle:
        """Generate a response now, with optional extra ``instructions``.

        As in VideoSDK, with ``wait_for_playback`` (the default) it returns once the answer has been played
        out, and the user's speech does not barge in on it (``interrupt()`` still can, if it is
        ``interruptible``, VideoSDK's name for ``allow_interruptions``).
        """
        allow = _one_of("interruptible", interruptible, "allow_interruptions", allow_interruptions, default=True)
        handle = self._answers.new_speech("reply", allow_interruptions=allow, barge_in=not wait_for_playback)
        if handle is not None:
            self._update_states()
            await self._driven().reply(instructions, response_id=handle.next_response_id())
            if wait_for_playback:
                await handle.wait_for_playout()
        return self._answers.handle_or_done(handle)

    async def send_text(self, text: str) -> SpeechHandle:
        """The user typed ``text``: a user turn like speech (it interrupts what the agent is saying)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_text() needs non-empty text")
        if not self._ready("send_text"):
            return self._answers.handle_or_done(None)
        self._answers.interrupt_speeches([s for s in self._answers.speeches if s.barge_in])
        self._emit(UserTranscribed(text=text, final=True, typed=True))
        self._answers.add_user_message(text)
        self.pipeline.hooks.fire("user_turn_start", text)
        self.pipeline.hooks.fire("user_turn_end")
        handle = self._answers.new_speech("text")
        assert handle is not None
        self._update_states()
        await self._driven().send_text(text, response_id=handle.next_response_id())
        return handle

    def interrupt(self, *, force: bool = False) -> Awaitable[None]:
        """Stop what the agent is saying and about to say; drop unplayed audio; cut the history (and the
        model's context) at what the user heard. Speeches that do not allow interruptions keep going
        unless ``force``. It acts at once, awaited or not (VideoSDK's is synchronous); awaiting it waits
        until the pipeline has been told."""
        told: asyncio.Task[None] | None = None
        if self._started and not self._tearing_down:
            self._cancel_barge_in()
            told = self._answers.interrupt_speeches(
                [s for s in self._answers.speeches if force or s.allow_interruptions])
            self._update_states()
        if told is not None:
            return asyncio.shield(told)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call once what is being said has been played (at most ``EXIT_PLAYOUT_TIMEOUT`` seconds):
        the session closes and its job ends (VideoSDK's ``session.hangup()``; ``agent.hangup()`` calls it)."""
        if not self._started or self._closing:
            await self.close(reason)
            return
        own = TOOL_OF.get()
        waiting = [s.wait_for_playout() for s in self._answers.speeches if s is not own]
        if waiting:
            try:
                async with asyncio.timeout(EXIT_PLAYOUT_TIMEOUT):
                    await asyncio.gather(*waiting)
            except TimeoutError:
                logger.warning("hangup: what was being said took over %.0f s; hanging up", EXIT_PLAYOUT_TIMEOUT)
        await self.close(reason)

    async def play_background_audio(self, config: BackgroundAudioHandlerConfig | None = None,
                                    override_thinking: bool = True) -> None:
        """Play a track under the agent's voice (VideoSDK's; ``agent.play_background_audio(file=...)`` too): mixed
        into every frame the transport gets, ducked while the agent speaks, alone while it is silent.
        ``override_thinking=False``: no thinking sound while it plays."""
        config = config if config is not None else BackgroundAudioHandlerConfig(looping=True)
        mixer = self._mixer()
        if mixer is None or not config.enabled:
            return
        mixer.background = await self._track(config, office_sound)
        mixer.override_thinking = override_thinking
        assert self._answers.playout is not None
        self._answers.playout.kick()

    async def stop_background_audio(self) -> None:
        if self._answers.playout is not None and self._answers.playout.mixer is not None:
            self._answers.playout.mixer.background = None

    def _mixer(self) -> BackgroundMixer | None:
        playout = self._answers.playout
        if playout is None or self._tearing_down:
            return None
        if playout.mixer is None:
            playout.mixer = BackgroundMixer(self.transport.sample_rate, self.transport.channels)
        return playout.mixer

    async def _track(self, config: BackgroundAudioHandlerConfig, default: Callable[[int], Any]) -> Track:
        rate = self.transport.sample_rate
        samples = default(rate) if config.file_path is None else await asyncio.get_running_loop().run_in_executor(
            None, load_track, config.file_path, rate)
        return Track(samples, config.volume, config.looping)

    def _thinking_audio(self, thinking: bool) -> None:
        """The agent's thinking sound (``agent.set_thinking_audio``) plays while it thinks, and stops when not."""
        config = getattr(self.agent, "thinking_audio", None)
        if config is None or not config.enabled:
            return
        mixer = self._mixer()
        if mixer is None:
            return
        if not thinking:
            mixer.thinking = None
        elif mixer.thinking is None:
            source = thinking_sound(self.transport.sample_rate) if config.file_path is None else None
            if source is None:
                self._spawn(self._load_thinking(config), "thinking-audio")
            else:
                mixer.thinking = Track(source, config.volume, looping=True)
            assert self._answers.playout is not None
            self._answers.playout.kick()

    async def _load_thinking(self, config: BackgroundAudioHandlerConfig) -> None:
        track = await self._track(config, thinking_sound)
        mixer = self._mixer()
        if mixer is not None and self._agent_state is AgentState.THINKING:
            mixer.thinking = track
            assert self._answers.playout is not None
            self._answers.playout.kick()

    def sync_agent(self) -> Awaitable[None]:
        """The running agent's instructions or tools changed (``agent.update_tools``): the model is told in
        the background; await the result to wait for it."""
        if not self._started or self._closing:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        tools = self._answers.set_tools(self._agent_tools())
        return self._spawn(self._driven().update_agent(self.agent.instructions, tools), "update-agent")

    def report_error(self, message: str, *, recoverable: bool = True, code: str | None = None,
                     component: str | None = None) -> None:
        """Emit an ``error`` event from outside the pipeline (a transport's dropped connection, say);
        a non-recoverable one closes the session."""
        self._emit(ErrorOccurred(message=message, recoverable=recoverable, code=code, component=component))
        if not recoverable and self._started and not self._closing:
            self._spawn(self.close("error"), "close")

    async def run(self, *, user_input: str, timeout: float = 60.0) -> RunResult:
        """Test API: send ``user_input`` as typed text and return what the turn added to the history."""
        start = len(self.history)
        handle = await self.send_text(user_input)
        await asyncio.wait_for(handle.wait_for_playout(), timeout)
        return RunResult(self.history.items[start + 1 :])

    async def update_agent(self, agent: Agent) -> None:
        """Hand the conversation over to ``agent``: the old agent's ``on_exit`` runs, the model's instructions
        and tools change in place (the conversation is kept unless ``agent.inherit_context`` is False), then
        the new agent's ``on_enter`` runs; what it asks to say is queued before anything the model says next
        (this waits for ``on_enter`` up to ``HANDOFF_TIMEOUT`` seconds; it goes on in the background after)."""
        if not isinstance(agent, Agent):
            raise TypeError(f"update_agent() needs an Agent, got {type(agent).__name__}")
        old, self.agent = self.agent, agent
        await self._guarded(old.on_exit(), "on_exit")
        if not agent.inherit_context:
            kept = [i for i in self.history.items if isinstance(i, ChatMessage) and i.role == "system"]
            self.history.items[:] = kept
        await self._mcp.start(agent.mcp_servers)  # MCP: the old agent's servers stop, the new one's start
        tools = self._answers.set_tools(self._agent_tools())
        agent._session = self
        await self._driven().update_agent(agent.instructions, tools)
        self._emit(AgentChanged(agent=agent, previous=old))
        entering = self._spawn(self._guarded(agent.on_enter(), "on_enter"), "on_enter")
        await asyncio.wait((entering,), timeout=HANDOFF_TIMEOUT)

    async def close(self, reason: str = "closed") -> None:
        """Stop everything the session started; idempotent; safe from inside a tool or callback and while
        ``start()`` is still connecting. The agent's ``on_exit`` may still ``say()`` a goodbye: it is played
        (within ``EXIT_PLAYOUT_TIMEOUT`` seconds) before the session stops."""
        if not self._started:
            self._closed_early = True  # start() is refused from now on, or stops where it is
            starting = self._starting
            if starting is not None and not starting.done() and starting is not asyncio.current_task():
                starting.cancel()  # start() turns this into "closed while it was starting"
                await self._start_stopped.wait()
            return
        if self._close_task is None:
            # the caller's context (a connection's log tag, say), but closing from a tool is not "inside" it
            context = contextvars.copy_context()
            context.run(TOOL_OF.set, None)
            self._close_task = asyncio.get_running_loop().create_task(self._close(reason), context=context)
            self._close_task.add_done_callback(_retrieve)
        await asyncio.shield(self._close_task)

    async def leave(self) -> None:
        """VideoSDK's name for ``close()``: the agent leaves the room and the job ends."""
        await self.close("left")

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"agentsession:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("session task %s failed", task.get_name(), exc_info=task.exception())

    async def _guarded(self, awaitable: Awaitable[Any], what: str) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("%s raised", what)
            self._emit(ErrorOccurred(message=f"{what} raised {type(exc).__name__}: {exc}", recoverable=True,
                                     code=f"{what}_failed", component="agent"))

    def _job_transport(self) -> Transport | None:
        job = current_job.get()
        if job is None:
            return None
        if not job.connected or job.transport is None:
            raise AgentSessionError("call `await ctx.connect()` before `session.start()`")
        self._job = job
        transport: Transport = job.transport
        return transport

    async def _abort_start(self) -> None:
        self._closed_early = True
        try:
            await self._driven().close()
        except Exception:
            logger.exception("pipeline close failed")
        await self._mcp.stop()  # MCP
        if self._owns_transport and self._transport is not None:
            await self._transport.close()
        if self._hooks is not None:
            await self._hooks.aclose()

    def _ready(self, what: str) -> bool:
        if not self._started:
            raise AgentSessionError(f"{what}() before session.start()")
        if self._tearing_down or (self._closing and not _IN_EXIT.get()):
            logger.debug("%s() ignored: the session is closing", what)
            return False
        if self._closing and self._transport is not None and self._transport.user_gone:
            logger.debug("%s() ignored: the user is gone (%s)", what, type(self._transport).__name__)
            return False
        return True

    def _driven(self) -> PipelineEngine:
        """The engine of the pipeline (made at ``start()``)."""
        if self._engine is None:
            raise AgentSessionError("the pipeline runs once the session started")
        return self._engine

    def _elapsed(self) -> float:
        return self._loop_time() - self._clock_anchor[0]

    def _activity(self) -> None:
        if self._wake is not None:
            self._wake.activity()

    async def _hand_over(self, target: HandoffTarget) -> None:
        if isinstance(target, Agent):
            await self.update_agent(target)

    async def _close(self, reason: str) -> None:
        self._closing = True
        self._cancel_barge_in()
        if self._unanswered is not None:
            self._unanswered.cancel()
        if self._wake is not None:
            self._wake.cancel()
        self._answers.interrupt_speeches(list(self._answers.speeches))
        self._update_states()
        token = _IN_EXIT.set(True)
        try:
            async with asyncio.timeout(EXIT_PLAYOUT_TIMEOUT):
                await self.agent.on_exit()
                for speech in list(self._answers.speeches):  # a goodbye said in on_exit is heard
                    await speech.wait_for_playout()
        except TimeoutError:
            logger.warning("on_exit and its goodbye took over %.0f s; closing anyway", EXIT_PLAYOUT_TIMEOUT)
        except Exception:
            logger.exception("on_exit raised")
        finally:
            _IN_EXIT.reset(token)
        self._tearing_down = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._driven().close()
        except Exception:
            logger.exception("pipeline close failed")
        await self._mcp.stop()  # MCP
        await self.pipeline.hooks.aclose()
        if self._transport is not None:
            self._transport.clear()
            if self._owns_transport:
                await self._transport.close()
        for speech in self._answers.speeches:
            speech._finish(interrupted=True)
        self._answers.speeches.clear()
        self._emit(Closed(reason=reason))
        self._notify("agentsession_session_closed", reason=reason)
        await asyncio.sleep(0)  # let sync "closed" callbacks run before async ones are cancelled
        await self._emitter.aclose()
        if self._hooks is not None:
            await self._hooks.aclose()
        if self._job is not None:
            self._job.session_closed(self, reason)

    # ------------------------------------------------------------------ input

    async def _input_loop(self) -> None:
        engine = self._driven()
        converter = AudioConverter(engine.input_sample_rate)
        push, convert, vad, listening = engine.push_audio, converter.push, self._local_vad, self._emitter.has_listeners

        def take(frames: list[AudioFrame]) -> None:
            for out in frames:
                self._pushed += out.duration
                push(out)
                if vad is not None:
                    for event in vad.push(out):
                        self._on_local_vad(event.kind == "start", event.position)
                if listening("user_audio"):
                    self._emit(UserAudio(frame=out, at=self._elapsed()))

        async for frame in self.transport.audio_input():
            take(convert(frame))
        if not self._closing:  # the input ended: what the converter held back (resampler delay, a partial frame)
            take(converter.flush())

    async def _text_loop(self, texts: Any) -> None:
        """Typed lines are turns in a row: each waits for the answer to the one before."""
        async for text in texts:
            if text.strip():
                handle = await self.send_text(text)
                await handle.wait_for_playout()

    def _on_event(self, event: PipelineEvent | None) -> None:
        """The pipeline's events arrive here synchronously, on the loop, as the engine emits them."""
        if event is None:
            if not self._closing:
                self._emit(ErrorOccurred(message="the pipeline ended its event stream", recoverable=False,
                                         code="pipeline_ended", component="pipeline"))
                self._spawn(self.close("pipeline ended"), "close")
            return
        if self._tearing_down:
            return
        try:
            if type(event) is AgentAudio:  # the hot path (a frame every 20 ms): states change only if it starts audio
                answers = self._answers
                response = answers.response(event.response_id)
                if response is not None and answers.on_agent_audio(response, event.frame):
                    self._update_states()
                return
            self._handle(event)
        except Exception:
            logger.exception("handling %s failed", type(event).__name__)
        self._update_states()

    def _handle(self, event: PipelineEvent) -> None:
        if isinstance(event, AgentAudio):
            response = self._answers.response(event.response_id)
            if response is not None:
                self._answers.on_agent_audio(response, event.frame)
        elif isinstance(event, AgentTranscript):
            response = self._answers.response(event.response_id)
            if response is not None:
                self._answers.on_transcript(response, event)
        elif isinstance(event, ToolCall):
            response = self._answers.response(event.response_id)
            if response is not None:
                self._answers.on_tool_call(response, event)
        elif isinstance(event, ResponseDone):
            response = self._answers.response(event.response_id)
            if response is not None:
                self._answers.on_response_done(response, event)
        elif isinstance(event, UserSpeechStarted):
            if self._local_vad is None:  # with a VAD of its own, the session knows sooner than this model
                self._on_user_speech_started()
        elif isinstance(event, UserSpeechStopped):
            if self._local_vad is None:
                self._on_user_speech_stopped(event)
        elif isinstance(event, UserTranscript):
            self._on_user_transcript(event)
        elif isinstance(event, ToolCallCancelled):
            self._answers.tools.cancel(event.ids)
        elif isinstance(event, Error):
            self.report_error(event.message, recoverable=event.recoverable, code=event.code,
                              component=event.component or ("realtime" if self.pipeline.is_realtime else None))
        elif isinstance(event, Reconnecting):
            self._on_link_lost(event)
        elif isinstance(event, Reconnected):
            self._emit(ReconnectedEvent(downtime=event.downtime, audio_lost=event.audio_lost, timestamp=self.now()))

    def _on_user_transcript(self, event: UserTranscript) -> None:
        self._emit(UserTranscribed(text=event.text, final=event.final, end_of_turn=event.end_of_turn))
        config = self.interrupt_config
        if (self._barge_in is not None and config is not None and config.mode != "VAD_ONLY"
                and len(event.text.split()) >= config.interrupt_min_words):
            self._cancel_barge_in()  # enough words: an interruption, however short the speech so far
            self._barge_in_now()
        pending = self._answers.pending_turn
        if event.final and pending is not None and not pending.responses:
            metrics = pending.metrics
            metrics.stt_latency = event.stt_latency
            if event.end_of_turn is not None:
                metrics.end_of_turn_reason = event.end_of_turn  # type: ignore[assignment]
            if event.endpointing_delay is not None:  # the end of turn, whole: the VAD's silence + this wait
                metrics.endpointing_delay = event.endpointing_delay
                metrics.eou_delay = (metrics.vad_silence or 0.0) + event.endpointing_delay
        if event.final and event.text.strip():
            self._answers.add_user_message(event.text)
            self.pipeline.hooks.fire("user_turn_start", event.text)

    # ------------------------------------------------------------------ the user's speech

    def _on_user_speech_started(self) -> None:
        self._user_speaking = True
        self._activity()
        if self.allow_interruptions and self._barge_in is None and self._barge_in_targets():
            config = self.interrupt_config
            if self.min_interruption_duration == 0 and (config is None or config.mode != "STT_ONLY"):
                self._barge_in_now()
                return
            # VAD_ONLY/HYBRID: the user's speech must last; STT_ONLY: only their words count (a long wait here)
            wait = self.min_interruption_duration if config is None or config.mode != "STT_ONLY" else 1e9
            loop = asyncio.get_running_loop()
            self._barge_in = loop.call_later(wait, self._confirm_barge_in)
            playout = self._answers.playout
            if config is not None and config.resume_on_false_interrupt and playout is not None and self._answers.playing:
                playout.pause()  # quiet at once; it plays on if this was no interruption
                self._paused_for = loop.call_later(config.false_interrupt_pause_duration, self._resume_playout)

    def _resume_playout(self) -> None:
        if self._paused_for is not None:
            self._paused_for.cancel()
            self._paused_for = None
        if self._answers.playout is not None:
            self._answers.playout.resume()

    def _on_user_speech_stopped(self, event: UserSpeechStopped) -> None:
        self._user_speaking = False
        if self._barge_in is not None:
            self._false_interruption()
            return
        silence = max(0.0, self._pushed - event.audio_end) if event.audio_end is not None else None
        pending = self._answers.end_user_turn(origin=self._loop_time() - (silence or 0.0), eou=silence)
        if pending is not None:
            pending.metrics.vad_silence = silence
            if self.pipeline.is_realtime:
                pending.metrics.end_of_turn_reason = "model_vad"  # the model's own voice detection

    def _on_local_vad(self, started: bool, position: float) -> None:
        """The session's own VAD heard the user start or stop: the user state, barge-in and the wake-up follow
        it; the model still decides when the turn is over and answers. One rule for the turn: an answer the
        model starts while the VAD hears the user, or at most ``LATE_VAD_GRACE`` s before the VAD reported the
        start of speech, belongs to that utterance: the user's speech does not barge in on it, and its end opens
        no turn waiting for an answer already given."""
        if started:
            recent, self._recent_answer = self._recent_answer, None
            self._answer = None
            if recent is not None and not recent[1].done() and self._loop_time() - recent[0] <= LATE_VAD_GRACE:
                self._adopt(recent[1])
            self._on_user_speech_started()
        else:
            self._user_speaking = False
            if self._answer is not None:  # answered already: the user's wait began where they stopped
                self._answers.speech_ended_at(self._answer, self._loop_time() - max(0.0, self._pushed - position))
            if self._barge_in is not None:
                self._false_interruption()
            elif self._answer is None and self._answers.pending_turn is None:
                # the model answers the turn when it judges it over; if it does not within a while, it won't
                silence = max(0.0, self._pushed - position)
                pending = self._answers.end_user_turn(origin=self._loop_time() - silence, eou=silence)
                if pending is not None:
                    pending.metrics.vad_silence = silence
                    if self._unanswered is not None:
                        self._unanswered.cancel()
                    self._unanswered = asyncio.get_running_loop().call_later(
                        UNANSWERED_AFTER, self._answers.drop_if_unanswered, pending)
            self._answer = None
        self._update_states()

    def _model_answered(self, speech: SpeechHandle) -> None:
        """The model started an answer of its own accord (``speech`` is it)."""
        if self._local_vad is None:
            return
        if self._user_speaking:
            self._adopt(speech)  # the answer to the utterance the VAD still hears
        else:
            self._recent_answer = (self._loop_time(), speech)  # or to one the VAD has not reported yet

    def _adopt(self, speech: SpeechHandle) -> None:
        """``speech`` answers the utterance the local VAD hears."""
        self._answer = speech
        speech.trigger = speech.metrics.trigger = "user"

    def _false_interruption(self) -> None:
        self._cancel_barge_in()
        logger.debug("false interruption ignored (shorter than %.2f s)", self.min_interruption_duration)
        self._emit(FalseInterruption(timestamp=self.now()))

    def _on_link_lost(self, event: Reconnecting) -> None:
        """The provider link is down: what it said about the user (speaking, a turn being answered) no longer
        holds; states are derived again from what is known."""
        self._emit(ReconnectingEvent(attempt=event.attempt, reason=event.reason, timestamp=self.now()))
        self._cancel_barge_in()
        self._user_speaking = False
        self._answers.drop_pending_turn()  # its answer will not come from this link

    def _confirm_barge_in(self) -> None:
        self._barge_in = None
        if self._user_speaking:
            self._barge_in_now()
            self._update_states()

    def _barge_in_targets(self) -> list[SpeechHandle]:
        """What the user's speech interrupts: the speeches that allow it, but the answer to that very speech."""
        return [s for s in self._answers.speeches if s.barge_in and s is not self._answer]

    def _barge_in_now(self) -> None:
        self._answers.interrupt_speeches(self._barge_in_targets())
        self._resume_playout()  # what was paused is stopped now; the next answer plays

    def _cancel_barge_in(self) -> None:
        if self._barge_in is not None:
            self._barge_in.cancel()
            self._barge_in = None
        self._resume_playout()

    # ------------------------------------------------------------------ states and wake-up

    def _update_states(self) -> None:
        playing = self._answers.playing
        if self._closing:
            agent = AgentState.CLOSING  # a goodbye said in on_exit plays while closing
        elif playing:
            agent = AgentState.SPEAKING
        elif self._user_speaking:
            agent = AgentState.LISTENING
        elif self._answers.speeches:
            agent = AgentState.THINKING
        else:
            agent = AgentState.IDLE
        user = UserState.SPEAKING if self._user_speaking else UserState.LISTENING if playing else UserState.IDLE
        if user != self._user_state:
            old, self._user_state = self._user_state, user
            self._emit(UserStateChanged(state=user, previous=old, timestamp=self.now()))
            self._notify("agentsession_user_state_changed", old=old, new=user)
        self._set_agent_state(agent)
        if self._wake is not None:
            self._wake.update(agent is AgentState.IDLE and not self._user_speaking and not self._closing)

    def _set_agent_state(self, agent: AgentState) -> None:
        if agent == self._agent_state:  # one event per real change
            return
        old, self._agent_state = self._agent_state, agent
        if AgentState.THINKING in (agent, old) and self._started:
            self._thinking_audio(agent is AgentState.THINKING)
        self._emit(AgentStateChanged(state=agent, previous=old, timestamp=self.now()))
        if agent is not AgentState.STARTING:
            self._notify("agentsession_agent_state_changed", old=old, new=agent)

    async def _run_wake_up(self) -> None:
        assert self.wake_up is not None and self._hooks is not None
        if self._job is not None and self._job.shutting_down:  # the room ended: nobody to wake up
            return
        idle_s = float(self.wake_up)
        self._emit(WakeUp(idle_s=idle_s, timestamp=self.now()))
        try:
            if self.on_wake_up is not None:
                await call_handler(self.on_wake_up)
            else:
                await self._hooks.wake_up(session=self, idle_s=idle_s)
        except Exception as exc:
            logger.exception("wake-up handler raised")
            self._emit(ErrorOccurred(message=f"wake-up handler raised {exc!r}", recoverable=True,
                                     code="wake_up_failed", component="agent"))

    # ------------------------------------------------------------------ MCP

    def _agent_tools(self) -> list[FunctionTool]:
        """The agent's own tools, then its MCP servers' (an MCP tool named like one of the agent's is left out)."""
        tools = {t.name: t for t in self.agent.tools}
        for tool in self._mcp.tools:
            tools.setdefault(tool.name, tool)
        return list(tools.values())

    async def _mcp_tools_withdrawn(self) -> None:
        """An MCP server died: the model is offered the tools left (a model that can't change them mid-session
        keeps offering them; their calls are answered with an error)."""
        if self._tearing_down:
            return
        tools = self._answers.set_tools(self._agent_tools())
        try:
            await self._driven().update_agent(self.agent.instructions, tools)
        except NotImplementedError:
            logger.warning("%s cannot change its tools mid-session: the lost MCP tools stay offered and fail",
                           type(self._driven()).__name__)

    # ------------------------------------------------------------------ helpers

    def _loop_time(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _emit(self, event: SessionEvent) -> None:
        self._emitter.emit(event.event_name, event)

    def _notify(self, hook: str, **kwargs: Any) -> None:
        if self._hooks is not None:
            self._hooks.notify(hook, session=self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<AgentSession agent={type(self.agent).__name__} pipeline={type(self.pipeline).__name__} "
            f"agent_state={self._agent_state.value} user_state={self._user_state.value}>"
        )


def _one_of(name: str, value: Any, other_name: str, other: Any, *, default: Any = None) -> Any:
    """One argument known by two names (VideoSDK's and ours): either, not both."""
    if value is not None and other is not None and value != other:
        raise TypeError(f"give {name}= or {other_name}=, not both")
    return value if value is not None else other if other is not None else default


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("closing the session failed", exc_info=task.exception())
