"""Anthropic for agentsession: ``AnthropicLLM`` (Claude, streamed over the Messages API) for cascades.

Names load on first use, so discovering the plugin does not import the Anthropic SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._llm import API_KEY_ENV, BASE_URL_ENV, AnthropicLLM, anthropic_messages

_LAZY = {
    "API_KEY_ENV": "._llm",
    "BASE_URL_ENV": "._llm",
    "AnthropicLLM": "._llm",
    "anthropic_messages": "._llm",
}

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "AnthropicLLM", "anthropic_messages"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
