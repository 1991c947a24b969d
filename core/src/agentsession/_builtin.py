"""Core's own plugin: the ``file`` transport mode and the offline ``parrot`` model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._file_transport import FileMode
from ._parrot import ParrotModel
from ._transport import TransportMode
from .hookspecs import hookimpl


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"file": FileMode()}


@hookimpl
def agentsession_models() -> dict[str, Callable[..., Any]]:
    return {"parrot": ParrotModel}
