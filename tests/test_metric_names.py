"""One name per number: each latency of ``TurnMetrics`` is called the same in the console view, the playground page,
``agentsession report`` (core's short name, ``STAGE_LABELS``), and in recordings, OpenTelemetry and Prometheus
(the field's name); the top-level README's "Metrics" table documents every one of them."""

from __future__ import annotations

import re
from dataclasses import fields
from html.parser import HTMLParser
from pathlib import Path

from agentsession.plugin import EOU_PARTS, STAGE_LABELS, STAGE_MEANINGS, STAGES, TurnMetrics

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "plugins" / "webrtc" / "src" / "agentsession_webrtc" / "static"
LATENCIES = (*STAGES, *EOU_PARTS)


def measured_everything() -> TurnMetrics:
    return TurnMetrics(turn=1, trigger="user", eou_delay=0.9, vad_silence=0.5, endpointing_delay=0.4,
                       stt_latency=0.1, llm_ttft=0.3, llm_duration=0.8, tts_ttfb=0.1, realtime_ttfa=0.5, ttfa=0.6,
                       e2e=1.6, started_at=100.0, timestamp=103.0)


def test_every_latency_has_one_short_name_and_a_meaning() -> None:
    assert set(STAGE_LABELS) == set(STAGE_MEANINGS) == set(LATENCIES)
    assert len(set(STAGE_LABELS.values())) == len(STAGE_LABELS)  # no two numbers share a name
    assert measured_everything().latencies() == {k: getattr(measured_everything(), k) for k in LATENCIES}


def test_the_console_and_the_report_show_cores_names() -> None:
    from agentsession._report import STAGE_COLUMNS, STAGE_HELP
    from agentsession_console_io._view import LEGEND
    from agentsession_console_io._view import STAGE_COLUMNS as CONSOLE

    assert dict(CONSOLE) == {k: STAGE_LABELS[k] for k in STAGES}
    assert all(LEGEND[STAGE_LABELS[k]] == STAGE_MEANINGS[k] for k in STAGES)
    assert all(STAGE_COLUMNS[k] == STAGE_LABELS[k] and STAGE_HELP[k] == STAGE_MEANINGS[k] for k in STAGES)


class _Headers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.columns: dict[str, tuple[str, str]] = {}
        self._key: str | None = None
        self._title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "th" and found.get("data-key"):
            self._key, self._title = found["data-key"], found.get("title") or ""

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.columns[self._key] = (data.strip(), self._title)
            self._key = None


def test_the_playground_page_names_its_columns_as_core_does() -> None:
    headers = _Headers()
    headers.feed((STATIC / "index.html").read_text())
    shown = {k: v for k, v in headers.columns.items() if k in STAGE_LABELS}
    assert shown == {k: (STAGE_LABELS[k], STAGE_MEANINGS[k]) for k in STAGES}
    found = re.search(r"const LATENCY_COLUMNS = \[([^\]]*)\]", (STATIC / "app.js").read_text())
    assert found is not None
    assert re.findall(r'"(\w+)"', found.group(1)) == list(STAGES)


def test_recordings_and_exporters_use_the_field_names() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    from agentsession_otel import OtelObserver
    from agentsession_prometheus import PrometheusMetrics

    m = measured_everything()
    assert set(LATENCIES) <= set(m.as_dict())  # the recorder writes as_dict()

    registry = CollectorRegistry()
    PrometheusMetrics(registry=registry).record_turn(m, "fake")
    stages = {s.labels["stage"] for family in registry.collect() if family.name == "agentsession_turn_stage_seconds"
              for s in family.samples if s.name.endswith("_count")}
    assert stages == set(LATENCIES)

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    OtelObserver(tracer, MeterProvider(metric_readers=[reader])).record_turn(m)
    data = reader.get_metrics_data()
    assert data is not None
    points = [p for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
              if metric.name == "agentsession.turn.stage.duration" for p in metric.data.data_points]
    assert {p.attributes["agentsession.stage"] for p in points} == set(LATENCIES)
    latency_attrs = {name for span in spans.get_finished_spans() for name in (span.attributes or {})
                     if name.startswith("agentsession.latency.")}
    assert latency_attrs == {f"agentsession.latency.{k}_s" for k in LATENCIES}
    assert not [name for span in spans.get_finished_spans() for name in (span.attributes or {})
                if re.search(r"ttf[ab]|_s$", name) and name.split(".")[1] in ("llm", "realtime")]


def test_the_readme_documents_every_metric() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Metrics"):]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = {m.group(1) for m in re.finditer(r"^\| `(\w+)` \|", section, re.M)}
    assert {f.name for f in fields(TurnMetrics)} == rows, sorted({f.name for f in fields(TurnMetrics)} ^ rows)
