"""Entry point ``console_io``: provides the ``console`` transport mode."""

from __future__ import annotations

from agentsession import TransportMode, hookimpl

from ._mode import ConsoleMode


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"console": ConsoleMode()}
