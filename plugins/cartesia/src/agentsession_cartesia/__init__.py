"""Cartesia for agentsession: ``CartesiaTTS``, streaming text to speech over Cartesia's websocket API.

Names load on first use, so discovering the plugin does not import the Cartesia SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tts import API_KEY_ENV, BASE_URL_ENV, CartesiaTTS, GenerationConfig, WordTimestamp

_LAZY = {name: "._tts" for name in ("API_KEY_ENV", "BASE_URL_ENV", "CartesiaTTS", "GenerationConfig", "WordTimestamp")}

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "CartesiaTTS", "GenerationConfig", "WordTimestamp"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
