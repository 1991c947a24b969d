"""The API key, the base URL and the SDK client."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import httpx
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

from agentsession.plugin import ModelError, env_secret, protect_secret

API_KEY_ENV = "DEEPGRAM_API_KEY"
BASE_URL_ENV = "DEEPGRAM_BASE_URL"
DEFAULT_BASE_URL = "https://api.deepgram.com"


def resolve_api_key(api_key: str | None) -> str:
    """``api_key`` or ``$DEEPGRAM_API_KEY``; a ``ModelError`` naming the variable when neither is set."""
    key = api_key or env_secret(API_KEY_ENV)
    if not key:
        raise ModelError(
            f"DeepgramSTT needs a Deepgram API key: set the {API_KEY_ENV} environment variable "
            "or pass api_key=... to DeepgramSTT()",
            recoverable=False,
            code="missing_api_key",
        )
    protect_secret(key)  # masked in every log record from now on
    return key


def environment(base_url: str | None) -> DeepgramClientEnvironment:
    """The SDK's environment for ``base_url`` (else ``$DEEPGRAM_BASE_URL``, else Deepgram's API): the REST API at
    ``http(s)://host``, the live API at ``ws(s)://host``. VideoSDK's form, the websocket URL with ``/v1/listen``,
    is taken too."""
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError(f"the Deepgram base URL must look like https://api.deepgram.com, got {url!r}")
    secure = parts.scheme in ("https", "wss")
    path = parts.path.rstrip("/").removesuffix("/v1/listen")
    rest = urlunsplit(("https" if secure else "http", parts.netloc, path, "", ""))
    live = urlunsplit(("wss" if secure else "ws", parts.netloc, path, "", ""))
    return DeepgramClientEnvironment(base=rest, production=live, agent=live, agent_rest=rest)


def make_client(api_key: str | None, base_url: str | None, http: httpx.AsyncClient) -> AsyncDeepgramClient:
    """An ``AsyncDeepgramClient`` for the key and base URL, on ``http`` (the caller closes it). The SDK masks the key
    in the websockets library's logs too."""
    key = resolve_api_key(api_key)
    return AsyncDeepgramClient(api_key=key, environment=environment(base_url), httpx_client=http)
