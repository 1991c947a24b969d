"""The entry point (``otel`` in group ``agentsession``): an ``OtelObserver`` on the providers the ``OTEL_*``
environment configures, made at the first session's start; idle (every hook returns at once) when
OpenTelemetry is not configured. See ``_config`` for what turns it on."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from agentsession import hookimpl

from ._config import providers_from_env
from ._observer import OtelObserver

if TYPE_CHECKING:
    from agentsession import AgentSession, TurnMetrics

_lock = threading.Lock()
_observer: OtelObserver | None = None
_decided = False


def observer() -> OtelObserver | None:
    """The process's observer (made once, from the environment), or ``None`` when OpenTelemetry is off."""
    global _observer, _decided
    with _lock:
        if not _decided:
            providers = providers_from_env()
            _observer = OtelObserver(providers=providers) if providers is not None else None
            _decided = True
        return _observer


def reset() -> None:
    """Forget the observer (its own providers are shut down); the next session reads the environment again."""
    global _observer, _decided
    with _lock:
        previous, _observer, _decided = _observer, None, False
    if previous is not None:
        previous.providers.shutdown()


@hookimpl
def agentsession_session_started(session: AgentSession) -> None:
    found = observer()
    if found is not None:
        found.agentsession_session_started(session)


@hookimpl
def agentsession_metrics_collected(session: AgentSession, metrics: TurnMetrics) -> None:
    found = _observer
    if found is not None:
        found.agentsession_metrics_collected(session, metrics)


@hookimpl
def agentsession_session_closed(session: AgentSession, reason: str) -> None:
    found = _observer
    if found is not None:
        found.agentsession_session_closed(session, reason)
