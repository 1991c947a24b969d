"""The ``agentsession`` entry point: ``AnthropicLLM`` by name, for pipelines built from configuration.

The factory imports the Anthropic SDK when a model is built, so discovering the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl


def _anthropic_llm(**options: Any) -> Any:
    """Build an ``AnthropicLLM`` (see its arguments)."""
    from agentsession_anthropic import AnthropicLLM

    return AnthropicLLM(**options)


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"anthropic-llm": _anthropic_llm}
