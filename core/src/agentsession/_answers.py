"""``Answers``: what the agent is saying and about to say. The speeches (``SpeechHandle``), the model responses
they are made of (bound by response id), their playout, their tool calls, and interrupting them with the
history (and the model's context) cut at what the user heard."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._audio import AudioFrame
from ._chat import ChatContext, ChatMessage
from ._events import (
    AgentAudioPlayed,
    AgentTranscribed,
    ErrorOccurred,
    FunctionToolCalled,
    MetricsCollected,
    SessionEvent,
)
from ._pipeline_events import AgentTranscript, ResponseDone, ToolCall
from ._speech import Response, SpeechHandle
from ._speech_playout import SpeechPlayout
from ._tool_runner import ToolRunner
from ._tools import FunctionTool, HandoffTarget, ToolResult
from ._transport import Transport

logger = logging.getLogger("agentsession.session")

#: the speech whose tool is running (in that tool's task): interrupt() from a tool stops its audio, not the tool
TOOL_OF: contextvars.ContextVar[SpeechHandle | None] = contextvars.ContextVar("agentsession_tool_of", default=None)


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


class Engine(Protocol):
    """What ``Answers`` asks of the pipeline: results of tool calls, and stopping responses."""

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None: ...

    async def interrupt(self, heard: Mapping[str, float | None]) -> None: ...

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None: ...

    def heard_text(self, response_id: str, seconds: float) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AnswersHost:
    """All ``Answers`` uses of its session: a narrow port, so answers never reach into the session."""

    history: ChatContext
    engine: Callable[[], Engine]  # the pipeline being driven (it changes on nothing but is read late)
    ready: Callable[[str], bool]  # whether a new speech may start (``what``: its trigger)
    clock: Callable[[], float]  # the loop's clock (latencies)
    now: Callable[[], float]  # wall-clock time (timestamps)
    spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]  # a task the session owns
    emit: Callable[[SessionEvent], None]  # a session event
    listening: Callable[[str], bool]  # whether anything listens to that event
    notify: Callable[..., None]  # a notify hook
    changed: Callable[[], None]  # something the states derive from changed (an entry point of answers' own)
    activity: Callable[[], None]  # the conversation is active (the wake-up timer re-arms)
    tearing_down: Callable[[], bool]
    hand_over: Callable[[HandoffTarget], Awaitable[None]]  # a tool returned an agent
    first_audio_is_model: bool  # the time to first audio is one model's (realtime), not stages'
    elapsed: Callable[[], float]  # seconds since the session started, on the loop's clock (audio events' ``at``)
    hook: Callable[..., None]  # a pipeline hook's observers (``"agent_turn_start"``, ``"llm"``, ...)
    answered: Callable[[SpeechHandle], None]  # the model started an answer of its own accord


class Answers:
    """The session's answers (one per session), driven through ``AnswersHost``.

    Its methods called from the session's entry points leave re-deriving the states to the session; its own
    entry points (playout callbacks, tool groups, timers) call ``host.changed()`` once at their end.
    """

    def __init__(self, host: AnswersHost) -> None:
        self._h = host
        self.speeches: list[SpeechHandle] = []  # not done, in the order they were asked for
        self.responses: dict[str, Response] = {}  # live responses by id
        self.stopped = _RecentIds()  # responses stopped or ended: later events of theirs are dropped
        self._pending: SpeechHandle | None = None  # the user's turn ended; its answer is awaited
        self.playout: SpeechPlayout | None = None
        self.tools = ToolRunner(host.spawn, self.on_tool_result)
        self.turns = 0
        self._call_speech: dict[str, SpeechHandle] = {}  # tool call id -> the speech it belongs to

    def start_playout(self, transport: Transport) -> asyncio.Task[None]:
        self.playout = SpeechPlayout(transport, self.on_playout_started, self.on_played_out, self.on_frame_played,
                                     self._h.changed)
        return self.playout.start()

    def set_tools(self, tools: Sequence[FunctionTool]) -> list[FunctionTool]:
        """The tools the model may call from now on (an agent's); returns them."""
        self.tools.tools = {t.name: t for t in tools}
        return list(self.tools.tools.values())

    @property
    def pending_turn(self) -> SpeechHandle | None:
        """The user's turn that ended and whose answer is awaited, if any."""
        return self._pending

    def end_user_turn(self, *, origin: float | None = None, eou: float | None = None) -> SpeechHandle | None:
        """The user's turn ended: its answer is awaited (a new speech, unless one is already waiting)."""
        pending = self._pending
        if pending is None or pending.responses:
            pending = self._pending = self.new_speech("user", origin=origin, eou=eou)
        return pending

    def speech_ended_at(self, speech: SpeechHandle, at: float) -> None:
        """The user's speech that ``speech`` answers ended at ``at`` (loop time), before the answer began (a VAD
        reports the end late): the turn's ``t0`` moves there, and its ``e2e`` with it."""
        shift = speech.origin - at
        if speech.done() or shift <= 0:
            return
        speech.origin = at
        metrics = speech.metrics
        if metrics.started_at is not None:
            metrics.started_at -= shift
        if metrics.e2e is not None:
            metrics.e2e += shift

    def drop_if_unanswered(self, speech: SpeechHandle) -> None:
        """``speech`` (a user turn) got no answer: it is over, with nothing said (a timer's entry point)."""
        if speech is self._pending and not speech.responses:
            self.finish_speech(speech, interrupted=False)
            self._h.changed()

    def drop_pending_turn(self) -> None:
        """The awaited answer will not come (the link dropped): the user's turn is over, cut."""
        pending = self._pending
        if pending is not None and not pending.responses:
            self.finish_speech(pending, interrupted=True)

    def on_transcript(self, response: Response, event: AgentTranscript) -> None:
        item = self.item(response)
        if item is not None:
            item.text = event.text if event.final else item.text + event.text
        self._h.emit(AgentTranscribed(text=event.text, final=event.final, speech_id=response.speech.id))
        if event.final and event.text.strip():
            self._h.hook("llm", {"text": event.text})

    def new_speech(self, trigger: str, *, allow_interruptions: bool = True, barge_in: bool = True,
                   origin: float | None = None, eou: float | None = None) -> SpeechHandle | None:
        if not self._h.ready(trigger):
            return None
        handle = SpeechHandle(self.interrupt_one, trigger=trigger, allow_interruptions=allow_interruptions,
                              barge_in=barge_in)
        now = self._h.clock()
        handle.origin = now if origin is None else origin
        handle.requested = now
        self.turns += 1
        handle.metrics.turn = self.turns
        handle.metrics.eou_delay = eou
        handle.metrics.speech_id = handle.id
        handle.metrics.started_at = self._h.now() - (now - handle.origin)
        self.speeches.append(handle)
        self._h.activity()
        return handle

    def interrupt_one(self, speech: SpeechHandle) -> None:
        """``handle.interrupt()``: an entry point of its own."""
        self.interrupt_speeches([speech])
        self._h.changed()

    def handle_or_done(self, handle: SpeechHandle | None) -> SpeechHandle:
        """A refused call (the session is closing) still returns a handle: one that is already done."""
        if handle is None:
            handle = SpeechHandle(self.interrupt_one, trigger="refused")
            handle._finish(interrupted=True)
        return handle

    def response(self, rid: str) -> Response | None:
        """The live response with this id; a new one (bound to its speech) on its first event; ``None`` for a
        response the session stopped."""
        response = self.responses.get(rid)
        if response is not None:
            return response
        if rid in self.stopped:
            return None
        speech = next((s for s in self.speeches if rid in s.expecting), None)
        if speech is None:  # a response the model started by itself: the answer to the user's turn
            pending, self._pending = self._pending, None
            speech = pending or self.new_speech("model")
            if speech is None:
                return None
            if pending is None:
                self._h.answered(speech)
            self._h.hook("user_turn_end")
        speech.expecting.discard(rid)
        response = Response(rid, speech)
        speech.responses.append(response)
        self.responses[rid] = response
        return response

    def item(self, response: Response) -> ChatMessage | None:
        """The response's message in the history (made on first use); ``None`` for a speech kept out of it."""
        if response.item is None and response.speech.in_history:
            response.item = self._h.history.add_message("assistant", "", created_at=self._h.now())
        return response.item

    def on_agent_audio(self, response: Response, frame: AudioFrame) -> bool:
        """Play ``frame`` of ``response``; return whether the playout was idle (the agent starts to be heard)."""
        playout = self.playout
        assert playout is not None
        idle = not playout.active
        item = self.item(response)
        duration = frame.duration
        if item is not None:
            item.audio_duration = (item.audio_duration or 0.0) + duration
        metrics = response.speech.metrics
        if metrics.ttfa is None:
            metrics.ttfa = self._h.clock() - response.speech.requested
            if self._h.first_audio_is_model:
                metrics.realtime_ttfa = metrics.ttfa
        response.received += duration
        playout.push(response, frame)
        return idle

    @property
    def playing(self) -> bool:
        return self.playout is not None and self.playout.active

    def on_tool_call(self, response: Response, call: ToolCall) -> None:
        response.calls.append(call)
        self._call_speech[call.id] = response.speech
        self._h.history.add_function_call(call.id, call.name, call.arguments)
        token = TOOL_OF.set(response.speech)
        try:
            self.tools.start(call)  # the tool's task inherits TOOL_OF
        finally:
            TOOL_OF.reset(token)

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> None:
        speech = self._call_speech.pop(call.id, None)
        if speech is not None:
            speech.metrics.add_tool(call.name, result.duration, is_error=result.is_error, call_id=call.id)
        self._h.emit(FunctionToolCalled(call_id=call.id, name=call.name, arguments=call.arguments,
                                        result=result.output, is_error=result.is_error, duration=result.duration))
        if result.is_error:
            self._h.emit(ErrorOccurred(message=f"tool {call.name!r} failed: {result.output}", recoverable=True,
                                       code="tool_error", component="tool"))

    def on_response_done(self, response: Response, event: ResponseDone) -> None:
        assert self.playout is not None
        speech = response.speech
        response.done = True
        del self.responses[response.id]
        self.stopped.add(response.id)  # a model that sends more of it (after a reconnect, say) is not heard
        speech.metrics.add_usage(event.usage)
        for stage, seconds in event.stages.items():
            if stage == "llm_duration":  # summed over the turn's LLM calls (the answers after tool results too)
                speech.metrics.llm_duration = (speech.metrics.llm_duration or 0.0) + seconds
            elif getattr(speech.metrics, stage, 0.0) is None:  # the turn's first measurement of it
                setattr(speech.metrics, stage, seconds)
        if response.calls:  # before its playout ends: a response of calls only is played out at once
            speech.tools_running += 1
            self._h.spawn(self.finish_tools(speech, response.calls), "tools")
        if event.interrupted:  # the model cut it short itself (a dropped connection, say)
            heard = response.heard(self.playout.played)
            self.playout.stop([response])
            self.cut(response, heard)
        else:
            self.playout.end(response)
        self.settle(speech, interrupted=event.interrupted)

    async def finish_tools(self, speech: SpeechHandle, calls: list[ToolCall]) -> None:
        """All calls of one response are in: add their results to the history and continue, once."""
        try:
            results = await self.tools.results(calls)
        finally:
            speech.tools_running -= 1
        if speech.done() or self._h.tearing_down():
            self.settle(speech, interrupted=True)
            self._h.changed()
            return
        for result in results:
            self._h.history.add_function_output(result.call_id, result.name, result.output, result.is_error)
        handoff = next((r.handoff for r in results if r.handoff is not None), None)
        if handoff is not None:
            # as VideoSDK: the results are recorded, the new agent's on_enter speaks, and no answer follows
            try:
                await self._h.engine().record_tool_results(results)
            except NotImplementedError:
                pass  # an engine that cannot: it answers the results (below), after the new agent's greeting
            else:
                await self._h.hand_over(handoff)
                self.settle(speech)
                self._h.changed()
                return
            await self._h.hand_over(handoff)
        rid = speech.next_response_id()
        speech.requested = self._h.clock()
        self._h.changed()
        await self._h.engine().send_tool_results(results, response_id=rid)

    def settle(self, speech: SpeechHandle, *, interrupted: bool = False) -> None:
        """Finish ``speech`` if nothing of it is left to generate or to play."""
        if speech.done() or not (speech.settled() or (interrupted and speech.finished_work)):
            return
        self.finish_speech(speech, interrupted=interrupted or speech.interrupted)

    def finish_speech(self, speech: SpeechHandle, *, interrupted: bool) -> None:
        if not speech._finish(interrupted=interrupted):
            return
        if speech in self.speeches:
            self.speeches.remove(speech)
        if speech is self._pending:
            self._pending = None
        for rid in speech.expecting:
            self.stopped.add(rid)  # (expected, never begun)
        metrics = speech.metrics
        metrics.interrupted = interrupted
        metrics.timestamp = self._h.now()
        assert self.playout is not None
        metrics.audio_generated = sum(r.received for r in speech.responses) if speech.responses else None
        metrics.audio_duration = sum(r.heard(self.playout.played) if interrupted else r.received
                                     for r in speech.responses)
        metrics.audio_played = metrics.audio_duration if speech.responses else None
        metrics.interrupted_at = metrics.audio_duration if interrupted else None
        self._h.emit(MetricsCollected(metrics=metrics))
        self._h.notify("agentsession_metrics_collected", metrics=metrics)
        if any(r.start is not None for r in speech.responses):
            self._h.hook("agent_turn_end")

    def interrupt_speeches(self, speeches: Iterable[SpeechHandle]) -> asyncio.Task[None] | None:
        """Stop ``speeches``: drop their unplayed audio, cut their history and the model's context at what
        was heard, and tell the pipeline (in the background: this is called from sync code too)."""
        own = TOOL_OF.get()  # a tool interrupting its own speech: its audio stops, the tool and the answer go on
        speeches = [s for s in speeches if not s.done()]
        if not speeches or self.playout is None:
            return None
        played = self.playout.played
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
            self.tools.cancel([c.id for r in speech.responses for c in r.calls])
        speeches = [s for s in speeches if s is not own]
        self.playout.stop(responses)
        for response in responses:
            self.responses.pop(response.id, None)
            self.cut(response, heard[response.id] or 0.0)
        for rid in heard:
            self.stopped.add(rid)
        for speech in speeches:
            speech.expecting.clear()
            self.finish_speech(speech, interrupted=True)
        return self._h.spawn(self.tell_pipeline_interrupted(heard), "interrupt") if heard else None

    async def tell_pipeline_interrupted(self, heard: dict[str, float | None]) -> None:
        try:
            await self._h.engine().interrupt(heard)
        except Exception:
            logger.exception("the pipeline failed to interrupt")

    def cut(self, response: Response, heard: float) -> None:
        """The history keeps what the user heard of ``response``: nothing at all if it never started."""
        item = response.item
        history = self._h.history
        if item is None or item not in history.items:
            return
        if response.start is None:
            history.items.remove(item)
        elif item.audio_duration is not None and heard < item.audio_duration:
            try:
                text = self._h.engine().heard_text(response.id, heard)
            except Exception:
                logger.exception("the pipeline failed to say what was heard; the history is cut in proportion")
                text = None
            history.truncate(item.id, heard, text=text)

    # ------------------------------------------------------------------ playout callbacks

    def on_playout_started(self, response: Response) -> None:
        speech = response.speech
        if speech.metrics.e2e is None:
            speech.metrics.e2e = self._h.clock() - speech.origin
            self._h.hook("agent_turn_start")
        self._h.changed()

    def on_played_out(self, response: Response) -> None:
        self.settle(response.speech)
        self._h.changed()

    def on_frame_played(self, frame: AudioFrame) -> None:
        if self._h.listening("agent_audio"):
            self._h.emit(AgentAudioPlayed(frame=frame, at=self._h.elapsed()))

    def add_user_message(self, text: str) -> None:
        """Some models transcribe the user only after their answer started: keep the history in spoken order."""
        message = ChatMessage("user", text, created_at=self._h.now())
        items = self._h.history.items
        answering = next((r.item for s in self.speeches if s.trigger == "user" for r in s.responses
                          if r.item is not None), None)
        if answering is not None and answering in items:
            items.insert(items.index(answering), message)
        else:
            items.append(message)
