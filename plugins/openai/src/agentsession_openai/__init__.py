"""OpenAI for agentsession: ``OpenAIRealtime`` (speech to speech) and ``OpenAILLM``/``OpenAISTT``/``OpenAITTS`` for cascades.

Names load on first use, so discovering the plugin does not import the OpenAI SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cascade import OpenAILLM, OpenAISTT, OpenAITTS
    from ._client import API_KEY_ENV
    from ._realtime import DEFAULT_TRANSCRIPTION, DEFAULT_TURN_DETECTION, OpenAIRealtime, OpenAIRealtimeConfig
    from ._stt_stream import DEFAULT_STT_TURN_DETECTION, OpenAISpeechStream

_LAZY = {
    "API_KEY_ENV": "._client",
    "DEFAULT_STT_TURN_DETECTION": "._stt_stream",
    "DEFAULT_TRANSCRIPTION": "._realtime",
    "DEFAULT_TURN_DETECTION": "._realtime",
    "OpenAILLM": "._cascade",
    "OpenAIRealtime": "._realtime",
    "OpenAIRealtimeConfig": "._realtime",
    "OpenAISTT": "._cascade",
    "OpenAISpeechStream": "._stt_stream",
    "OpenAITTS": "._cascade",
}

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_STT_TURN_DETECTION",
    "DEFAULT_TRANSCRIPTION",
    "DEFAULT_TURN_DETECTION",
    "OpenAILLM",
    "OpenAIRealtime",
    "OpenAIRealtimeConfig",
    "OpenAISTT",
    "OpenAISpeechStream",
    "OpenAITTS",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
