"""agentsession-prometheus: what sessions put in the metrics, and ``/metrics`` as Prometheus scrapes it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import agentsession_prometheus.plugin as entry_point
from agentsession import Agent, AgentSession, RealTimePipeline, hookimpl
from agentsession.plugin import Error, TurnMetrics
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport
from agentsession_prometheus import PrometheusMetrics, metrics_response, metrics_text, start_http_server


class Quiet(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Be brief.")


class Cascade:
    """Stands in for the session's filling of the stage fields (what the lead wires): before the exporter."""

    name = "cascade-filler"

    @hookimpl(tryfirst=True)
    def agentsession_metrics_collected(self, session: AgentSession, metrics: TurnMetrics) -> None:
        metrics.stt_latency, metrics.llm_ttft = 0.25, 0.4
        metrics.add_tool("get_weather", 0.3)
        metrics.add_usage({"prompt_tokens": 40, "completion_tokens": 8})


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[CollectorRegistry]:
    monkeypatch.setenv("AGENTSESSION_DISABLE_PLUGINS", "prometheus,recorder,otel")
    yield CollectorRegistry()


async def _sessions(metrics: PrometheusMetrics, n: int) -> None:
    async def one() -> None:
        model = FakeRealtimeModel([FakeResponse(text="Hi.", audio=0.2), FakeResponse(text="Bye.", audio=0.2)])
        session = AgentSession(Quiet(), RealTimePipeline(model), plugins=[metrics, Cascade()])
        transport = FakeTransport()
        await transport.start()
        await session.start(transport=transport)
        await session.run(user_input="Hello?", timeout=10)
        await session.run(user_input="Bye?", timeout=10)
        model.fail("the socket dropped", recoverable=True)
        model.channel.emit(Error("connection lost; reconnecting", code="reconnecting"))  # as Gemini Live says it
        await asyncio.sleep(0)
        assert metrics.sessions_running.labels("RealTimePipeline")._value.get() >= 1
        await session.close("done")
        await transport.close()

    await asyncio.gather(*(one() for _ in range(n)))


async def test_sessions_turns_stages_errors_and_tokens_are_counted(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry)
    await _sessions(metrics, 3)
    value = registry.get_sample_value
    assert value("agentsession_sessions_running", {"pipeline": "RealTimePipeline"}) == 0
    assert value("agentsession_sessions_started_total", {"pipeline": "RealTimePipeline", "provider": "fake"}) == 3
    assert value("agentsession_sessions_closed_total", {"reason": "done"}) == 3
    assert value("agentsession_turns_total", {"trigger": "text", "interrupted": "false", "provider": "fake"}) == 6
    stt = {"stage": "stt_latency", "provider": "fake"}
    assert value("agentsession_turn_stage_seconds_count", stt) == 6
    assert value("agentsession_turn_stage_seconds_sum", stt) == pytest.approx(1.5)
    assert value("agentsession_turn_stage_seconds_bucket", {**stt, "le": "0.2"}) == 0
    assert value("agentsession_turn_stage_seconds_bucket", {**stt, "le": "0.3"}) == 6
    assert value("agentsession_turn_stage_seconds_count", {"stage": "e2e", "provider": "fake"}) == 6
    assert value("agentsession_turn_stage_seconds_count", {"stage": "eou_delay", "provider": "fake"}) is None
    assert value("agentsession_tool_seconds_count", {"tool": "get_weather", "error": "false"}) == 6
    assert value("agentsession_tokens_total", {"provider": "fake", "type": "input"}) == 6 * 40
    assert value("agentsession_errors_total", {"provider": "fake", "code": "fake_error", "recoverable": "true"}) == 3
    assert value("agentsession_reconnects_total", {"provider": "fake"}) == 3
    assert (value("agentsession_load_average", {"period": "1m"}) or 0) >= 0
    assert (value("agentsession_cpu_count") or 0) >= 1


async def test_metrics_text_is_what_prometheus_parses(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry)
    await _sessions(metrics, 1)
    families = {f.name: f for f in text_string_to_metric_families(metrics_text(registry).decode())}
    assert families["agentsession_turn_stage_seconds"].type == "histogram"
    assert families["agentsession_turns"].type == "counter"
    assert families["agentsession_sessions_running"].type == "gauge"
    status, headers, body = metrics_response({"Accept": "application/openmetrics-text; version=1.0.0"}, registry)
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert "agentsession_reconnects" in {f.name for f in parse_openmetrics(body.decode())}
    status, headers, body = metrics_response({}, registry)
    assert headers["Content-Type"].startswith("text/plain") and b"agentsession_turns_total" in body


def test_the_standalone_server_serves_metrics(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry)
    metrics.record_turn(TurnMetrics(turn=1, trigger="user", e2e=0.8), "openai")
    server, thread = start_http_server(0, "127.0.0.1", registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert 'agentsession_turn_stage_seconds_count{provider="openai",stage="e2e"} 1.0' in text


def test_the_entry_point_offers_metrics_to_the_worker() -> None:
    routes = entry_point.agentsession_http_endpoints()
    status, headers, body = routes["/metrics"]({"accept": "text/plain"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"agentsession_sessions_running" in body and b"process_cpu_seconds_total" in body


def test_several_processes_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    child = ("from agentsession.plugin import TurnMetrics\n"
             "from agentsession_prometheus import PrometheusMetrics\n"
             "PrometheusMetrics().record_turn(TurnMetrics(turn=1, trigger='user', e2e=0.5), 'openai')\n")
    reader = ("import sys\nfrom agentsession_prometheus import metrics_text\n"
              "sys.stdout.write(metrics_text().decode())\n")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two worker processes
        subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=60)
    text = subprocess.run([sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True,
                          text=True).stdout
    assert 'agentsession_turns_total{interrupted="false",provider="openai",trigger="user"} 2.0' in text
    assert 'agentsession_turn_stage_seconds_count{provider="openai",stage="e2e"} 2.0' in text
