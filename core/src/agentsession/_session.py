"""``AgentSession``: runs an agent on a pipeline and a transport, tracks states, turns and wake-ups."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from ._agent import Agent
from ._audio import AudioConverter, AudioFrame
from ._chat import ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from ._emitter import EventEmitter
from ._errors import AgentSessionError
from ._manager import create_manager
from ._metrics import TurnMetrics
from ._models import ModelOptions
from ._observers import ObserverDispatcher, call_isolated
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
from ._states import AgentState, UserState
from ._tools import FunctionTool, ToolResult
from ._transport import NullTransport, Transport

if TYPE_CHECKING:
    from ._worker import JobContext

logger = logging.getLogger("agentsession.session")

_IN_WAKE_UP: contextvars.ContextVar[bool] = contextvars.ContextVar("agentsession_in_wake_up", default=False)
_END = object()  # playout marker: a response ended


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


@dataclass
class _Turn:
    metrics: TurnMetrics
    origin: float  # loop time the latency is measured from
    requested: float  # loop time the model was asked (or the user's turn was declared over)
    done: bool = False
    audio: bool = False
    played: bool = False
    finished: bool = False


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
        self._observers: ObserverDispatcher | None = None
        self._transport: Transport | None = None
        self._owns_transport = False
        self._job: JobContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_anchor = (0.0, 0.0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._close_task: asyncio.Task[None] | None = None
        self._closed_early = False
        self._user_state = UserState.IDLE
        self._agent_state = AgentState.STARTING
        # facts the states are derived from
        self._user_speaking = False
        self._playing = False
        self._awaiting = False
        self._tools_running = 0
        self._closing = False
        # playout
        self._playout_q: asyncio.Queue[object] = asyncio.Queue()
        self._playout_task: asyncio.Task[None] | None = None
        self._out: AudioConverter | None = None
        self._submitted = 0.0
        self._segment_start = 0.0
        self._pushed = 0.0
        # responses, tools, turns
        self._tools: dict[str, FunctionTool] = {}
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        self._item: ChatMessage | None = None
        self._spoken_item: ChatMessage | None = None
        self._turn: _Turn | None = None
        self._turn_count = 0
        self._barge_in: asyncio.TimerHandle | None = None
        self._wake_timer: asyncio.TimerHandle | None = None
        self._woke = False
        self._quiet_waiters: list[asyncio.Future[None]] = []
        self._cancels_owed = 0

    # ------------------------------------------------------------------ public API

    @property
    def user_state(self) -> UserState:
        return self._user_state

    @property
    def agent_state(self) -> AgentState:
        return self._agent_state

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

    async def start(self, *, transport: Transport | None = None) -> None:
        """Discover plugins, connect the pipeline, start the agent. ``transport`` defaults to the current job's."""
        if self._started or self._closed_early:
            raise AgentSessionError("an AgentSession can be started once")
        install_log_redaction()
        pm = create_manager(self.plugins)
        has_handler = self.on_wake_up is not None or bool(pm.hook.agentsession_wake_up.get_hookimpls())
        if self.wake_up is not None and not has_handler:
            raise ValueError(
                f"wake_up={self.wake_up} needs a handler: set session.on_wake_up = async_fn, "
                "or install a plugin implementing agentsession_wake_up"
            )
        self._pm = pm
        self._observers = ObserverDispatcher(pm)
        self._loop = loop = asyncio.get_running_loop()
        self._clock_anchor = (loop.time(), time.time())
        self._transport = transport or self._job_transport()
        if self._transport is None:
            self._transport = NullTransport()
            self._owns_transport = True
            await self._transport.start()
        self._out = AudioConverter(self._transport.sample_rate, self._transport.channels)
        self._tools = {t.name: t for t in self.agent.tools}
        self.agent._session = self
        self.pipeline.conversation_flow = self.conversation_flow
        try:
            await self.pipeline.start(
                ModelOptions(self.agent.instructions, list(self._tools.values()), self.history)
            )
        except BaseException:  # e.g. a missing API key: leave nothing running behind the error
            if self._owns_transport:
                await self._transport.close()
            await self._observers.aclose()
            self._closed_early = True
            raise
        self._started = True
        self._transport.bind(self)
        if self._job is not None:
            self._job._attach(self)
        self.pipeline.attach(self._on_event)
        self._spawn(self._input_loop(), "audio-input")
        text = self._transport.text_input()
        if text is not None:
            self._spawn(self._text_loop(text), "text-input")
        self._playout_task = self._spawn(self._playout_loop(), "playout")
        for impl in pm.hook.agentsession_session_started.get_hookimpls():
            call_isolated("agentsession_session_started", impl, {"session": self})
        self._update_states()
        self._spawn(self._guarded(self.agent.on_enter(), "on_enter"), "on_enter")

    async def say(self, text: str, *, wait_for_playback: bool = False) -> None:
        """Speak ``text``."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("say() needs non-empty text")
        if not self._ready("say"):
            return
        self._request("say")
        await self.pipeline.say(text)
        if wait_for_playback:
            await self._wait_quiet()

    async def reply(self, instructions: str | None = None, wait_for_playback: bool = False) -> None:
        """Generate a response now, with optional extra ``instructions``; optionally wait until it was heard."""
        if not self._ready("reply"):
            return
        self._request("reply")
        await self.pipeline.reply(instructions)
        if wait_for_playback:
            await self._wait_quiet()

    async def send_text(self, text: str) -> None:
        """The user typed ``text``: it is a user turn like speech."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("send_text() needs non-empty text")
        if not self._ready("send_text"):
            return
        if self._playing or self._awaiting:
            await self.interrupt()
        self._user_activity()
        self._emit("user_transcript", {"text": text, "final": True, "typed": True})
        self._add_user_message(text)
        self._request("text")
        await self.pipeline.send_text(text)

    async def interrupt(self) -> None:
        """Stop the agent now: cancel the response, drop unplayed audio, truncate history to what was heard."""
        if not self._started or self._closing:
            return
        self._cancel_barge_in()
        if not (self._playing or self._awaiting):
            return
        heard = self._heard()
        item = self._spoken_item or self._item
        self._stop_playout()
        self._cancels_owed += self._awaiting  # the model owes the cancelled response's ResponseDone(interrupted)
        self._awaiting = False
        try:
            await self.pipeline.interrupt(heard)
        except Exception:
            logger.exception("pipeline failed to interrupt")
        self._truncate(item, heard)
        self._item = None  # what the model sends next belongs to a new response
        self._finish_turn(interrupted=True)
        self._update_states()

    def report_error(self, message: str, *, recoverable: bool = True, code: str | None = None) -> None:
        """Emit an ``error`` event from outside the pipeline (a transport's dropped connection, say);
        a non-recoverable one closes the session."""
        self._emit("error", {"message": message, "recoverable": recoverable, "code": code})
        if not recoverable and self._started and not self._closing:
            asyncio.get_running_loop().create_task(self.close("error"))

    async def run(self, *, user_input: str, timeout: float = 60.0) -> RunResult:
        """Test API: send ``user_input`` as typed text and return what the turn added to the history."""
        start = len(self.history)
        await self.send_text(user_input)
        await asyncio.wait_for(self._wait_quiet(include_tools=True), timeout)
        return RunResult(self.history.items[start + 1 :])

    async def close(self, reason: str = "closed") -> None:
        """Stop everything the session started; idempotent; safe from inside a tool or callback."""
        if not self._started:
            self._closed_early = True  # nothing runs yet; start() is refused from now on
            return
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close(reason))
        await asyncio.shield(self._close_task)

    # ------------------------------------------------------------------ tasks

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

    def _ready(self, what: str) -> bool:
        if not self._started:
            raise AgentSessionError(f"{what}() before session.start()")
        if self._closing:
            logger.debug("%s() ignored: the session is closing", what)
            return False
        return True

    async def _close(self, reason: str) -> None:
        self._closing = True
        self._cancel_barge_in()
        self._cancel_wake_up()
        self._update_states()
        try:
            await asyncio.wait_for(self.agent.on_exit(), 5.0)
        except Exception:
            logger.exception("on_exit raised or timed out")
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
        for fut in self._quiet_waiters:
            if not fut.done():
                fut.set_exception(AgentSessionError("the session closed"))
        self._emit("closed", {"reason": reason})
        self._notify("agentsession_session_closed", reason=reason)
        await asyncio.sleep(0)  # let sync "closed" callbacks run before async ones are cancelled
        await self._emitter.aclose()
        if self._observers is not None:
            await self._observers.aclose()
        if self._job is not None:
            self._job._session_closed(self, reason)

    # ------------------------------------------------------------------ loops

    async def _input_loop(self) -> None:
        converter = AudioConverter(self.pipeline.input_sample_rate)
        async for frame in self.transport.audio_input():
            for out in converter.push(frame):
                self._pushed += out.duration
                self.pipeline.push_audio(out)
                if self._emitter.has_listeners("user_audio"):
                    self._emit("user_audio", {"frame": out, "at": self._loop_time() - self._clock_anchor[0]})

    async def _text_loop(self, texts: Any) -> None:
        async for text in texts:
            if text.strip():
                await self.send_text(text)

    def _on_event(self, event: PipelineEvent | None) -> None:
        """The pipeline's events arrive here synchronously, on the loop, as the model emits them."""
        if event is None:
            if not self._closing:
                self._emit("error", {"message": "the pipeline ended its event stream", "recoverable": False})
                asyncio.get_running_loop().create_task(self.close("pipeline ended"))
            return
        if self._closing:
            return
        try:
            self._handle(event)
        except Exception:
            logger.exception("handling %s failed", type(event).__name__)

    def _handle(self, event: PipelineEvent) -> None:
        if isinstance(event, AgentAudio):
            self._on_agent_audio(event.frame)
        elif isinstance(event, UserSpeechStarted):
            self._on_user_speech_started()
        elif isinstance(event, UserSpeechStopped):
            self._on_user_speech_stopped(event)
        elif isinstance(event, UserTranscript):
            self._emit("user_transcript", {"text": event.text, "final": event.final})
            if event.final and event.text.strip():
                self._add_user_message(event.text)
        elif isinstance(event, AgentTranscript):
            self._on_agent_transcript(event)
        elif isinstance(event, ToolCall):
            self._on_tool_call(event)
        elif isinstance(event, ToolCallCancelled):
            for call_id in event.ids:
                task = self._tool_tasks.pop(call_id, None)
                if task is not None:
                    task.cancel()
        elif isinstance(event, ResponseDone):
            self._on_response_done(event)
        elif isinstance(event, Error):
            self.report_error(event.message, recoverable=event.recoverable, code=event.code)

    async def _playout_loop(self) -> None:
        transport = self.transport
        while True:
            item = await self._playout_q.get()
            if item is _END:
                if self._playing and self._playout_q.empty() and not self._awaiting:
                    await transport.wait_for_playout()
                    if self._playout_q.empty() and not self._awaiting:
                        self._playing = False
                        self._spoken_item = None
                        self._update_states()
                continue
            if isinstance(item, _Turn):  # the turn's first audio is next
                self._on_first_play(item)
                continue
            assert isinstance(item, AudioFrame)
            await transport.play(item)
            if self._emitter.has_listeners("agent_audio"):
                self._emit("agent_audio", {"frame": item, "at": self._loop_time() - self._clock_anchor[0]})
            self._submitted += item.duration

    # ------------------------------------------------------------------ event handlers

    def _on_agent_audio(self, frame: AudioFrame) -> None:
        assert self._out is not None
        item = self._current_item()
        item.audio_duration = (item.audio_duration or 0.0) + frame.duration
        turn = self._turn
        if turn is not None and not turn.audio:
            turn.audio = True
            turn.metrics.ttfa = self._loop_time() - turn.requested
            self._playout_q.put_nowait(turn)
        for out in self._out.push(frame):
            self._playout_q.put_nowait(out)
        if not self._playing:
            self._playing = True
            self._segment_start = self._submitted
            self._spoken_item = item
            self._update_states()

    def _on_agent_transcript(self, event: AgentTranscript) -> None:
        item = self._current_item()
        item.text = event.text if event.final else item.text + event.text
        self._emit("agent_transcript", {"text": event.text, "final": event.final})

    def _on_user_speech_started(self) -> None:
        self._user_speaking = True
        self._user_activity()
        if self.allow_interruptions and (self._playing or self._awaiting) and self._barge_in is None:
            if self.min_interruption_duration == 0:
                self._spawn(self.interrupt(), "barge-in")
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
            self._awaiting = True
            self._start_turn("user", origin=now - (eou or 0.0), requested=now, eou=eou)
        self._update_states()

    def _confirm_barge_in(self) -> None:
        self._barge_in = None
        if self._user_speaking:
            self._spawn(self.interrupt(), "barge-in")

    def _on_tool_call(self, call: ToolCall) -> None:
        self._tools_running += 1
        self.history.add_function_call(call.id, call.name, call.arguments)
        self._tool_tasks[call.id] = self._spawn(self._run_tool(call), f"tool:{call.name}")
        self._update_states()

    async def _run_tool(self, call: ToolCall) -> None:
        try:
            tool = self._tools.get(call.name)
            if tool is None:
                output = json.dumps({"error": f"unknown tool {call.name!r}", "tools": sorted(self._tools)})
                result = ToolResult(call.id, call.name, output, is_error=True)
            else:
                result = await tool.invoke(call.id, call.arguments)
            self.history.add_function_output(call.id, call.name, result.output, result.is_error)
            self._emit(
                "function_tool_called",
                {
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "result": result.output,
                    "is_error": result.is_error,
                    "duration": result.duration,
                },
            )
            self._awaiting = True
            self._start_turn("tool")
        finally:
            self._tools_running -= 1
            self._tool_tasks.pop(call.id, None)
            self._update_states()
        await self.pipeline.send_tool_result(result)

    def _on_response_done(self, event: ResponseDone) -> None:
        if event.interrupted and self._cancels_owed:
            # the end of a response interrupt() cancelled, already handled: a request made since is
            # still awaited and its audio may be playing
            self._cancels_owed -= 1
            return
        if not event.interrupted:
            self._cancels_owed = 0  # responses end in order: nothing cancelled before this one is still owed
        item, self._item = self._item, None
        self._awaiting = False
        if event.interrupted:
            heard = self._heard()
            spoken = self._spoken_item
            self._stop_playout()
            self._truncate(spoken or item, heard)
        else:
            assert self._out is not None
            for out in self._out.flush():
                self._playout_q.put_nowait(out)
            self._playout_q.put_nowait(_END)
        turn = self._turn
        if turn is not None:
            turn.metrics.usage = dict(event.usage)
            turn.done = True
            if event.interrupted or not turn.audio or turn.played:
                self._finish_turn(interrupted=event.interrupted, turn=turn)
        if item is not None and item.text and self.conversation_flow is not None:
            self._spawn(self._guarded(self.conversation_flow.on_agent_turn(item.text), "on_agent_turn"), "flow")
        self._update_states()

    # ------------------------------------------------------------------ playout, history, turns

    def _add_user_message(self, text: str) -> None:
        """Some models transcribe the user only after their answer started: keep the history in spoken order."""
        message = ChatMessage("user", text, created_at=self.now())
        items = self.history.items
        answering = self._item if self._item is not None else self._spoken_item
        if answering is not None and answering in items:
            items.insert(items.index(answering), message)
        else:
            items.append(message)

    def _current_item(self) -> ChatMessage:
        if self._item is None:
            self._item = self.history.add_message("assistant", "", created_at=self.now())
        return self._item

    def _heard(self) -> float:
        if not self._playing:
            return 0.0
        return max(0.0, self.transport.played - self._segment_start)

    def _stop_playout(self) -> None:
        """Drop all queued and buffered agent audio within one frame, and restart the playout task."""
        if self._playout_task is not None:
            self._playout_task.cancel()
        dropped, self._playout_q = self._playout_q, asyncio.Queue()
        while not dropped.empty():
            item = dropped.get_nowait()
            if isinstance(item, _Turn):
                self._finish_turn(interrupted=True, turn=item)
        if self._out is not None:
            self._out.clear()
        self.transport.clear()
        self._submitted = self.transport.played
        self._playing = False
        self._spoken_item = None
        if not self._closing:
            self._playout_task = self._spawn(self._playout_loop(), "playout")

    def _truncate(self, item: ChatMessage | None, heard: float) -> None:
        if item is None or item.audio_duration is None or item.id not in {i.id for i in self.history}:
            return
        self.history.truncate(item.id, heard)

    def _request(self, trigger: str) -> None:
        if not _IN_WAKE_UP.get():
            self._woke = False
        self._awaiting = True
        self._start_turn(trigger)
        self._update_states()

    def _start_turn(self, trigger: str, *, origin: float | None = None, requested: float | None = None,
                    eou: float | None = None) -> None:
        if self._turn is not None and not self._turn.done and self._turn.metrics.trigger == "user" and trigger != "user":
            return  # a tool call or reply inside a user's turn belongs to it
        old = self._turn
        if old is not None and not (old.audio and not old.played):  # (a turn still queued ends when played)
            self._finish_turn(interrupted=not old.done, turn=old)
        now = self._loop_time()
        self._turn_count += 1
        metrics = TurnMetrics(turn=self._turn_count, trigger=trigger, eou_delay=eou)
        self._turn = _Turn(metrics, origin if origin is not None else now, requested if requested is not None else now)

    def _on_first_play(self, turn: _Turn) -> None:
        turn.played = True
        turn.metrics.e2e = self._loop_time() - turn.origin
        if turn.done:
            self._finish_turn(interrupted=False, turn=turn)

    def _finish_turn(self, *, interrupted: bool, turn: _Turn | None = None) -> None:
        turn = turn if turn is not None else self._turn
        if turn is None or turn.finished:
            return
        turn.finished = True
        if turn is self._turn:
            self._turn = None
        turn.metrics.interrupted = interrupted
        turn.metrics.timestamp = self.now()
        if self._spoken_item is not None:
            turn.metrics.audio_duration = self._spoken_item.audio_duration or 0.0
        self._emit("metrics_collected", turn.metrics.as_dict())
        self._notify("agentsession_metrics_collected", metrics=turn.metrics)

    async def _wait_quiet(self, *, include_tools: bool = False) -> None:
        while self._playing or self._awaiting or (include_tools and self._tools_running):
            fut = asyncio.get_running_loop().create_future()
            self._quiet_waiters.append(fut)
            await fut

    # ------------------------------------------------------------------ states and wake-up

    def _user_activity(self) -> None:
        self._woke = False

    def _update_states(self) -> None:
        if self._closing:
            agent = AgentState.CLOSING
        elif self._playing:
            agent = AgentState.SPEAKING
        elif self._user_speaking:
            agent = AgentState.LISTENING
        elif self._awaiting or self._tools_running:
            agent = AgentState.THINKING
        else:
            agent = AgentState.IDLE
        user = UserState.SPEAKING if self._user_speaking else UserState.LISTENING if self._playing else UserState.IDLE
        if user != self._user_state:
            old, self._user_state = self._user_state, user
            self._emit("user_state_changed", {"state": user, "previous": old, "timestamp": self.now()})
            self._notify("agentsession_user_state_changed", old=old, new=user)
        if agent != self._agent_state:
            old_agent, self._agent_state = self._agent_state, agent
            self._emit("agent_state_changed", {"state": agent, "previous": old_agent, "timestamp": self.now()})
            self._notify("agentsession_agent_state_changed", old=old_agent, new=agent)
        if not (self._playing or self._awaiting):
            waiters, self._quiet_waiters = self._quiet_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._update_wake_up()

    def _update_wake_up(self) -> None:
        if self.wake_up is None:
            return
        idle = (
            self._agent_state is AgentState.IDLE
            and not self._user_speaking
            and not self._tools_running
            and not self._woke
        )
        if idle and self._wake_timer is None:
            self._wake_timer = asyncio.get_running_loop().call_later(self.wake_up, self._fire_wake_up)
        elif not idle:
            self._cancel_wake_up()

    def _cancel_wake_up(self) -> None:
        if self._wake_timer is not None:
            self._wake_timer.cancel()
            self._wake_timer = None

    def _cancel_barge_in(self) -> None:
        if self._barge_in is not None:
            self._barge_in.cancel()
            self._barge_in = None

    def _fire_wake_up(self) -> None:
        self._wake_timer = None
        self._woke = True
        self._spawn(self._run_wake_up(), "wake-up")

    async def _run_wake_up(self) -> None:
        assert self.wake_up is not None and self._pm is not None
        idle_s = float(self.wake_up)
        self._emit("wake_up", {"idle_s": idle_s, "timestamp": self.now()})
        token = _IN_WAKE_UP.set(True)
        try:
            if self.on_wake_up is not None:
                result: Any = self.on_wake_up()
                if inspect.isawaitable(result):
                    await result
                return
            for impl in self._pm.hook.agentsession_wake_up.get_hookimpls()[::-1]:
                result = call_isolated("agentsession_wake_up", impl, {"session": self, "idle_s": idle_s})
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
        except Exception as exc:
            logger.exception("wake-up handler raised")
            self._emit("error", {"message": f"wake-up handler raised {exc!r}", "recoverable": True})
        finally:
            _IN_WAKE_UP.reset(token)

    # ------------------------------------------------------------------ helpers

    def _loop_time(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        self._emitter.emit(event, data)

    def _notify(self, hook: str, **kwargs: Any) -> None:
        if self._observers is not None:
            self._observers.notify(hook, session=self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<AgentSession agent={type(self.agent).__name__} pipeline={type(self.pipeline).__name__} "
            f"agent_state={self._agent_state.value} user_state={self._user_state.value}>"
        )
