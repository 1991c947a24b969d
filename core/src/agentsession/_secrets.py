"""Keeping secrets (API keys, room tokens) out of logs, reprs and errors."""

from __future__ import annotations

import logging
import os

#: environment variables whose values are secrets wherever they appear
SECRET_ENV_VARS = (
    "OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "VIDEOSDK_AUTH_TOKEN",
    "AGENTSESSION_PLAYGROUND_TOKEN",
)


def mask(secret: str | None) -> str:
    """A recognisable but useless form of ``secret``: ``sk-p…(51 chars)``."""
    if not secret:
        return "<unset>"
    return f"{secret[:4]}…({len(secret)} chars)" if len(secret) > 12 else "****"


def env_secret(*names: str) -> str | None:
    """The first of ``names`` set in the environment."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class RedactingFilter(logging.Filter):
    """Replaces any known secret in a log record's final message with its masked form."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._extra = extra

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [v for v in (os.environ.get(n) for n in SECRET_ENV_VARS) if v and len(v) >= 8]
        secrets += [s for s in self._extra if s]
        if secrets:
            try:
                message = record.getMessage()
            except Exception:  # a malformed log call: let the handler report it, don't raise here
                return True
            redacted = message
            for secret in secrets:
                redacted = redacted.replace(secret, mask(secret))
            if redacted != message:
                record.msg, record.args = redacted, None
        return True
