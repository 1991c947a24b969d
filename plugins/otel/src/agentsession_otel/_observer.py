"""``OtelObserver``: a session's trace (a span per turn, child spans per stage) and latency histograms.

The session calls ``agentsession_session_started`` on its event loop and the other hooks on its observer
thread, so everything here is cheap on the loop (a span start, a dict write under a lock) and the real
work (building a turn's spans and recording histograms) happens on the observer thread.

Span timing. The session measures each stage's duration (``TurnMetrics``), not when it began, so a turn's
stage spans are laid out from the turn's ``t0`` (``started_at``: the end of the user's speech, or the
request) in the order a turn runs: end of utterance, then STT, then the LLM (with a ``first_token``
event) and TTS from the first token, or the realtime model; playout from ``t0 + e2e`` to the turn's end.
Tool spans are where they really were: they end when the session reported the tool's result.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentsession import hookimpl, redact
from agentsession.plugin import TurnMetrics

from ._config import Providers

if TYPE_CHECKING:
    from agentsession import AgentSession

logger = logging.getLogger("agentsession.otel")

INSTRUMENTATION = "agentsession_otel"
VERSION = "0.1.0"
#: histogram buckets in seconds (the GenAI semantic conventions' advice for durations)
BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: provider names as the GenAI semantic conventions spell them
_PROVIDERS = {"gemini": "gcp.gemini", "google": "gcp.gemini", "vertex": "gcp.vertex_ai"}


@dataclass(frozen=True)
class StageSpan:
    """One child span of a turn: a name, its interval (epoch seconds) and attributes."""

    name: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    events: tuple[tuple[str, float], ...] = ()
    error: str | None = None


def component(obj: object) -> tuple[str | None, str | None]:
    """``(provider, model)`` of a model, STT, LLM or TTS object (``provider`` and ``model`` attributes)."""
    if obj is None:
        return None, None
    provider = getattr(obj, "provider", None)
    provider = provider if isinstance(provider, str) and provider != "unknown" else type(obj).__name__
    model = getattr(obj, "model", None)
    return _PROVIDERS.get(provider.lower(), provider), model if isinstance(model, str) else None


def describe(session: AgentSession) -> dict[str, Any]:
    """The session's attributes: agent, pipeline, transport and the GenAI system and model behind it."""
    pipeline = session.pipeline
    attrs: dict[str, Any] = {"gen_ai.agent.name": type(session.agent).__name__,
                             "agentsession.pipeline": type(pipeline).__name__}
    try:
        attrs["agentsession.transport"] = type(session.transport).__name__
    except Exception:
        pass
    realtime = getattr(pipeline, "model", None)
    if realtime is not None:
        provider, model = component(realtime)
        attrs["agentsession.realtime"] = True
    else:
        provider, model = component(getattr(pipeline, "llm", None))
        for stage in ("stt", "tts"):
            stage_provider, stage_model = component(getattr(pipeline, stage, None))
            if stage_provider is not None:
                attrs[f"agentsession.{stage}.provider"] = stage_provider
            if stage_model is not None:
                attrs[f"agentsession.{stage}.model"] = stage_model
    if provider is not None:
        attrs["gen_ai.system"] = attrs["gen_ai.provider.name"] = provider
    if model is not None:
        attrs["gen_ai.request.model"] = model
    return attrs


def turn_start(m: TurnMetrics) -> float:
    """Epoch seconds of the turn's ``t0``; estimated back from its end when the record has no ``started_at``."""
    if m.started_at is not None:
        return m.started_at
    heard = m.audio_played if m.audio_played is not None else m.audio_duration
    return m.timestamp - heard - (m.e2e or 0.0)


def stage_spans(m: TurnMetrics, tool_ends: Mapping[str, float] | None = None,
                session_attrs: Mapping[str, Any] | None = None) -> list[StageSpan]:
    """The child spans of a turn, from its record (see the module's docstring for how they are placed)."""
    attrs = dict(session_attrs or {})
    model = attrs.get("gen_ai.request.model")
    system: dict[str, Any] = {k: attrs[k] for k in ("gen_ai.system", "gen_ai.provider.name", "gen_ai.request.model") if k in attrs}
    usage = {k: v for k, v in (("gen_ai.usage.input_tokens", m.input_tokens),
                               ("gen_ai.usage.output_tokens", m.output_tokens)) if v is not None}
    t0 = turn_start(m)
    spans: list[StageSpan] = []
    at = t0
    if m.eou_delay is not None:
        eou: dict[str, Any] = {"agentsession.end_of_turn.reason": m.end_of_turn_reason} if m.end_of_turn_reason else {}
        for part in ("vad_silence", "endpointing_delay"):  # what the end of turn is made of
            if (seconds := getattr(m, part)) is not None:
                eou[f"agentsession.latency.{part}_s"] = seconds
        spans.append(StageSpan("agentsession.eou", at, at + m.eou_delay, eou))
        at += m.eou_delay
    if m.stt_latency is not None:
        stt = {k: v for k, v in attrs.items() if k.startswith("agentsession.stt.")}
        spans.append(StageSpan("agentsession.stt", at, at + m.stt_latency, stt))
        at += m.stt_latency
    llm_start = at
    first_token = llm_start + (m.llm_ttft or 0.0)
    if m.llm_ttft is not None or m.llm_duration is not None:
        duration = m.llm_duration if m.llm_duration is not None else m.llm_ttft
        assert duration is not None
        llm_attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", **system, **usage}
        if m.llm_ttft is not None:
            llm_attrs["agentsession.latency.llm_ttft_s"] = m.llm_ttft
        spans.append(StageSpan(f"chat {model}" if model else "chat", llm_start, llm_start + duration, llm_attrs,
                               events=(("first_token", first_token),) if m.llm_ttft is not None else ()))
    if m.tts_ttfb is not None:
        tts = {k: v for k, v in attrs.items() if k.startswith("agentsession.tts.")}
        spans.append(StageSpan("agentsession.tts", first_token, first_token + m.tts_ttfb, tts))
    if m.realtime_ttfa is not None:
        spans.append(StageSpan(f"realtime {model}" if model else "realtime", at, at + m.realtime_ttfa,
                               {**system, **usage, "agentsession.latency.realtime_ttfa_s": m.realtime_ttfa}))
    tool_at = first_token if m.llm_ttft is not None else at + (m.realtime_ttfa or 0.0)
    for tool in m.tools:
        duration = tool.duration or 0.0
        end = (tool_ends or {}).get(tool.call_id or "")
        start = end - duration if end is not None else tool_at
        tool_attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.name}
        if tool.call_id:
            tool_attrs["gen_ai.tool.call.id"] = tool.call_id
        spans.append(StageSpan(f"execute_tool {tool.name}", start, start + duration, tool_attrs,
                               error="tool_error" if tool.is_error else None))
        if end is None:
            tool_at = start + duration
    if m.e2e is not None:
        playout: dict[str, Any] = {"agentsession.turn.interrupted": m.interrupted}
        for key, value in (("agentsession.audio.generated_s", m.audio_generated),
                           ("agentsession.audio.played_s", m.audio_played),
                           ("agentsession.turn.interrupted_at_s", m.interrupted_at)):
            if value is not None:
                playout[key] = value
        spans.append(StageSpan("agentsession.playout", t0 + m.e2e, max(t0 + m.e2e, m.timestamp), playout))
    return spans


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


@dataclass
class _SessionTrace:
    span: Span
    context: Context
    attributes: dict[str, Any]
    tool_ends: dict[str, float] = field(default_factory=dict)
    turns: int = 0


class OtelObserver:
    """The plugin's hook implementations on given providers (the entry point builds one from ``OTEL_*``;
    tests pass SDK providers with in-memory exporters). Thread-safe."""

    name = "otel-observer"  # not "otel" (the entry point): AGENTSESSION_DISABLE_PLUGINS=otel leaves it on

    def __init__(self, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None, *, providers: Providers | None = None) -> None:
        if providers is None:
            providers = Providers(tracer_provider or trace.get_tracer_provider(),
                                  meter_provider or metrics.get_meter_provider())
        self.providers = providers
        self._tracer = providers.tracer_provider.get_tracer(INSTRUMENTATION, VERSION)
        meter = providers.meter_provider.get_meter(INSTRUMENTATION, VERSION)
        self._stage = meter.create_histogram(
            "agentsession.turn.stage.duration", unit="s", explicit_bucket_boundaries_advisory=BUCKETS,
            description="Latency of each stage of a turn (agentsession.stage: eou_delay, vad_silence, "
                        "endpointing_delay, stt_latency, llm_ttft, llm_duration, tts_ttfb, "
                        "realtime_ttfa, ttfa, e2e, tool)")
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per turn, as the provider reported",
            explicit_bucket_boundaries_advisory=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576))
        self._operation = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=BUCKETS,
            description="Duration of the LLM's generation in a turn (cascade)")
        self._turns = meter.create_counter("agentsession.turns", unit="{turn}", description="Turns answered")
        self._active = meter.create_up_down_counter("agentsession.sessions.active", unit="{session}",
                                                    description="Sessions running")
        self._errors = meter.create_counter("agentsession.errors", unit="{error}", description="Session errors")
        self._reconnects = meter.create_counter("agentsession.reconnects", unit="{reconnect}",
                                                description="Model reconnects")
        self._lock = threading.Lock()
        self._sessions: dict[AgentSession, _SessionTrace] = {}

    # ------------------------------------------------------------------ hooks

    @hookimpl
    def agentsession_session_started(self, session: AgentSession) -> None:
        attrs = {**describe(session), "gen_ai.conversation.id": uuid.uuid4().hex}
        span = self._tracer.start_span("agentsession.session", kind=SpanKind.INTERNAL, attributes=attrs,
                                       start_time=_ns(session.now()))
        state = _SessionTrace(span, trace.set_span_in_context(span), attrs)
        with self._lock:
            self._sessions[session] = state
        self._active.add(1, self._common(attrs))

        def tool(data: dict[str, Any]) -> None:
            with self._lock:
                state.tool_ends[str(data.get("call_id"))] = session.now()

        def error(data: dict[str, Any]) -> None:
            code = data.get("code")
            if code == "reconnecting":
                reconnect()
                return
            kind, recoverable = str(code or "error"), bool(data.get("recoverable"))
            span.add_event("agentsession.error", {"error.type": kind, "agentsession.error.recoverable": recoverable,
                                                  "agentsession.error.message": redact(str(data.get("message", "")))[:300]},
                           timestamp=_ns(session.now()))
            self._errors.add(1, {**self._common(attrs), "error.type": kind,
                                 "agentsession.error.recoverable": recoverable})

        def reconnect(data: object = None) -> None:
            span.add_event("agentsession.reconnecting", timestamp=_ns(session.now()))
            self._reconnects.add(1, self._common(attrs))

        session.on("function_tool_called", tool)
        session.on("error", error)
        session.on("reconnecting", reconnect)
        session.on("false_interruption", lambda d: span.add_event("agentsession.false_interruption",
                                                                  timestamp=_ns(session.now())))
        session.on("wake_up", lambda d: span.add_event("agentsession.wake_up", {"agentsession.idle_s": d["idle_s"]},
                                                       timestamp=_ns(session.now())))

    @hookimpl
    def agentsession_metrics_collected(self, session: AgentSession, metrics: TurnMetrics) -> None:
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                return
            state.turns += 1
            tool_ends = dict(state.tool_ends)
        self.record_turn(metrics, state.context, state.attributes, tool_ends)

    @hookimpl
    def agentsession_session_closed(self, session: AgentSession, reason: str) -> None:
        with self._lock:
            state = self._sessions.pop(session, None)
        if state is None:
            return
        state.span.set_attribute("agentsession.close_reason", reason)
        state.span.set_attribute("agentsession.turns", state.turns)
        if reason == "error":
            state.span.set_status(Status(StatusCode.ERROR, "the session closed on an error"))
        state.span.end(end_time=_ns(session.now()))
        self._active.add(-1, self._common(state.attributes))
        self.providers.flush()

    # ------------------------------------------------------------------ a turn

    def record_turn(self, m: TurnMetrics, parent: Context | None = None, session_attrs: Mapping[str, Any] | None = None,
                    tool_ends: Mapping[str, float] | None = None) -> None:
        """A turn's span with its stage spans under ``parent``, and its latencies in the histograms."""
        attrs = dict(session_attrs or {})
        common = self._common(attrs)
        children = stage_spans(m, tool_ends, attrs)
        start = min([turn_start(m), *(c.start for c in children)])
        end = max([m.timestamp, *(c.end for c in children)])
        turn_attrs: dict[str, Any] = {
            "agentsession.turn.number": m.turn, "agentsession.turn.trigger": m.trigger,
            "agentsession.turn.interrupted": m.interrupted,
            **{k: attrs[k] for k in ("gen_ai.conversation.id", "gen_ai.agent.name", "gen_ai.system",
                                     "gen_ai.provider.name", "gen_ai.request.model") if k in attrs},
        }
        optional = {"agentsession.speech.id": m.speech_id, "agentsession.end_of_turn.reason": m.end_of_turn_reason,
                    "gen_ai.usage.input_tokens": m.input_tokens, "gen_ai.usage.output_tokens": m.output_tokens,
                    "agentsession.audio.generated_s": m.audio_generated, "agentsession.audio.played_s": m.audio_played,
                    "agentsession.turn.interrupted_at_s": m.interrupted_at,
                    **{f"agentsession.latency.{k}_s": v for k, v in m.latencies().items()}}
        turn_attrs.update({k: v for k, v in optional.items() if v is not None})
        turn = self._tracer.start_span("agentsession.turn", context=parent, attributes=turn_attrs,
                                       start_time=_ns(start))
        context = trace.set_span_in_context(turn)
        for child in children:
            span = self._tracer.start_span(child.name, context=context, attributes=child.attributes,
                                           start_time=_ns(child.start))
            for name, at in child.events:
                span.add_event(name, timestamp=_ns(at))
            if child.error is not None:
                span.set_attribute("error.type", child.error)
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=_ns(child.end))
        turn.end(end_time=_ns(end))

        trigger = {**common, "agentsession.turn.trigger": m.trigger}
        for stage, seconds in m.latencies().items():
            self._stage.record(seconds, {**trigger, "agentsession.stage": stage})
        for tool in m.tools:
            if tool.duration is not None:
                self._stage.record(tool.duration, {**trigger, "agentsession.stage": "tool",
                                                   "gen_ai.tool.name": tool.name})
        operation = {**common, "gen_ai.operation.name": "chat"}
        if "gen_ai.request.model" in attrs:
            operation["gen_ai.request.model"] = attrs["gen_ai.request.model"]
        for kind, count in (("input", m.input_tokens), ("output", m.output_tokens)):
            if count is not None:
                self._tokens.record(count, {**operation, "gen_ai.token.type": kind})
        if m.llm_duration is not None:
            self._operation.record(m.llm_duration, operation)
        self._turns.add(1, {**trigger, "agentsession.turn.interrupted": m.interrupted})

    @staticmethod
    def _common(attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The low-cardinality attributes metrics carry (no ids)."""
        return {k: attrs[k] for k in ("gen_ai.system", "agentsession.pipeline") if k in attrs}
