"""agentsession-otel: OpenTelemetry traces and metrics for agentsession sessions.

Installed, it is found through its entry point; it exports when the standard ``OTEL_*`` environment
variables configure an exporter (or the application installed SDK providers). ``OtelObserver`` can also be
passed to a session directly: ``AgentSession(..., plugins=[OtelObserver(tracer_provider, meter_provider)])``.
"""

from __future__ import annotations

from ._config import Providers, enabled_by, providers_from_env
from ._observer import BUCKETS, OtelObserver, StageSpan, stage_spans

__all__ = ["BUCKETS", "OtelObserver", "Providers", "StageSpan", "enabled_by", "providers_from_env", "stage_spans"]
