"""``AgentSession``: the coordinator. It runs an agent on a pipeline and a transport, and delegates: playout
to ``SpeechPlayout``, answers to ``SpeechHandle``s, tools to ``ToolRunner``, the wake-up to ``WakeUpTimer``,
plugin hooks to ``HookCaller``. States are derived in one place (``_update_states``) from a few facts."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from ._agent import Agent
from ._audio import AudioConverter, AudioFrame
from ._chat import ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from ._emitter import EventEmitter
from ._errors import AgentSessionError
from ._hooks import HookCaller
from ._manager import create_manager
from ._models import ModelOptions
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    PipelineEvent,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._pipelines import ConversationFlow, Pipeline
from ._secrets import install_log_redaction
from ._speech import Response, SpeechHandle
from ._speech_playout import SpeechPlayout
from ._states import AgentState, UserState
from ._tool_runner import ToolRunner
from ._tools import ToolResult
from ._transport import NullTransport, Transport
from ._wake_up import WakeUpTimer, call_handler

if TYPE_CHECKING:
    from ._worker import JobContext

logger = logging.getLogger("agentsession.session")

_IN_EXIT: contextvars.ContextVar[bool] = contextvars.ContextVar("agentsession_in_exit", default=False)
#: the speech whose tool is running (in that tool's task): interrupt() from a tool stops its audio, not the tool
_TOOL_OF: contextvars.ContextVar[SpeechHandle | None] = contextvars.ContextVar("agentsession_tool_of", default=None)
EXIT_PLAYOUT_TIMEOUT = 5.0  # on_exit plus its goodbye's playout, at most


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


class _RecentIds:
    """The ids of the last ``size`` responses that ended or were stopped (a bounded set)."""

    def __init__(self, size: int = 1024) -> None:
        self._ids: dict[str, None] = {}
        self._size = size

    def __contains__(self, rid: object) -> bool:
        return rid in self._ids

    def add(self, rid: str) -> None:
        self._ids[rid] = None
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]


class AgentSession:
    """Runs ``agent`` on ``pipeline`` over the transport of the current job (DESIGN.md sections 4-6)."""

    def __init__(
        self,
        agent: Agent,
        pipeline: Pipeline,
        conversation_flow: ConversationFlow | None = None,
        wake_up: float | None = None,
        plugins: Sequence[object] | None = None,
        *,
        allow_interruptions: bool = True,
        min_interruption_duration: float = 0.5,
    ) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an Agent, got {type(agent).__name__}")
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"pipeline must be a Pipeline (RealTimePipeline or CascadingPipeline), got {type(pipeline).__name__}"
            )
        if conversation_flow is not None and not isinstance(conversation_flow, ConversationFlow):
            raise TypeError(f"conversation_flow must be a ConversationFlow, got {type(conversation_flow).__name__}")
        if wake_up is not None and (isinstance(wake_up, bool) or not wake_up > 0):
            raise ValueError(f"wake_up must be a number of seconds > 0, got {wake_up!r}")
        if min_interruption_duration < 0:
            raise ValueError("min_interruption_duration must be >= 0")
        self.agent = agent
        self.pipeline = pipeline
        self.conversation_flow = conversation_flow
        self.wake_up = wake_up
        self.plugins = list(plugins or ())
        self.allow_interruptions = allow_interruptions
        self.min_interruption_duration = min_interruption_duration
        self.on_wake_up: Callable[[], Awaitable[None] | None] | None = None
        self.history = ChatContext()
        self._emitter = EventEmitter()
        self._pm: pluggy.PluginManager | None = None
        self._hooks: HookCaller | None = None
        self._transport: Transport | None = None
        self._owns_transport = False
        self._job: JobContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_anchor = (0.0, 0.0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting: asyncio.Task[Any] | None = None
        self._start_stopped = asyncio.Event()  # set when a start() that close() interrupted has cleaned up
        self._started = False
        self._close_task: asyncio.Task[None] | None = None
        self._closed_early = False
        self._user_state = UserState.IDLE
        self._agent_state = AgentState.STARTING
        # the facts the states are derived from
        self._user_speaking = False
        self._user_turn_pending: SpeechHandle | None = None  # the user's turn ended; its answer is awaited
        self._closing = False
        self._tearing_down = False
        # answers
        self._speeches: list[SpeechHandle] = []  # not done, in the order they were asked for
        self._expected: dict[str, SpeechHandle] = {}  # response id asked for -> its speech
        self._responses: dict[str, Response] = {}  # live responses by id
        self._stopped = _RecentIds()  # responses stopped or ended: later events of theirs are dropped
        self._playout: SpeechPlayout | None = None
        self._tools = ToolRunner(self._spawn, self._on_tool_result)
        self._pushed = 0.0  # seconds of user audio pushed to the pipeline
        self._turns = 0
        self._barge_in: asyncio.TimerHandle | None = None
        self._wake: WakeUpTimer | None = None

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
        return self._speeches[0] if self._speeches else None

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
        """Subscribe to a session event (sync or async callback; usable as a decorator)."""
        return self._emitter.on(event, callback)

    def once(self, event: str, callback: Callable[[Any], Any]) -> Any:
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

    def get_context_history(self) -> list[dict[str, Any]]:
        """The conversation so far as plain dicts (VideoSDK's name for ``history.to_dict()["items"]``)."""
        items: list[dict[str, Any]] = self.history.to_dict()["items"]
        return items

    async def start(self, *, transport: Transport | None = None) -> None:
        """Discover plugins, connect the pipeline, start the agent. ``transport`` defaults to the current job's.

        ``close()`` while this runs stops it: the pipeline is closed and ``start()`` raises ``AgentSessionError``.
        """
        if self._starting is not None or self._closed_early:
            raise AgentSessionError("an AgentSession can be started once")
        self._starting = asyncio.current_task()
        self._start_stopped = asyncio.Event()
        self._loop = loop = asyncio.get_running_loop()
        self._clock_anchor = (loop.time(), time.time())
        self._set_agent_state(AgentState.STARTING)
        install_log_redaction()
        pm = create_manager(self.plugins)
        hooks = HookCaller(pm)
        if self.wake_up is not None and self.on_wake_up is None and not hooks.implemented("agentsession_wake_up"):
            raise ValueError(
                f"wake_up={self.wake_up} needs a handler: set session.on_wake_up = async_fn, "
                "or install a plugin implementing agentsession_wake_up"
            )
        self._pm, self._hooks = pm, hooks
        self._transport = transport or self._job_transport()
        if self._transport is None:
            self._transport = NullTransport()
            self._owns_transport = True
            await self._transport.start()
        self._tools.tools = {t.name: t for t in self.agent.tools}
        self.agent._session = self
        self.pipeline.conversation_flow = self.conversation_flow
        try:
            await self.pipeline.start(ModelOptions(self.agent.instructions, list(self._tools.tools.values()),
                                                   self.history))
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
        self._playout = SpeechPlayout(self._transport, self._on_playout_started, self._on_played_out,
                                      self._on_frame_played, self._update_states)
        self._tasks.add(self._playout.start())
        self._transport.bind(self)
        if self._job is not None:
            self._job._attach(self)
        self.pipeline.attach(self._on_event)
        self._spawn(self._input_loop(), "audio-input")
        text = self._transport.text_input()
        if text is not None:
            self._spawn(self._text_loop(text), "text-input")
        hooks.call_now("agentsession_session_started", session=self)
        self._update_states()
        self._spawn(self._guarded(self.agent.on_enter(), "on_enter"), "on_enter")

    async def say(self, text: str, *, allow_interruptions: bool = True, wait_for_playback: bool = False
                  ) -> SpeechHandle:
        """Speak ``text``; returns its handle (``await handle`` waits until it was played out; so does
        ``wait_for_playback``)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("say() needs non-empty text")
        handle = self._new_speech("say", allow_interruptions=allow_interruptions)
        if handle is not None:
            await self.pipeline.say(text, response_id=handle.next_response_id())
            if wait_for_playback:
                await handle.wait_for_playout()
        return self._handle_or_done(handle)

    async def reply(self, instructions: str | None = None, wait_for_playback: bool = True, *,
                    allow_interruptions: bool = True) -> SpeechHandle:
        """Generate a response now, with optional extra ``instructions``.

        As in VideoSDK, with ``wait_for_playback`` (the default) it returns once the answer has been played
        out, and the user's speech does not barge in on it (``interrupt()`` still can, if it allows
        interruptions).
        """
        handle = self._new_speech("reply", allow_interruptions=allow_interruptions, barge_in=not wait_for_playback)
        if handle is not None:
            await self.pipeline.reply(instructions, response_id=handle.next_response_id())
            if wait_for_playback:
                await handle.wait_for_playout()
        return self._handle_or_done(handle)

    async def send_text(self, text: str) -> SpeechHandle:
        """The user typed ``text``: a user turn like speech (it interrupts what the agent is saying)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_text() needs non-empty text")
        if not self._ready("send_text"):
            return self._handle_or_done(None)
        self._interrupt_speeches([s for s in self._speeches if s.barge_in])
        self._emit("user_transcript", {"text": text, "final": True, "typed": True})
        self._add_user_message(text)
        handle = self._new_speech("text")
        assert handle is not None
        await self.pipeline.send_text(text, response_id=handle.next_response_id())
        return handle

    async def interrupt(self, *, force: bool = False) -> None:
        """Stop what the agent is saying and about to say; drop unplayed audio; cut the history (and the
        model's context) at what the user heard. Speeches that do not allow interruptions keep going
        unless ``force``."""
        if self._started and not self._tearing_down:
            self._cancel_barge_in()
            told = self._interrupt_speeches([s for s in self._speeches if force or s.allow_interruptions])
            if told is not None:
                await asyncio.shield(told)

    def report_error(self, message: str, *, recoverable: bool = True, code: str | None = None) -> None:
        """Emit an ``error`` event from outside the pipeline (a transport's dropped connection, say);
        a non-recoverable one closes the session."""
        self._emit("error", {"message": message, "recoverable": recoverable, "code": code})
        if not recoverable and self._started and not self._closing:
            asyncio.get_running_loop().create_task(self.close("error"))

    async def run(self, *, user_input: str, timeout: float = 60.0) -> RunResult:
        """Test API: send ``user_input`` as typed text and return what the turn added to the history."""
        start = len(self.history)
        handle = await self.send_text(user_input)
        await asyncio.wait_for(handle.wait_for_playout(), timeout)
        return RunResult(self.history.items[start + 1 :])

    async def update_agent(self, agent: Agent) -> None:
        """Hand the conversation over to ``agent``: the old agent's ``on_exit`` runs, the model's instructions
        and tools change in place (the conversation is kept unless ``agent.inherit_context`` is False), then
        the new agent's ``on_enter`` runs."""
        if not isinstance(agent, Agent):
            raise TypeError(f"update_agent() needs an Agent, got {type(agent).__name__}")
        old, self.agent = self.agent, agent
        await self._guarded(old.on_exit(), "on_exit")
        if not agent.inherit_context:
            kept = [i for i in self.history.items if isinstance(i, ChatMessage) and i.role == "system"]
            self.history.items[:] = kept
        self._tools.tools = {t.name: t for t in agent.tools}
        agent._session = self
        await self.pipeline.update_agent(agent.instructions, list(self._tools.tools.values()))
        self._emit("agent_changed", {"agent": agent, "previous": old})
        self._spawn(self._guarded(agent.on_enter(), "on_enter"), "on_enter")

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
            context.run(_TOOL_OF.set, None)
            self._close_task = asyncio.get_running_loop().create_task(self._close(reason), context=context)
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
            self._emit("error", {"message": f"{what} raised {type(exc).__name__}: {exc}", "recoverable": True})

    def _job_transport(self) -> Transport | None:
        from ._worker import JobContext

        job = JobContext.current()
        if job is None:
            return None
        if not job.connected or job.transport is None:
            raise AgentSessionError("call `await ctx.connect()` before `session.start()`")
        self._job = job
        return job.transport

    async def _abort_start(self) -> None:
        self._closed_early = True
        try:
            await self.pipeline.close()
        except Exception:
            logger.exception("pipeline close failed")
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
        return True

    async def _close(self, reason: str) -> None:
        self._closing = True
        self._cancel_barge_in()
        if self._wake is not None:
            self._wake.cancel()
        self._interrupt_speeches(list(self._speeches))
        self._update_states()
        token = _IN_EXIT.set(True)
        try:
            async with asyncio.timeout(EXIT_PLAYOUT_TIMEOUT):
                await self.agent.on_exit()
                for speech in list(self._speeches):  # a goodbye said in on_exit is heard
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
            await self.pipeline.close()
        except Exception:
            logger.exception("pipeline close failed")
        if self._transport is not None:
            self._transport.clear()
            if self._owns_transport:
                await self._transport.close()
        for speech in self._speeches:
            speech._finish(interrupted=True)
        self._speeches.clear()
        self._emit("closed", {"reason": reason})
        self._notify("agentsession_session_closed", reason=reason)
        await asyncio.sleep(0)  # let sync "closed" callbacks run before async ones are cancelled
        await self._emitter.aclose()
        if self._hooks is not None:
            await self._hooks.aclose()
        if self._job is not None:
            self._job._session_closed(self, reason)

    # ------------------------------------------------------------------ input

    async def _input_loop(self) -> None:
        converter = AudioConverter(self.pipeline.input_sample_rate)
        async for frame in self.transport.audio_input():
            for out in converter.push(frame):
                self._pushed += out.duration
                self.pipeline.push_audio(out)
                if self._emitter.has_listeners("user_audio"):
                    self._emit("user_audio", {"frame": out, "at": self._loop_time() - self._clock_anchor[0]})

    async def _text_loop(self, texts: Any) -> None:
        """Typed lines are turns in a row: each waits for the answer to the one before."""
        async for text in texts:
            if text.strip():
                handle = await self.send_text(text)
                await handle.wait_for_playout()

    def _on_event(self, event: PipelineEvent | None) -> None:
        """The pipeline's events arrive here synchronously, on the loop, as the model emits them."""
        if event is None:
            if not self._closing:
                self._emit("error", {"message": "the pipeline ended its event stream", "recoverable": False})
                asyncio.get_running_loop().create_task(self.close("pipeline ended"))
            return
        if self._tearing_down:
            return
        try:
            self._handle(event)
        except Exception:
            logger.exception("handling %s failed", type(event).__name__)

    def _handle(self, event: PipelineEvent) -> None:
        if isinstance(event, AgentAudio):
            response = self._response(event.response_id)
            if response is not None:
                self._on_agent_audio(response, event.frame)
        elif isinstance(event, AgentTranscript):
            response = self._response(event.response_id)
            if response is not None:
                item = self._item(response)
                item.text = event.text if event.final else item.text + event.text
                self._emit("agent_transcript", {"text": event.text, "final": event.final,
                                                "speech_id": response.speech.id})
        elif isinstance(event, ToolCall):
            response = self._response(event.response_id)
            if response is not None:
                self._on_tool_call(response, event)
        elif isinstance(event, ResponseDone):
            response = self._response(event.response_id)
            if response is not None:
                self._on_response_done(response, event)
        elif isinstance(event, UserSpeechStarted):
            self._on_user_speech_started()
        elif isinstance(event, UserSpeechStopped):
            self._on_user_speech_stopped(event)
        elif isinstance(event, UserTranscript):
            self._emit("user_transcript", {"text": event.text, "final": event.final})
            if event.final and event.text.strip():
                self._add_user_message(event.text)
        elif isinstance(event, ToolCallCancelled):
            self._tools.cancel(event.ids)
        elif isinstance(event, Error):
            self.report_error(event.message, recoverable=event.recoverable, code=event.code)

    # ------------------------------------------------------------------ speeches and responses

    def _new_speech(self, trigger: str, *, allow_interruptions: bool = True, barge_in: bool = True,
                    origin: float | None = None, eou: float | None = None) -> SpeechHandle | None:
        if not self._ready(trigger):
            return None
        handle = SpeechHandle(self, trigger=trigger, allow_interruptions=allow_interruptions, barge_in=barge_in)
        now = self._loop_time()
        handle.origin = now if origin is None else origin
        handle.requested = now
        self._turns += 1
        handle.metrics.turn = self._turns
        handle.metrics.eou_delay = eou
        self._speeches.append(handle)
        if self._wake is not None:
            self._wake.activity()
        self._update_states()
        return handle

    def _handle_or_done(self, handle: SpeechHandle | None) -> SpeechHandle:
        """A refused call (the session is closing) still returns a handle: one that is already done."""
        if handle is None:
            handle = SpeechHandle(self, trigger="refused")
            handle._finish(interrupted=True)
        return handle

    def _response(self, rid: str) -> Response | None:
        """The live response with this id; a new one (bound to its speech) on its first event; ``None`` for a
        response the session stopped."""
        response = self._responses.get(rid)
        if response is not None:
            return response
        if rid in self._stopped:
            return None
        speech = next((s for s in self._speeches if rid in s.expecting), None)
        if speech is None:  # a response the model started by itself: the answer to the user's turn
            speech = self._user_turn_pending or self._new_speech("user" if self._user_turn_pending else "model")
            self._user_turn_pending = None
            if speech is None:
                return None
        speech.expecting.discard(rid)
        response = Response(rid, speech)
        speech.responses.append(response)
        self._responses[rid] = response
        return response

    def _item(self, response: Response) -> ChatMessage:
        if response.item is None:
            response.item = self.history.add_message("assistant", "", created_at=self.now())
        return response.item

    def _on_agent_audio(self, response: Response, frame: AudioFrame) -> None:
        assert self._playout is not None
        item = self._item(response)
        item.audio_duration = (item.audio_duration or 0.0) + frame.duration
        metrics = response.speech.metrics
        if metrics.ttfa is None:
            metrics.ttfa = self._loop_time() - response.speech.requested
        response.received += frame.duration
        was_playing = self._playout.active
        self._playout.push(response, frame)
        if not was_playing:
            self._update_states()

    @property
    def _playing_now(self) -> bool:
        return self._playout is not None and self._playout.active

    def _on_tool_call(self, response: Response, call: ToolCall) -> None:
        response.calls.append(call)
        self.history.add_function_call(call.id, call.name, call.arguments)
        token = _TOOL_OF.set(response.speech)
        try:
            self._tools.start(call)  # the tool's task inherits _TOOL_OF
        finally:
            _TOOL_OF.reset(token)
        self._update_states()

    def _on_tool_result(self, call: ToolCall, result: ToolResult) -> None:
        self._emit("function_tool_called", {
            "call_id": call.id, "name": call.name, "arguments": call.arguments, "result": result.output,
            "is_error": result.is_error, "duration": result.duration,
        })
        if result.is_error:
            self._emit("error", {"message": f"tool {call.name!r} failed: {result.output}", "recoverable": True,
                                 "code": "tool_error"})

    def _on_response_done(self, response: Response, event: ResponseDone) -> None:
        assert self._playout is not None
        speech = response.speech
        response.done = True
        del self._responses[response.id]
        self._stopped.add(response.id)  # a model that sends more of it (after a reconnect, say) is not heard
        for key, value in event.usage.items():
            if isinstance(value, int | float) and isinstance(speech.metrics.usage.get(key, 0), int | float):
                speech.metrics.usage[key] = speech.metrics.usage.get(key, 0) + value
            else:
                speech.metrics.usage[key] = value
        if response.calls:  # before its playout ends: a response of calls only is played out at once
            speech.tools_running += 1
            self._spawn(self._finish_tools(speech, response.calls), "tools")
        if event.interrupted:  # the model cut it short itself (a dropped connection, say)
            heard = response.heard(self._playout.played)
            self._playout.stop([response])
            self._cut(response, heard)
        else:
            self._playout.end(response)
        self._settle(speech, interrupted=event.interrupted)
        self._update_states()

    async def _finish_tools(self, speech: SpeechHandle, calls: list[ToolCall]) -> None:
        """All calls of one response are in: add their results to the history and continue, once."""
        try:
            results = await self._tools.results(calls)
        finally:
            speech.tools_running -= 1
        if speech.done() or self._tearing_down:
            self._settle(speech, interrupted=True)
            return
        for result in results:
            self.history.add_function_output(result.call_id, result.name, result.output, result.is_error)
        handoff = next((r.handoff for r in results if r.handoff is not None), None)
        if handoff is not None:
            await self.update_agent(handoff)
        rid = speech.next_response_id()
        speech.requested = self._loop_time()
        self._update_states()
        await self.pipeline.send_tool_results(results, response_id=rid)

    def _settle(self, speech: SpeechHandle, *, interrupted: bool = False) -> None:
        """Finish ``speech`` if nothing of it is left to generate or to play."""
        if speech.done() or not (speech.settled() or (interrupted and speech.finished_work)):
            return
        self._finish_speech(speech, interrupted=interrupted or speech.interrupted)

    def _finish_speech(self, speech: SpeechHandle, *, interrupted: bool) -> None:
        if not speech._finish(interrupted=interrupted):
            return
        if speech in self._speeches:
            self._speeches.remove(speech)
        if speech is self._user_turn_pending:
            self._user_turn_pending = None
        for rid in speech.expecting:
            self._stopped.add(rid)  # (expected, never begun)
        metrics = speech.metrics
        metrics.interrupted = interrupted
        metrics.timestamp = self.now()
        assert self._playout is not None
        metrics.audio_duration = sum(r.heard(self._playout.played) if interrupted else r.received
                                     for r in speech.responses)
        self._emit("metrics_collected", metrics.as_dict())
        self._notify("agentsession_metrics_collected", metrics=metrics)
        self._update_states()

    def _interrupt_speeches(self, speeches: Iterable[SpeechHandle]) -> asyncio.Task[None] | None:
        """Stop ``speeches``: drop their unplayed audio, cut their history and the model's context at what
        was heard, and tell the pipeline (in the background: this is called from sync code too)."""
        own = _TOOL_OF.get()  # a tool interrupting its own speech: its audio stops, the tool and the answer go on
        speeches = [s for s in speeches if not s.done()]
        if not speeches or self._playout is None:
            return None
        played = self._playout.played
        heard: dict[str, float | None] = {}
        responses: list[Response] = []
        for speech in speeches:
            for response in speech.responses:
                if not response.played_out and (speech is not own or response.done):
                    responses.append(response)
                    heard[response.id] = response.heard(played) if response.received else None
            if speech is own:
                continue
            for rid in speech.expecting:
                heard[rid] = None
            self._tools.cancel([c.id for r in speech.responses for c in r.calls])
        speeches = [s for s in speeches if s is not own]
        self._playout.stop(responses)
        for response in responses:
            self._responses.pop(response.id, None)
            self._cut(response, heard[response.id] or 0.0)
        for rid in heard:
            self._stopped.add(rid)
        for speech in speeches:
            speech.expecting.clear()
            self._finish_speech(speech, interrupted=True)
        self._update_states()
        return self._spawn(self._tell_pipeline_interrupted(heard), "interrupt") if heard else None

    async def _tell_pipeline_interrupted(self, heard: dict[str, float | None]) -> None:
        try:
            await self.pipeline.interrupt(heard)
        except Exception:
            logger.exception("the pipeline failed to interrupt")

    def _cut(self, response: Response, heard: float) -> None:
        """The history keeps what the user heard of ``response``: nothing at all if it never started."""
        item = response.item
        if item is None or item not in self.history.items:
            return
        if response.start is None:
            self.history.items.remove(item)
        elif item.audio_duration is not None and heard < item.audio_duration:
            self.history.truncate(item.id, heard)

    # ------------------------------------------------------------------ playout callbacks

    def _on_playout_started(self, response: Response) -> None:
        speech = response.speech
        if speech.metrics.e2e is None:
            speech.metrics.e2e = self._loop_time() - speech.origin
        self._update_states()

    def _on_played_out(self, response: Response) -> None:
        self._settle(response.speech)
        self._update_states()

    def _on_frame_played(self, frame: AudioFrame) -> None:
        if self._emitter.has_listeners("agent_audio"):
            self._emit("agent_audio", {"frame": frame, "at": self._loop_time() - self._clock_anchor[0]})

    # ------------------------------------------------------------------ the user's speech

    def _on_user_speech_started(self) -> None:
        self._user_speaking = True
        if self._wake is not None:
            self._wake.activity()
        if self.allow_interruptions and self._barge_in is None and any(s.barge_in for s in self._speeches):
            if self.min_interruption_duration == 0:
                self._barge_in_now()
            else:
                self._barge_in = asyncio.get_running_loop().call_later(
                    self.min_interruption_duration, self._confirm_barge_in
                )
        self._update_states()

    def _on_user_speech_stopped(self, event: UserSpeechStopped) -> None:
        self._user_speaking = False
        if self._barge_in is not None:
            self._cancel_barge_in()
            logger.debug("false interruption ignored (shorter than %.2f s)", self.min_interruption_duration)
            self._emit("false_interruption", {"timestamp": self.now()})
        else:
            eou = max(0.0, self._pushed - event.audio_end) if event.audio_end is not None else None
            now = self._loop_time()
            pending = self._user_turn_pending
            if pending is None or pending.responses:
                self._user_turn_pending = self._new_speech("user", origin=now - (eou or 0.0), eou=eou)
        self._update_states()

    def _confirm_barge_in(self) -> None:
        self._barge_in = None
        if self._user_speaking:
            self._barge_in_now()

    def _barge_in_now(self) -> None:
        self._interrupt_speeches([s for s in self._speeches if s.barge_in])

    def _cancel_barge_in(self) -> None:
        if self._barge_in is not None:
            self._barge_in.cancel()
            self._barge_in = None

    def _add_user_message(self, text: str) -> None:
        """Some models transcribe the user only after their answer started: keep the history in spoken order."""
        message = ChatMessage("user", text, created_at=self.now())
        items = self.history.items
        answering = next((r.item for s in self._speeches if s.trigger == "user" for r in s.responses
                          if r.item is not None), None)
        if answering is not None and answering in items:
            items.insert(items.index(answering), message)
        else:
            items.append(message)

    # ------------------------------------------------------------------ states and wake-up

    def _update_states(self) -> None:
        playing = self._playing_now
        if playing:
            agent = AgentState.SPEAKING
        elif self._user_speaking:
            agent = AgentState.LISTENING
        elif self._speeches:
            agent = AgentState.THINKING
        else:
            agent = AgentState.IDLE
        if self._closing and not playing:
            agent = AgentState.CLOSING
        user = UserState.SPEAKING if self._user_speaking else UserState.LISTENING if playing else UserState.IDLE
        if user != self._user_state:
            old, self._user_state = self._user_state, user
            self._emit("user_state_changed", {"state": user, "previous": old, "timestamp": self.now()})
            self._notify("agentsession_user_state_changed", old=old, new=user)
        self._set_agent_state(agent)
        if self._wake is not None:
            self._wake.update(agent is AgentState.IDLE and not self._user_speaking and not self._closing)

    def _set_agent_state(self, agent: AgentState) -> None:
        if agent == self._agent_state and agent is not AgentState.STARTING:
            return
        old, self._agent_state = self._agent_state, agent
        self._emit("agent_state_changed", {"state": agent, "previous": old, "timestamp": self.now()})
        if agent is not AgentState.STARTING:
            self._notify("agentsession_agent_state_changed", old=old, new=agent)

    async def _run_wake_up(self) -> None:
        assert self.wake_up is not None and self._hooks is not None
        if self._job is not None and self._job.shutting_down:  # the room ended: nobody to wake up
            return
        idle_s = float(self.wake_up)
        self._emit("wake_up", {"idle_s": idle_s, "timestamp": self.now()})
        try:
            if self.on_wake_up is not None:
                await call_handler(self.on_wake_up)
            else:
                await self._hooks.wake_up(session=self, idle_s=idle_s)
        except Exception as exc:
            logger.exception("wake-up handler raised")
            self._emit("error", {"message": f"wake-up handler raised {exc!r}", "recoverable": True})

    # ------------------------------------------------------------------ helpers

    def _loop_time(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        self._emitter.emit(event, data)

    def _notify(self, hook: str, **kwargs: Any) -> None:
        if self._hooks is not None:
            self._hooks.notify(hook, session=self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<AgentSession agent={type(self.agent).__name__} pipeline={type(self.pipeline).__name__} "
            f"agent_state={self._agent_state.value} user_state={self._user_state.value}>"
        )
