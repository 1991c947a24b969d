"""OpenAI for agentsession: ``OpenAIRealtime`` (speech to speech) and ``OpenAILLM``/``OpenAISTT``/``OpenAITTS`` for cascades."""

from __future__ import annotations

from ._realtime import DEFAULT_TRANSCRIPTION, DEFAULT_TURN_DETECTION, OpenAIRealtime

__all__ = ["DEFAULT_TRANSCRIPTION", "DEFAULT_TURN_DETECTION", "OpenAIRealtime"]
