"""Keeping secrets out of recordings: known secret values anywhere, and any value of a key-like field."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from agentsession import mask, redact

#: environment variable names whose values are secrets (OPENAI_API_KEY, VIDEOSDK_AUTH_TOKEN, ...)
SECRET_ENV_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
#: words that make a field name secret (``api_key``, ``authToken``, ``password``; not ``output_tokens``)
SECRET_WORDS = frozenset({"apikey", "auth", "authorization", "bearer", "cookie", "credential", "credentials",
                          "passwd", "password", "secret", "token"})
#: shapes of provider keys that are secret even when no environment variable holds them
KEY_SHAPES = re.compile(r"\bsk-[A-Za-z0-9_-]{20,}|\bAIza[0-9A-Za-z_-]{35}\b")


@functools.lru_cache(maxsize=4096)  # the same few field names, on every line: decide each once
def is_secret_field(name: str) -> bool:
    """Whether a field called ``name`` holds a secret."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", words) if p]
    joined = "".join(parts)
    return any(p in SECRET_WORDS for p in parts) or any(
        s in joined for s in ("apikey", "accesskey", "privatekey", "clientsecret")
    )


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values (8 characters or more) of secret-named environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Returns a copy of JSON-like data with secrets replaced by their ``mask()``-ed form."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    @classmethod
    def from_env(cls, extra: Iterable[str] = ()) -> Redactor:
        """Redacts every secret-named environment variable's value, and ``extra``."""
        return cls([*env_secrets(), *extra])

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                str(k): (self._field(v) if is_secret_field(str(k)) else self(v)) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value

    def text(self, text: str) -> str:
        """``text`` with every known secret (this redactor's and those core knows, e.g. a key a plugin was
        given in code) and key-shaped string masked."""
        text = redact(text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, mask(secret))
        return KEY_SHAPES.sub(lambda m: mask(m.group(0)), text)

    @staticmethod
    def _field(value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        return mask(value if isinstance(value, str) else str(value))
