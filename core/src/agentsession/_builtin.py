"""Core's own plugin: the ``file`` and ``replay`` transport modes, the offline ``parrot`` model and ``EnergyVAD``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ._file_transport import FileMode
from ._manager import register_builtin
from ._parrot import ParrotModel
from ._replay import ReplayMode
from ._transport import TransportMode
from ._vad import EnergyVAD
from .hookspecs import hookimpl


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"file": FileMode(), "replay": ReplayMode()}


@hookimpl
def agentsession_models() -> dict[str, Callable[..., Any]]:
    return {"parrot": ParrotModel}


@hookimpl
def agentsession_vads() -> dict[str, tuple[int, Callable[..., Any]]]:
    return {"energy": (0, EnergyVAD)}


register_builtin(sys.modules[__name__])
