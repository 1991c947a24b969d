"""The API key and the SDK client, shared by every OpenAI model class."""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
from collections.abc import Iterator

import httpx2
from openai import APIStatusError, AsyncOpenAI

from agentsession import ModelError, env_secret, protect_secret

from ._http_tap import tapped_http_client

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


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
        # the SDK's default client, its traffic shown to a recorder's cassette, with one TLS context for the
        # process: each new client loads the CA bundle again (0.8 MB and 20 ms of CPU per session)
        http_client=tapped_http_client(_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))),
    )


@functools.cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once per setting."""
    context: ssl.SSLContext = httpx2.create_ssl_context()
    return context


def refused(status: int, what: str, refusal: str = "the OpenAI Realtime API refused the connection") -> ModelError:
    """The ``ModelError`` for an HTTP refusal (``refusal (HTTP status)``), saying what to do next when the user can
    fix it: a key that is not accepted names ``OPENAI_API_KEY``, a missing model ``model=``. ``what`` is the class
    the user built (``OpenAIRealtime``). Server-side failures (5xx) are recoverable; the rest are not."""
    hint = {
        401: f"the API key was not accepted: set {API_KEY_ENV} to a valid key "
             f"(https://platform.openai.com/api-keys) or pass api_key=... to {what}()",
        403: f"the key has no access to this model (or this region): check {what}(model=...) and the key's project",
        404: f"no such model or endpoint: check {what}(model=...) and, if you set it, {BASE_URL_ENV}",
        429: "rate limit or quota exceeded: check the plan and billing of the key's project, or try again later",
    }.get(status)
    code = {401: "invalid_api_key", 403: "permission_denied", 404: "model_not_found", 429: "rate_limited"}
    return ModelError(f"{refusal} (HTTP {status})" + (f": {hint}" if hint else ""),
                      recoverable=status >= 500, code=code.get(status, f"http_{status}"))


@contextlib.contextmanager
def refusals(what: str, service: str) -> Iterator[None]:
    """Turn the SDK's HTTP error of a refused request into :func:`refused`'s ``ModelError``."""
    try:
        yield
    except APIStatusError as exc:
        raise refused(exc.status_code, what, f"{service} refused the request") from None
