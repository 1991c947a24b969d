"""The API key and the SDK client, shared by every OpenAI model class."""

from __future__ import annotations

from openai import AsyncOpenAI

from agentsession import ModelError, env_secret, protect_secret

API_KEY_ENV = "OPENAI_API_KEY"


def resolve_api_key(api_key: str | None, what: str) -> str:
    """``api_key`` or ``$OPENAI_API_KEY``; a ``ModelError`` naming the variable when neither is set."""
    key = api_key or env_secret(API_KEY_ENV)
    if not key:
        raise ModelError(
            f"{what} needs an OpenAI API key: set the {API_KEY_ENV} environment variable "
            f"or pass api_key=... to {what}()",
            recoverable=False,
            code="missing_api_key",
        )
    return key


def make_client(api_key: str | None, what: str, base_url: str | None, websocket_base_url: str | None = None,
                max_retries: int = 2) -> AsyncOpenAI:
    """An ``AsyncOpenAI`` for ``base_url`` (``None``: the SDK's default, ``$OPENAI_BASE_URL`` or OpenAI). The key
    is masked in every log line from then on (the websocket client logs its ``Authorization`` header at DEBUG)."""
    key = resolve_api_key(api_key, what)
    protect_secret(key)
    return AsyncOpenAI(
        api_key=key,
        base_url=base_url,
        websocket_base_url=websocket_base_url,
        max_retries=max_retries,
    )
