"""Gemini for agentsession: ``GeminiRealtime`` (Live, speech to speech), ``GeminiLLM`` (text chat), and a
cascade's providers under VideoSDK's names: ``GoogleLLM``, ``GoogleSTT``, ``GoogleTTS``.

Names load on first use, so discovering the plugin does not import the Google SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cascade import (
        DEFAULT_GOOGLE_LLM_MODEL,
        DEFAULT_STT_MODEL,
        DEFAULT_TTS_MODEL,
        GoogleLLM,
        GoogleSTT,
        GoogleTTS,
        GoogleVoiceConfig,
        VertexAIConfig,
    )
    from ._llm import DEFAULT_LLM_MODEL, GeminiLLM
    from ._realtime import DEFAULT_MODEL, GeminiLiveConfig, GeminiRealtime
    from ._schema import convert_schema, function_declaration, function_declarations
    from ._shared import API_KEY_VARS

_LAZY = {
    "API_KEY_VARS": "._shared",
    "DEFAULT_GOOGLE_LLM_MODEL": "._cascade",
    "DEFAULT_STT_MODEL": "._cascade",
    "DEFAULT_TTS_MODEL": "._cascade",
    "GoogleLLM": "._cascade",
    "GoogleSTT": "._cascade",
    "GoogleTTS": "._cascade",
    "GoogleVoiceConfig": "._cascade",
    "VertexAIConfig": "._cascade",
    "DEFAULT_LLM_MODEL": "._llm",
    "DEFAULT_MODEL": "._realtime",
    "GeminiLLM": "._llm",
    "GeminiLiveConfig": "._realtime",
    "GeminiRealtime": "._realtime",
    "convert_schema": "._schema",
    "function_declaration": "._schema",
    "function_declarations": "._schema",
}

__all__ = [
    "API_KEY_VARS",
    "DEFAULT_GOOGLE_LLM_MODEL",
    "DEFAULT_LLM_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_STT_MODEL",
    "DEFAULT_TTS_MODEL",
    "GeminiLLM",
    "GeminiLiveConfig",
    "GeminiRealtime",
    "GoogleLLM",
    "GoogleSTT",
    "GoogleTTS",
    "GoogleVoiceConfig",
    "VertexAIConfig",
    "convert_schema",
    "function_declaration",
    "function_declarations",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
