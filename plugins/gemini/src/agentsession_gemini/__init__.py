"""Gemini Live for agentsession: ``GeminiRealtime``, a speech-to-speech ``RealtimeModel``."""

from __future__ import annotations

from ._realtime import API_KEY_VARS, DEFAULT_MODEL, GeminiRealtime
from ._schema import convert_schema, function_declaration, function_declarations

__all__ = [
    "API_KEY_VARS",
    "DEFAULT_MODEL",
    "GeminiRealtime",
    "convert_schema",
    "function_declaration",
    "function_declarations",
]
