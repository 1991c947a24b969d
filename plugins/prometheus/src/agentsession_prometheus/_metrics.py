"""``PrometheusMetrics``: the worker's sessions, turns, per-stage latencies, errors, reconnects and load as
``prometheus-client`` metrics, fed by the session hooks; and the ``/metrics`` text a worker serves.

Hooks: ``agentsession_session_started`` runs on the event loop (a gauge increment and two event
subscriptions), ``agentsession_metrics_collected``/``agentsession_session_closed`` on the session's
observer thread. ``prometheus-client`` metrics are thread-safe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from agentsession import hookimpl
from agentsession.plugin import TurnMetrics

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from agentsession import AgentSession

#: latency buckets in seconds, dense where voice agents live (100 ms to 2 s)
BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
#: prometheus-client's multiprocess mode: a folder every worker process writes to (see the README)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def provider_of(session: AgentSession) -> str:
    """The provider behind a session: the realtime model's, or the cascade's LLM's (``provider`` attribute)."""
    pipeline = session.pipeline
    component = getattr(pipeline, "model", None) or getattr(pipeline, "llm", None)
    name = getattr(component, "provider", None)
    return name if isinstance(name, str) and name != "unknown" else type(component).__name__.lower()


class LoadCollector(Collector):
    """Process load for capacity decisions: the 1/5/15-minute load averages, CPUs, and the process's threads
    (``process_cpu_seconds_total`` and memory come from prometheus-client's own process collector)."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        load = GaugeMetricFamily("agentsession_load_average", "System load average", labels=["period"])
        try:
            for period, value in zip(("1m", "5m", "15m"), os.getloadavg(), strict=True):
                load.add_metric([period], value)
        except OSError:  # not available on this platform
            pass
        yield load
        yield GaugeMetricFamily("agentsession_cpu_count", "CPUs this process may run on",
                                value=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                else os.cpu_count() or 1)
        yield GaugeMetricFamily("agentsession_threads", "Threads of this process", value=threading.active_count())


class PrometheusMetrics:
    """The metrics, on ``registry`` (default: prometheus-client's global one, so the process collectors and
    the application's own metrics are served alongside). Also the plugin's hook implementations."""

    name = "prometheus-metrics"  # not "prometheus" (the entry point): disabling that leaves an explicit one on

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry
        self.sessions_running = Gauge("agentsession_sessions_running", "Sessions running in this process",
                                      ["pipeline"], registry=r, multiprocess_mode="livesum")
        self.sessions_started = Counter("agentsession_sessions_started", "Sessions started",
                                        ["pipeline", "provider"], registry=r)
        self.sessions_closed = Counter("agentsession_sessions_closed", "Sessions closed, by reason",
                                       ["reason"], registry=r)
        self.turns = Counter("agentsession_turns", "Turns answered", ["trigger", "interrupted", "provider"],
                             registry=r)
        self.stage_seconds = Histogram("agentsession_turn_stage_seconds",
                                       "Latency of each stage of a turn (eou_delay, vad_silence, endpointing_delay, "
                                       "stt_latency, llm_ttft, llm_duration, tts_ttfb, realtime_ttfa, ttfa, e2e)",
                                       ["stage", "provider"], buckets=BUCKETS, registry=r)
        self.tool_seconds = Histogram("agentsession_tool_seconds", "Tool call duration", ["tool", "error"],
                                      buckets=BUCKETS, registry=r)
        self.tokens = Counter("agentsession_tokens", "Tokens used, as the provider reported",
                              ["provider", "type"], registry=r)
        self.errors = Counter("agentsession_errors", "Session errors, by provider and code",
                              ["provider", "code", "recoverable"], registry=r)
        self.reconnects = Counter("agentsession_reconnects", "Model reconnects, by provider", ["provider"],
                                  registry=r)
        self.load = LoadCollector()
        registry.register(self.load)
        self._lock = threading.Lock()
        self._sessions: dict[AgentSession, tuple[str, str]] = {}  # session -> (pipeline, provider)

    def unregister(self) -> None:
        """Take these metrics off their registry (tests, or a second instance)."""
        for collector in (self.sessions_running, self.sessions_started, self.sessions_closed, self.turns,
                          self.stage_seconds, self.tool_seconds, self.tokens, self.errors, self.reconnects, self.load):
            self.registry.unregister(collector)

    # ------------------------------------------------------------------ hooks

    @hookimpl
    def agentsession_session_started(self, session: AgentSession) -> None:
        pipeline, provider = type(session.pipeline).__name__, provider_of(session)
        with self._lock:
            self._sessions[session] = (pipeline, provider)
        self.sessions_running.labels(pipeline).inc()
        self.sessions_started.labels(pipeline, provider).inc()

        def error(data: dict[str, Any]) -> None:
            code = str(data.get("code") or "error")
            if code == "reconnecting":
                self.reconnects.labels(provider).inc()
            self.errors.labels(provider, code, str(bool(data.get("recoverable"))).lower()).inc()

        session.on("error", error)
        session.on("reconnecting", lambda _: self.reconnects.labels(provider).inc())

    @hookimpl
    def agentsession_metrics_collected(self, session: AgentSession, metrics: TurnMetrics) -> None:
        with self._lock:
            _, provider = self._sessions.get(session, ("", provider_of(session)))
        self.record_turn(metrics, provider)

    @hookimpl
    def agentsession_session_closed(self, session: AgentSession, reason: str) -> None:
        with self._lock:
            known = self._sessions.pop(session, None)
        if known is not None:
            self.sessions_running.labels(known[0]).dec()
        self.sessions_closed.labels(reason).inc()

    def record_turn(self, m: TurnMetrics, provider: str) -> None:
        """Count one turn and put its measured stages, tools and tokens in the histograms."""
        self.turns.labels(m.trigger, str(m.interrupted).lower(), provider).inc()
        for stage, seconds in m.latencies().items():
            self.stage_seconds.labels(stage, provider).observe(seconds)
        for tool in m.tools:
            if tool.duration is not None:
                self.tool_seconds.labels(tool.name, str(tool.is_error).lower()).observe(tool.duration)
        for kind, count in (("input", m.input_tokens), ("output", m.output_tokens)):
            if count:
                self.tokens.labels(provider, kind).inc(count)


# ---------------------------------------------------------------------- exposition


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    if os.environ.get(MULTIPROC_ENV):  # every worker process's files, summed
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def metrics_text(registry: CollectorRegistry | None = None) -> bytes:
    """The ``/metrics`` body in Prometheus' text format (``CONTENT_TYPE``)."""
    return generate_latest(_registry(registry))


CONTENT_TYPE = CONTENT_TYPE_LATEST


def metrics_response(headers: Mapping[str, str] | None = None,
                     registry: CollectorRegistry | None = None) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` for a ``GET /metrics`` with the request's ``headers``: the text format, or
    OpenMetrics when the scraper's ``Accept`` asks for it. For any HTTP server (aiohttp, the worker's own)."""
    accept = next((v for k, v in (headers or {}).items() if k.lower() == "accept"), "")
    encoder, content_type = choose_encoder(accept)
    return 200, {"Content-Type": content_type}, encoder(_registry(registry))


def start_http_server(port: int, addr: str = "0.0.0.0",
                      registry: CollectorRegistry | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread (for a worker without an HTTP endpoint of its
    own); returns the server (``shutdown()`` stops it) and its thread."""
    return _start_http_server(port, addr, registry=_registry(registry))
