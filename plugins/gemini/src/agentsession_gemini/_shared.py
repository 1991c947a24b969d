"""What ``GeminiRealtime`` and ``GeminiLLM`` share: the API key and client, secret-free errors, tool result
payloads."""

from __future__ import annotations

import json
from typing import Any

from google import genai
from google.genai import errors, types

from agentsession import ModelError, env_secret, mask, protect_secret, redact

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


class Credentials:
    """The API key (or Vertex project) and the ``genai.Client`` made from it on first use. The key is masked
    in every log line (the SDK and websockets log request headers at DEBUG)."""

    def __init__(
        self,
        owner: str,
        *,
        api_key: str | None,
        vertexai: bool,
        project: str | None,
        location: str | None,
        http_options: types.HttpOptions | None,
    ) -> None:
        self.key = resolve_api_key(api_key, vertexai, owner)
        self.vertexai = vertexai
        self.project = project
        self.location = location
        self._http_options = http_options
        protect_secret(self.key)
        self._client: genai.Client | None = None

    def __repr__(self) -> str:
        return mask(self.key) if self.key else "<vertex credentials>"

    def client(self) -> genai.Client:
        """The client, made on the first call; a ``ModelError`` (key masked) if the SDK refuses the settings."""
        if self._client is None:
            try:
                client = genai.Client(
                    api_key=self.key,
                    vertexai=self.vertexai,
                    project=self.project,
                    location=self.location,
                    http_options=self._http_options,
                )
            except Exception as exc:
                raise ModelError(f"cannot create the Gemini client: {self.describe(exc)}") from None
            self._client = client
        return self._client

    async def aclose(self) -> None:
        """Close the client, if one was made."""
        client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()

    def describe(self, exc: BaseException) -> str:
        """``Type: message`` with the key (protected at construction) masked."""
        return redact(f"{type(exc).__name__}: {exc}")


def response_payload(output: str, is_error: bool) -> dict[str, Any]:
    """A tool's output (JSON text or plain text) as a ``FunctionResponse.response`` object."""
    try:
        value = json.loads(output)
    except ValueError:
        value = output
    if is_error:
        return value if isinstance(value, dict) and "error" in value else {"error": value}
    return value if isinstance(value, dict) else {"output": value}


def api_error(exc: errors.APIError) -> ModelError:
    """The SDK's ``APIError`` as a ``ModelError``: code, status and message (secrets masked); timeouts, rate
    limits and server errors are recoverable."""
    status = f" {exc.status}" if exc.status else ""
    return ModelError(
        f"Gemini API error {exc.code}{status}: {redact(exc.message or str(exc))}",
        recoverable=exc.code in (408, 429) or exc.code >= 500,
        code=str(exc.code),
    )
