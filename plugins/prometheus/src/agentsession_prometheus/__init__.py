"""agentsession-prometheus: Prometheus metrics for agentsession workers.

``metrics_text()`` / ``metrics_response(headers)`` give ``/metrics`` to any HTTP server; ``start_http_server``
serves it alone. Installed, the plugin counts every session of the process (entry point ``prometheus``).
"""

from __future__ import annotations

from ._metrics import (
    BUCKETS,
    CONTENT_TYPE,
    LoadCollector,
    PrometheusMetrics,
    metrics_response,
    metrics_text,
    start_http_server,
)
from .plugin import default_metrics, metrics_endpoint

__all__ = ["BUCKETS", "CONTENT_TYPE", "LoadCollector", "PrometheusMetrics", "default_metrics", "metrics_endpoint",
           "metrics_response", "metrics_text", "start_http_server"]
