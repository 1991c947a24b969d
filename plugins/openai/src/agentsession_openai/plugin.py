"""The ``agentsession`` entry point: OpenAI's models, by name, for pipelines built from configuration."""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl

from ._cascade import OpenAILLM, OpenAISTT, OpenAITTS
from ._realtime import OpenAIRealtime


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {
        "openai-realtime": OpenAIRealtime,
        "openai-llm": OpenAILLM,
        "openai-stt": OpenAISTT,
        "openai-tts": OpenAITTS,
    }
