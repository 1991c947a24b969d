"""agentsession entry point: provides the ``gemini-live`` model (the SDK is imported when one is built)."""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl


def gemini_live(**options: Any) -> Any:
    """Build a ``GeminiRealtime`` (see its arguments)."""
    from ._realtime import GeminiRealtime

    return GeminiRealtime(**options)


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"gemini-live": gemini_live}
