"""Deepgram for agentsession: ``DeepgramSTT``, streaming speech to text over Deepgram's live API (``/v1/listen``).

Names load on first use, so discovering the plugin does not import the Deepgram SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import API_KEY_ENV, BASE_URL_ENV
    from ._stt import DeepgramSpeechStream, DeepgramSTT

_LAZY = {
    "API_KEY_ENV": "._client",
    "BASE_URL_ENV": "._client",
    "DeepgramSTT": "._stt",
    "DeepgramSpeechStream": "._stt",
}

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DeepgramSTT", "DeepgramSpeechStream"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
