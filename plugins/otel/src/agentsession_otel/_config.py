"""Which OpenTelemetry providers the plugin uses, decided once per process from the standard ``OTEL_*``
environment variables (or from providers the application installed itself).

- ``OTEL_SDK_DISABLED=true``: off.
- The application set global SDK providers (``trace.set_tracer_provider(...)``): those are used, as they are
  (the application chose exporters, sampling and resource); the environment is not read again.
- Otherwise traces are exported when ``OTEL_TRACES_EXPORTER`` names an exporter, or when it is unset and an
  OTLP endpoint is (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); likewise
  metrics with ``OTEL_METRICS_EXPORTER`` / ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``. Exporters: ``otlp``
  (OTLP over HTTP/protobuf; ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` needs
  ``opentelemetry-exporter-otlp-proto-grpc``), ``console``, ``none``. The exporters read the rest
  themselves (endpoint, headers, timeout, compression), and so do the batch span processor
  (``OTEL_BSP_*``) and the periodic metric reader (``OTEL_METRIC_EXPORT_INTERVAL``). The resource comes
  from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``; the service is called ``agentsession`` when
  neither names it.

Providers the plugin made are its own (never installed as the global ones, so the application's
instrumentation is not redirected); they are flushed when a session closes and shut down at exit.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

logger = logging.getLogger("agentsession.otel")

DEFAULT_SERVICE_NAME = "agentsession"


@dataclass
class Providers:
    """The tracer and meter providers the plugin reports to; ``owned`` when the plugin made them."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    owned: bool = False
    _shut: bool = False

    def flush(self, timeout_s: float = 5.0) -> None:
        """Export what is buffered now (the plugin's own providers only)."""
        if not self.owned:
            return
        millis = int(timeout_s * 1000)
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                try:
                    flush(millis)
                except Exception:
                    logger.exception("flushing OpenTelemetry data failed")

    def shutdown(self) -> None:
        """Flush and stop the plugin's own providers (once; at exit too)."""
        if not self.owned or self._shut:
            return
        self._shut = True
        for provider in (self.tracer_provider, self.meter_provider):
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception:
                    logger.exception("shutting OpenTelemetry down failed")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporter names for ``signal`` ("traces" or "metrics"); [] when the signal is off."""
    named = env.get(f"OTEL_{signal.upper()}_EXPORTER")
    if named is not None:
        names = [n.strip().lower() for n in named.split(",") if n.strip()]
        return [n for n in names if n != "none"]
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    return ["otlp"] if endpoint else []


def enabled_by(env: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """``{"traces": [...], "metrics": [...]}``: the exporters the environment asks for (empty when off)."""
    env = os.environ if env is None else env
    if _truthy(env.get("OTEL_SDK_DISABLED")):
        return {"traces": [], "metrics": []}
    return {"traces": _exporters(env, "traces"), "metrics": _exporters(env, "metrics")}


def _protocol(env: Mapping[str, str], signal: str) -> str:
    return (env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf").strip().lower()


def _otlp(env: Mapping[str, str], signal: str) -> Any:
    protocol = _protocol(env, signal)
    kind = {"traces": "trace_exporter", "metrics": "metric_exporter"}[signal]
    cls = {"traces": "OTLPSpanExporter", "metrics": "OTLPMetricExporter"}[signal]
    if protocol == "grpc":
        module = f"opentelemetry.exporter.otlp.proto.grpc.{kind}"
    elif protocol in ("http/protobuf", "http"):
        module = f"opentelemetry.exporter.otlp.proto.http.{kind}"
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (http/protobuf or grpc)")
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError:
        raise ValueError(f"OTLP over {protocol} needs opentelemetry-exporter-otlp-proto-grpc installed") from None


def _span_exporter(env: Mapping[str, str], name: str) -> SpanExporter:
    if name == "otlp":
        exporter: SpanExporter = _otlp(env, "traces")
        return exporter
    if name == "console":
        return ConsoleSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported here (otlp, console or none)")


def _metric_exporter(env: Mapping[str, str], name: str) -> MetricExporter:
    if name == "otlp":
        exporter: MetricExporter = _otlp(env, "metrics")
        return exporter
    if name == "console":
        return ConsoleMetricExporter()
    raise ValueError(f"OTEL_METRICS_EXPORTER={name!r} is not supported here (otlp, console or none)")


def resource() -> Resource:
    """The SDK's resource from the environment, named ``agentsession`` when nothing names the service."""
    found = Resource.create()
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return found


def _global_sdk_providers() -> Providers | None:
    """The application's own SDK providers, if it installed any (the API's defaults are proxies/no-ops)."""
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    if isinstance(tracer_provider, TracerProvider) or isinstance(meter_provider, MeterProvider):
        return Providers(tracer_provider, meter_provider, owned=False)
    return None


def providers_from_env(env: Mapping[str, str] | None = None) -> Providers | None:
    """The providers to report to, or ``None`` when OpenTelemetry is not configured (the plugin stays idle).

    A misconfiguration (an unknown exporter, gRPC without its package) is logged once and turns that signal
    off; it never stops a session.
    """
    env = os.environ if env is None else env
    if _truthy(env.get("OTEL_SDK_DISABLED")):
        return None
    installed = _global_sdk_providers()
    if installed is not None:
        return installed
    wanted = enabled_by(env)
    if not wanted["traces"] and not wanted["metrics"]:
        return None
    res = resource()
    processors = []
    for name in wanted["traces"]:
        try:
            processors.append(BatchSpanProcessor(_span_exporter(env, name)))
        except ValueError as exc:
            logger.error("OpenTelemetry traces: %s", exc)
    readers = []
    for name in wanted["metrics"]:
        try:
            readers.append(PeriodicExportingMetricReader(_metric_exporter(env, name)))
        except ValueError as exc:
            logger.error("OpenTelemetry metrics: %s", exc)
    tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
    if processors:
        tracer_provider = sdk_tracer_provider = TracerProvider(resource=res)
        for processor in processors:
            sdk_tracer_provider.add_span_processor(processor)
    meter_provider: metrics.MeterProvider = MeterProvider(resource=res, metric_readers=readers) if readers \
        else metrics.NoOpMeterProvider()
    providers = Providers(tracer_provider, meter_provider, owned=True)
    atexit.register(providers.shutdown)
    logger.info("OpenTelemetry export: traces %s, metrics %s", ",".join(wanted["traces"]) or "off",
                ",".join(wanted["metrics"]) or "off")
    return providers
