"""Core's own plugin: the ``file`` transport mode."""

from __future__ import annotations

from ._file_transport import FileMode
from ._transport import TransportMode
from .hookspecs import hookimpl


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"file": FileMode()}
