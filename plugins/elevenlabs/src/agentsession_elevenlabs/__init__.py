"""ElevenLabs for agentsession: ``ElevenLabsTTS``, streaming speech over ElevenLabs' multi-context websocket.

Names load on first use, so discovering the plugin does not import the ElevenLabs SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tts import API_KEY_ENV, BASE_URL_ENV, ElevenLabsStream, ElevenLabsTTS, TimedWord, VoiceSettings

_LAZY = {name: "._tts" for name in
         ("API_KEY_ENV", "BASE_URL_ENV", "ElevenLabsStream", "ElevenLabsTTS", "TimedWord", "VoiceSettings")}

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "ElevenLabsStream", "ElevenLabsTTS", "TimedWord", "VoiceSettings"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
