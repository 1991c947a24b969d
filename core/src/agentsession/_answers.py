"""``Answers``: what the agent is saying and about to say. The speeches (``SpeechHandle``), the model responses
they are made of (bound by response id), their playout, their tool calls, and interrupting them with the
history (and the model's context) cut at what the user heard."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._audio import AudioFrame
from ._chat import ChatMessage
from ._pipeline_events import AgentTranscript, ResponseDone, ToolCall
from ._speech import Response, SpeechHandle
from ._speech_playout import SpeechPlayout
from ._tool_runner import ToolRunner
from ._tools import ToolResult
from ._transport import Transport

if TYPE_CHECKING:
    from ._session import AgentSession

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


class Answers:
    """The session's answers (one per session). It reads the session's history, pipeline and clock, and
    asks it to re-derive the states when something changes."""

    def __init__(self, session: AgentSession) -> None:
        self._s = session
        self.speeches: list[SpeechHandle] = []  # not done, in the order they were asked for
        self.responses: dict[str, Response] = {}  # live responses by id
        self.stopped = _RecentIds()  # responses stopped or ended: later events of theirs are dropped
        self.user_turn_pending: SpeechHandle | None = None  # the user's turn ended; its answer is awaited
        self.playout: SpeechPlayout | None = None
        self.tools = ToolRunner(session._spawn, self.on_tool_result)
        self.turns = 0
        self._call_speech: dict[str, SpeechHandle] = {}  # tool call id -> the speech it belongs to

    def start_playout(self, transport: Transport) -> asyncio.Task[None]:
        self.playout = SpeechPlayout(transport, self.on_playout_started, self.on_played_out, self.on_frame_played,
                                     self._s._update_states)
        return self.playout.start()

    def drop_if_unanswered(self, speech: SpeechHandle) -> None:
        """``speech`` (a user turn) got no answer: it is over, with nothing said."""
        if speech is self.user_turn_pending and not speech.responses:
            self.finish_speech(speech, interrupted=False)

    def on_transcript(self, response: Response, event: AgentTranscript) -> None:
        item = self.item(response)
        item.text = event.text if event.final else item.text + event.text
        self._s._emit("agent_transcript", {"text": event.text, "final": event.final, "speech_id": response.speech.id})

    def new_speech(self, trigger: str, *, allow_interruptions: bool = True, barge_in: bool = True,
                    origin: float | None = None, eou: float | None = None) -> SpeechHandle | None:
        if not self._s._ready(trigger):
            return None
        handle = SpeechHandle(self, trigger=trigger, allow_interruptions=allow_interruptions, barge_in=barge_in)
        now = self._s._loop_time()
        handle.origin = now if origin is None else origin
        handle.requested = now
        self.turns += 1
        handle.metrics.turn = self.turns
        handle.metrics.eou_delay = eou
        handle.metrics.speech_id = handle.id
        handle.metrics.started_at = self._s.now() - (now - handle.origin)
        self.speeches.append(handle)
        if self._s._wake is not None:
            self._s._wake.activity()
        self._s._update_states()
        return handle

    def handle_or_done(self, handle: SpeechHandle | None) -> SpeechHandle:
        """A refused call (the session is closing) still returns a handle: one that is already done."""
        if handle is None:
            handle = SpeechHandle(self, trigger="refused")
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
            speech = self.user_turn_pending or self.new_speech("user" if self.user_turn_pending else "model")
            self.user_turn_pending = None
            if speech is None:
                return None
        speech.expecting.discard(rid)
        response = Response(rid, speech)
        speech.responses.append(response)
        self.responses[rid] = response
        return response

    def item(self, response: Response) -> ChatMessage:
        if response.item is None:
            response.item = self._s.history.add_message("assistant", "", created_at=self._s.now())
        return response.item

    def on_agent_audio(self, response: Response, frame: AudioFrame) -> None:
        assert self.playout is not None
        item = self.item(response)
        duration = frame.duration
        item.audio_duration = (item.audio_duration or 0.0) + duration
        metrics = response.speech.metrics
        if metrics.ttfa is None:
            metrics.ttfa = self._s._loop_time() - response.speech.requested
            if self._s.pipeline.reports_first_audio:
                metrics.realtime_ttfa = metrics.ttfa
        response.received += duration
        was_playing = self.playout.active
        self.playout.push(response, frame)
        if not was_playing:
            self._s._update_states()

    @property
    def playing(self) -> bool:
        return self.playout is not None and self.playout.active

    def on_tool_call(self, response: Response, call: ToolCall) -> None:
        response.calls.append(call)
        self._call_speech[call.id] = response.speech
        self._s.history.add_function_call(call.id, call.name, call.arguments)
        token = TOOL_OF.set(response.speech)
        try:
            self.tools.start(call)  # the tool's task inherits TOOL_OF
        finally:
            TOOL_OF.reset(token)
        self._s._update_states()

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> None:
        speech = self._call_speech.pop(call.id, None)
        if speech is not None:
            speech.metrics.add_tool(call.name, result.duration, is_error=result.is_error, call_id=call.id)
        self._s._emit("function_tool_called", {
            "call_id": call.id, "name": call.name, "arguments": call.arguments, "result": result.output,
            "is_error": result.is_error, "duration": result.duration,
        })
        if result.is_error:
            self._s._emit("error", {"message": f"tool {call.name!r} failed: {result.output}", "recoverable": True,
                                 "code": "tool_error"})

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
            self._s._spawn(self.finish_tools(speech, response.calls), "tools")
        if event.interrupted:  # the model cut it short itself (a dropped connection, say)
            heard = response.heard(self.playout.played)
            self.playout.stop([response])
            self.cut(response, heard)
        else:
            self.playout.end(response)
        self.settle(speech, interrupted=event.interrupted)
        self._s._update_states()

    async def finish_tools(self, speech: SpeechHandle, calls: list[ToolCall]) -> None:
        """All calls of one response are in: add their results to the history and continue, once."""
        try:
            results = await self.tools.results(calls)
        finally:
            speech.tools_running -= 1
        if speech.done() or self._s._tearing_down:
            self.settle(speech, interrupted=True)
            return
        for result in results:
            self._s.history.add_function_output(result.call_id, result.name, result.output, result.is_error)
        handoff = next((r.handoff for r in results if r.handoff is not None), None)
        if handoff is not None:
            await self._s.update_agent(handoff)
        rid = speech.next_response_id()
        speech.requested = self._s._loop_time()
        self._s._update_states()
        await self._s.pipeline.send_tool_results(results, response_id=rid)

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
        if speech is self.user_turn_pending:
            self.user_turn_pending = None
        for rid in speech.expecting:
            self.stopped.add(rid)  # (expected, never begun)
        metrics = speech.metrics
        metrics.interrupted = interrupted
        metrics.timestamp = self._s.now()
        assert self.playout is not None
        metrics.audio_generated = sum(r.received for r in speech.responses) if speech.responses else None
        metrics.audio_duration = sum(r.heard(self.playout.played) if interrupted else r.received
                                     for r in speech.responses)
        metrics.audio_played = metrics.audio_duration if speech.responses else None
        metrics.interrupted_at = metrics.audio_duration if interrupted else None
        self._s._emit("metrics_collected", metrics.as_dict())
        self._s._notify("agentsession_metrics_collected", metrics=metrics)
        self._s._update_states()

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
        self._s._update_states()
        return self._s._spawn(self.tell_pipeline_interrupted(heard), "interrupt") if heard else None

    async def tell_pipeline_interrupted(self, heard: dict[str, float | None]) -> None:
        try:
            await self._s.pipeline.interrupt(heard)
        except Exception:
            logger.exception("the pipeline failed to interrupt")

    def cut(self, response: Response, heard: float) -> None:
        """The history keeps what the user heard of ``response``: nothing at all if it never started."""
        item = response.item
        if item is None or item not in self._s.history.items:
            return
        if response.start is None:
            self._s.history.items.remove(item)
        elif item.audio_duration is not None and heard < item.audio_duration:
            try:
                text = self._s.pipeline.heard_text(response.id, heard)
            except Exception:
                logger.exception("the pipeline failed to say what was heard; the history is cut in proportion")
                text = None
            self._s.history.truncate(item.id, heard, text=text)

    # ------------------------------------------------------------------ playout callbacks

    def on_playout_started(self, response: Response) -> None:
        speech = response.speech
        if speech.metrics.e2e is None:
            speech.metrics.e2e = self._s._loop_time() - speech.origin
        self._s._update_states()

    def on_played_out(self, response: Response) -> None:
        self.settle(response.speech)
        self._s._update_states()

    def on_frame_played(self, frame: AudioFrame) -> None:
        if self._s._emitter.has_listeners("agent_audio"):
            self._s._emit("agent_audio", {"frame": frame, "at": self._s._loop_time() - self._s._clock_anchor[0]})

    def add_user_message(self, text: str) -> None:
        """Some models transcribe the user only after their answer started: keep the history in spoken order."""
        message = ChatMessage("user", text, created_at=self._s.now())
        items = self._s.history.items
        answering = next((r.item for s in self.speeches if s.trigger == "user" for r in s.responses
                          if r.item is not None), None)
        if answering is not None and answering in items:
            items.insert(items.index(answering), message)
        else:
            items.append(message)
