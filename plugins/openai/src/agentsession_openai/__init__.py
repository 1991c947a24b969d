"""OpenAI for agentsession: ``OpenAIRealtime`` (speech to speech) and ``OpenAILLM``/``OpenAISTT``/``OpenAITTS`` for cascades."""

from __future__ import annotations

from ._cascade import OpenAILLM, OpenAISTT, OpenAITTS
from ._client import API_KEY_ENV
from ._realtime import DEFAULT_TRANSCRIPTION, DEFAULT_TURN_DETECTION, OpenAIRealtime

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_TRANSCRIPTION",
    "DEFAULT_TURN_DETECTION",
    "OpenAILLM",
    "OpenAIRealtime",
    "OpenAISTT",
    "OpenAITTS",
]
