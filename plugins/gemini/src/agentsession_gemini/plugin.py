"""agentsession entry point: provides the ``gemini-live`` model."""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl

from ._realtime import GeminiRealtime


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"gemini-live": GeminiRealtime}
