"""The entry point (``prometheus`` in group ``agentsession``): every session of the process counted in
prometheus-client's global registry, and ``/metrics`` for the worker.

The worker's HTTP endpoint serves what ``agentsession_http_endpoints`` returns (``{"/metrics": handler}``,
a handler being ``handler(request_headers) -> (status, headers, body)``); without one, set
``AGENTSESSION_PROMETHEUS_PORT`` and the first session starts a standalone ``/metrics`` server.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from agentsession import hookimpl

from ._metrics import PrometheusMetrics, metrics_response, start_http_server

if TYPE_CHECKING:
    from agentsession import AgentSession, TurnMetrics

logger = logging.getLogger("agentsession.prometheus")

#: serve /metrics on this port from the first session on (when the worker has no endpoint of its own)
PORT_ENV = "AGENTSESSION_PROMETHEUS_PORT"
ADDR_ENV = "AGENTSESSION_PROMETHEUS_ADDR"

_lock = threading.Lock()
_metrics: PrometheusMetrics | None = None
_server_port: int | None = None


def default_metrics() -> PrometheusMetrics:
    """The process's metrics on prometheus-client's global registry (made once)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = PrometheusMetrics()
        return _metrics


def _serve_from_env() -> None:
    global _server_port
    port = os.environ.get(PORT_ENV, "").strip()
    if not port or _server_port is not None:
        return
    with _lock:
        if _server_port is not None:
            return
        try:
            _server_port = int(port)
            start_http_server(_server_port, os.environ.get(ADDR_ENV) or "0.0.0.0")
        except (ValueError, OSError) as exc:
            logger.error("cannot serve Prometheus metrics on %s=%r: %s", PORT_ENV, port, exc)
            return
    logger.info("Prometheus metrics on :%s/metrics", port)


def metrics_endpoint(headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """``GET /metrics`` for the worker's HTTP endpoint."""
    default_metrics()
    return metrics_response(headers)


@hookimpl
def agentsession_session_started(session: AgentSession) -> None:
    _serve_from_env()
    default_metrics().agentsession_session_started(session)


@hookimpl
def agentsession_metrics_collected(session: AgentSession, metrics: TurnMetrics) -> None:
    default_metrics().agentsession_metrics_collected(session, metrics)


@hookimpl
def agentsession_session_closed(session: AgentSession, reason: str) -> None:
    default_metrics().agentsession_session_closed(session, reason)


@hookimpl
def agentsession_http_endpoints() -> dict[str, Callable[[Mapping[str, str]], tuple[int, dict[str, str], bytes]]]:
    """Routes for the worker's HTTP endpoint (a proposed collecting hook; see the README)."""
    return {"/metrics": metrics_endpoint}
