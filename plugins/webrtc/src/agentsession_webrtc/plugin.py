"""Entry point: the ``playground`` transport mode."""

from __future__ import annotations

from agentsession import TransportMode, hookimpl

from ._mode import PlaygroundMode


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"playground": PlaygroundMode()}
