"""agentsession-otel against the real OpenTelemetry SDK: an in-memory span exporter and metric reader for
what a session produces, and an OTLP/HTTP collector stand-in on loopback (the protobuf export parsed with
``opentelemetry-proto``) for the entry point configured by ``OTEL_*`` variables only."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import agentsession_otel.plugin as entry_point
from agentsession import Agent, AgentSession, RealTimePipeline, function_tool, hookimpl
from agentsession.plugin import TurnMetrics
from agentsession.plugin import discover_plugins as discover
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport
from agentsession_otel import OtelObserver, enabled_by, providers_from_env, stage_spans

OTEL_VARS = ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
             "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_SERVICE_NAME",
             "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_RESOURCE_ATTRIBUTES")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTSESSION_DISABLE_PLUGINS", "otel,recorder")  # each test registers what it tests
    entry_point.reset()
    yield
    entry_point.reset()


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Weather.")

    @function_tool
    async def get_weather(self, city: str) -> str:
        """The weather.

        Args:
            city: the city
        """
        await asyncio.sleep(0.05)
        return f"sunny in {city}"


class Cascade:
    """Stands in for the lead's wiring of the new fields: fills a realistic cascade's stages and usage before
    any other observer sees the record (``tryfirst``), as the session will."""

    name = "cascade-filler"

    @hookimpl(tryfirst=True)
    def agentsession_metrics_collected(self, session: AgentSession, metrics: TurnMetrics) -> None:
        if metrics.trigger == "text" and not metrics.interrupted:
            metrics.end_of_turn_reason = "silence"
            metrics.stt_latency, metrics.llm_ttft, metrics.llm_duration, metrics.tts_ttfb = 0.2, 0.3, 0.6, 0.1
            metrics.add_usage({"input_tokens": 50, "output_tokens": 12})


async def _conversation(*plugins: object) -> None:
    model = FakeRealtimeModel([
        FakeResponse(text="Let me check.", audio=0.2, tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"})],
                     then=FakeResponse(text="Sunny in Oslo.", audio=0.3)),
        FakeResponse(text="Once upon a time " * 4, audio=3.0),
    ])
    session = AgentSession(Weather(), RealTimePipeline(model), plugins=list(plugins))
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    try:
        await session.run(user_input="Weather in Oslo?", timeout=10)
        story = await session.send_text("Tell me a story.")
        await asyncio.sleep(0.1)
        await session.interrupt()
        await story
        model.fail("the socket dropped", recoverable=True)
    finally:
        await session.close("done")
        await transport.close()


def _sdk() -> tuple[OtelObserver, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    return OtelObserver(tracer_provider, MeterProvider(metric_readers=[reader])), spans, reader


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {m.name: list(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics}


async def test_one_trace_per_session_a_span_per_turn_and_stage() -> None:
    observer, exporter, reader = _sdk()
    await _conversation(observer, Cascade())
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [root] = by_name["agentsession.session"]
    assert root.parent is None and {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert root.attributes is not None
    assert root.attributes["gen_ai.system"] == "fake" and root.attributes["gen_ai.agent.name"] == "Weather"
    assert root.attributes["agentsession.close_reason"] == "done" and root.attributes["agentsession.turns"] == 2
    assert [e.name for e in root.events] == ["agentsession.error"]  # the dropped socket
    turns = by_name["agentsession.turn"]
    assert [t.attributes["agentsession.turn.trigger"] for t in turns if t.attributes] == ["text", "text"]
    assert all(t.parent is not None and t.parent.span_id == root.context.span_id for t in turns)
    answer, story = turns
    assert answer.attributes is not None and story.attributes is not None
    assert answer.attributes["gen_ai.usage.input_tokens"] == 50 and not answer.attributes["agentsession.turn.interrupted"]
    assert story.attributes["agentsession.turn.interrupted"]
    children = {s.name: s for s in spans if s.parent is not None and s.parent.span_id == answer.context.span_id}
    # the filler stands in for a cascade's stages; the session itself measured the tool call and the realtime
    # model's first audio (the fake is a realtime model)
    assert set(children) == {"agentsession.stt", "chat", "execute_tool get_weather", "agentsession.tts",
                             "realtime", "agentsession.playout"}
    chat = children["chat"]
    assert chat.attributes is not None and chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.output_tokens"] == 12 + 2 * 10  # the filler's, and the two fake responses'
    assert [e.name for e in chat.events] == ["first_token"]
    assert chat.end_time is not None and chat.start_time is not None
    assert chat.end_time - chat.start_time == pytest.approx(0.6e9, rel=1e-6)
    stt = children["agentsession.stt"]
    assert stt.end_time == chat.start_time  # back to back from the turn's start
    for child in children.values():
        assert answer.start_time is not None and answer.end_time is not None
        assert child.start_time is not None and child.end_time is not None
        assert answer.start_time <= child.start_time <= child.end_time <= answer.end_time

    points = _points(reader)
    stages = {p.attributes["agentsession.stage"]: p for p in points["agentsession.turn.stage.duration"]}
    assert {"stt_latency", "llm_ttft", "llm_duration", "tts_ttfb", "ttfa", "e2e"} <= set(stages)
    assert stages["stt_latency"].count == 1 and stages["stt_latency"].sum == pytest.approx(0.2)
    e2e = [t.attributes["agentsession.latency.e2e_s"] for t in turns
           if t.attributes is not None and "agentsession.latency.e2e_s" in t.attributes]
    assert stages["e2e"].count == len(e2e) and stages["e2e"].sum == pytest.approx(sum(e2e))
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens["input"] == 50
    assert sum(p.value for p in points["agentsession.turns"]) == 2
    assert [p.value for p in points["agentsession.sessions.active"]] == [0]
    assert sum(p.value for p in points["agentsession.errors"]) == 1


async def test_concurrent_sessions_get_a_trace_each() -> None:
    observer, exporter, _ = _sdk()
    await asyncio.gather(*(_conversation(observer) for _ in range(4)))
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "agentsession.session"]
    assert len(roots) == 4 and len({r.context.trace_id for r in roots}) == 4
    for root in roots:
        turns = [s for s in spans if s.name == "agentsession.turn" and s.context.trace_id == root.context.trace_id]
        assert len(turns) == 2 and all(t.parent is not None and t.parent.span_id == root.context.span_id
                                       for t in turns)


def test_stage_spans_of_a_full_record() -> None:
    m = TurnMetrics(turn=2, trigger="user", eou_delay=0.5, stt_latency=0.2, llm_ttft=0.3, llm_duration=0.9,
                    tts_ttfb=0.1, ttfa=0.6, e2e=1.2, started_at=100.0, timestamp=104.0, interrupted=True,
                    audio_generated=3.0, audio_played=2.8, interrupted_at=2.8, end_of_turn_reason="turn_detector")
    m.add_tool("get_weather", 0.4, call_id="c1")
    m.add_tool("lookup", 0.1, is_error=True, call_id="c2")
    spans = stage_spans(m, {"c1": 101.5}, {"gen_ai.request.model": "gpt-x", "gen_ai.system": "openai",
                                           "agentsession.tts.provider": "openai"})
    got = {s.name: (round(s.start, 6), round(s.end, 6)) for s in spans}
    assert got == {
        "agentsession.eou": (100.0, 100.5), "agentsession.stt": (100.5, 100.7), "chat gpt-x": (100.7, 101.6),
        "agentsession.tts": (101.0, 101.1),
        "execute_tool get_weather": (101.1, 101.5),  # where it really was: it returned at 101.5
        "execute_tool lookup": (101.0, 101.1),  # not reported: placed from the first token
        "agentsession.playout": (101.2, 104.0),
    }
    by_name = {s.name: s for s in spans}
    assert by_name["agentsession.eou"].attributes == {"agentsession.end_of_turn.reason": "turn_detector"}
    assert by_name["execute_tool lookup"].error == "tool_error"
    assert by_name["execute_tool get_weather"].attributes["gen_ai.tool.call.id"] == "c1"
    assert by_name["agentsession.tts"].attributes == {"agentsession.tts.provider": "openai"}
    assert by_name["agentsession.playout"].attributes["agentsession.turn.interrupted_at_s"] == 2.8
    realtime = stage_spans(TurnMetrics(turn=1, trigger="user", eou_delay=0.4, realtime_ttfa=0.3, e2e=0.8,
                                       started_at=10.0, timestamp=12.0), None, {"gen_ai.request.model": "rt"})
    assert [(s.name, round(s.start, 6), round(s.end, 6)) for s in realtime] == [
        ("agentsession.eou", 10.0, 10.4), ("realtime rt", 10.4, 10.7), ("agentsession.playout", 10.8, 12.0)]


def test_the_environment_decides() -> None:
    assert enabled_by({}) == {"traces": [], "metrics": []}
    assert enabled_by({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}) == {"traces": ["otlp"], "metrics": ["otlp"]}
    assert enabled_by({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_METRICS_EXPORTER": "none"}) == \
        {"traces": ["otlp"], "metrics": []}
    assert enabled_by({"OTEL_TRACES_EXPORTER": "console"}) == {"traces": ["console"], "metrics": []}
    assert enabled_by({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}) == \
        {"traces": [], "metrics": []}
    assert providers_from_env({}) is None


def test_an_unusable_exporter_is_one_error_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    providers = providers_from_env({"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_METRICS_EXPORTER": "none"})
    assert providers is not None
    assert "OTEL_TRACES_EXPORTER='zipkin' is not supported" in caplog.text
    providers.shutdown()


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP collector stand-in: keeps every export it receives (path, decoded protobuf body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.got = threading.Condition()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.headers["Content-Type"] == "application/x-protobuf"
                with collector.got:
                    collector.received.append((self.path, body))
                    collector.got.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def traces(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(b) for p, b in self.received if p == "/v1/traces"]

    def metrics(self) -> list[ExportMetricsServiceRequest]:
        return [ExportMetricsServiceRequest.FromString(b) for p, b in self.received if p == "/v1/metrics"]


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_the_entry_point_exports_over_otlp_http_as_configured(collector: Collector,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "weather-bot")
    monkeypatch.setenv("AGENTSESSION_DISABLE_PLUGINS", "recorder")  # the otel entry point is on
    assert "otel" in {p.name for p in discover(reload=True) if p.module is entry_point}
    try:
        await _conversation(Cascade())  # the session closes: the plugin flushes its providers
    finally:  # entry points are loaded once per process: leave every one loaded for the tests after this one
        monkeypatch.delenv("AGENTSESSION_DISABLE_PLUGINS")
        discover(reload=True)
    with collector.got:
        assert collector.got.wait_for(lambda: collector.traces() and collector.metrics(), timeout=10)
    spans = [(span, rs.resource) for request in collector.traces() for rs in request.resource_spans
             for ss in rs.scope_spans for span in ss.spans]
    names = [span.name for span, _ in spans]
    assert names.count("agentsession.session") == 1 and names.count("agentsession.turn") == 2
    assert {"agentsession.stt", "chat", "agentsession.tts", "agentsession.playout"} <= set(names)
    resource = {a.key: a.value.string_value for a in spans[0][1].attributes}
    assert resource["service.name"] == "weather-bot"
    root = next(span for span, _ in spans if span.name == "agentsession.session")
    assert {span.trace_id for span, _ in spans} == {root.trace_id}
    turn = next(span for span, _ in spans if span.name == "agentsession.turn")
    attrs = {a.key: a.value for a in turn.attributes}
    assert attrs["gen_ai.usage.input_tokens"].int_value == 50 and attrs["gen_ai.system"].string_value == "fake"
    chat = next(span for span, _ in spans if span.name == "chat")
    assert chat.parent_span_id == turn.span_id and chat.status.code != StatusCode.ERROR.value
    metric_names = {m.name for request in collector.metrics() for rm in request.resource_metrics
                    for sm in rm.scope_metrics for m in sm.metrics}
    assert {"agentsession.turn.stage.duration", "gen_ai.client.token.usage", "agentsession.turns"} <= metric_names
    stage = next(m for request in collector.metrics() for rm in request.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics if m.name == "agentsession.turn.stage.duration")
    assert list(stage.histogram.data_points[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    entry_point.reset()  # shuts the plugin's providers down while the collector still listens
