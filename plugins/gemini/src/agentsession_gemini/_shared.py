"""What ``GeminiRealtime`` and ``GeminiLLM`` share: the API key, secret-free errors, tool result payloads."""

from __future__ import annotations

import json
from typing import Any

from agentsession import ModelError, env_secret, mask

API_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


def resolve_api_key(api_key: str | None, vertexai: bool, owner: str) -> str | None:
    """``api_key``, else the first of ``API_KEY_VARS`` set; a ``ModelError`` naming them if none (and not Vertex)."""
    key = api_key or env_secret(*API_KEY_VARS)
    if not key and not vertexai:
        raise ModelError(
            f"{owner} needs an API key: pass api_key=... or set {' or '.join(API_KEY_VARS)} "
            "(or use vertexai=True with project and location)",
            code="missing_api_key",
        )
    return key


def key_repr(key: str | None) -> str:
    """The key as reprs show it."""
    return mask(key) if key else "<vertex credentials>"


def describe(exc: BaseException, key: str | None) -> str:
    """``Type: message`` with the key masked."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(key, mask(key)) if key else text


def response_payload(output: str, is_error: bool) -> dict[str, Any]:
    """A tool's output (JSON text or plain text) as a ``FunctionResponse.response`` object."""
    try:
        value = json.loads(output)
    except ValueError:
        value = output
    if is_error:
        return value if isinstance(value, dict) and "error" in value else {"error": value}
    return value if isinstance(value, dict) else {"output": value}
