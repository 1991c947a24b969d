"""The ``agentsession`` entry point: OpenAI's models, by name, for pipelines built from configuration.

The factories import the OpenAI SDK when a model is built, so discovering the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl


def _factory(name: str) -> Any:
    def build(**options: Any) -> Any:
        import agentsession_openai

        return getattr(agentsession_openai, name)(**options)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build an ``{name}`` (see its arguments)."
    return build


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {
        "openai-realtime": _factory("OpenAIRealtime"),
        "openai-llm": _factory("OpenAILLM"),
        "openai-stt": _factory("OpenAISTT"),
        "openai-tts": _factory("OpenAITTS"),
    }


def openai_fakes() -> Any:
    """The scripted OpenAI servers ``agentsession fakes`` serves (see ``agentsession_openai.fake.service``)."""
    from .fake.service import OpenAIFakes

    return OpenAIFakes()


@hookimpl
def agentsession_fakes() -> dict[str, Any]:
    return {"openai": openai_fakes}


def openai_replayer() -> Any:
    """Plays a cassette's OpenAI traffic back, every link on one port (see ``agentsession_openai.replay``)."""
    from .replay import OpenAIReplayer

    return OpenAIReplayer()


@hookimpl
def agentsession_replayers() -> dict[str, Any]:
    return {"OpenAI Realtime": openai_replayer, "OpenAI transcription": openai_replayer, "OpenAI HTTP": openai_replayer}
