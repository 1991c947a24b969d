"""agentsession entry point: the ``gemini-live``, ``gemini-llm``, ``google-llm``, ``google-stt`` and ``google-tts``
models (the SDK loads when one is built)."""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl


def gemini_live(**options: Any) -> Any:
    """Build a ``GeminiRealtime`` (see its arguments)."""
    from ._realtime import GeminiRealtime

    return GeminiRealtime(**options)


def gemini_llm(**options: Any) -> Any:
    """Build a ``GeminiLLM`` (see its arguments)."""
    from ._llm import GeminiLLM

    return GeminiLLM(**options)


def _cascade(name: str) -> Any:
    def build(**options: Any) -> Any:
        from . import _cascade

        return getattr(_cascade, name)(**options)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build a ``{name}`` (see its arguments)."
    return build


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {
        "gemini-live": gemini_live,
        "gemini-llm": gemini_llm,
        "google-llm": _cascade("GoogleLLM"),
        "google-stt": _cascade("GoogleSTT"),
        "google-tts": _cascade("GoogleTTS"),
    }


def gemini_fakes() -> Any:
    """The scripted Gemini Live server ``agentsession fakes`` serves (see ``agentsession_gemini.fake``)."""
    from .fake import GeminiFakes

    return GeminiFakes()


@hookimpl
def agentsession_fakes() -> dict[str, Any]:
    return {"gemini": gemini_fakes}


def gemini_live_replayer() -> Any:
    """Plays a cassette's Gemini Live traffic back (see ``agentsession_gemini.replay``)."""
    from .replay import GeminiLiveReplayer

    return GeminiLiveReplayer()


@hookimpl
def agentsession_replayers() -> dict[str, Any]:
    return {"Gemini Live": gemini_live_replayer}
