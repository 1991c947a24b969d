"""Keeping secrets (API keys, room tokens) out of logs, reprs and errors."""

from __future__ import annotations

import logging
import os
from typing import Any

#: environment variables whose values are secrets wherever they appear
SECRET_ENV_VARS = (
    "OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "DEEPGRAM_API_KEY",
    "CARTESIA_API_KEY",
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


# secrets handed to plugins in code; replaced, never mutated, so threads that log can read it without a lock
_protected: frozenset[str] = frozenset()
_factory_installed = False


def protect_secret(secret: str | None) -> None:
    """Mask ``secret`` in every log record this process makes from now on, whichever library logs it (a
    websocket client logging its ``Authorization`` header, say). Plugins call it with the key or token they
    were given; secrets in :data:`SECRET_ENV_VARS` are masked without it."""
    global _protected
    if secret and len(secret) >= 8 and secret not in _protected:
        _protected = _protected | {secret}
    install_log_redaction()


def redact(text: str) -> str:
    """``text`` with every known secret (the :data:`SECRET_ENV_VARS` values and every protected one) masked."""
    return _mask_all(text, _secrets(()))


def install_log_redaction() -> None:
    """Redact known secrets in each log record as it is made (a log-record factory: it sees every logger and
    every handler, including ones added later). Idempotent; ``AgentSession.start`` calls it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record, ())
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _secrets(extra: tuple[str, ...]) -> list[str]:
    found = {v for v in (os.environ.get(n) for n in SECRET_ENV_VARS) if v and len(v) >= 8}
    found.update(_protected)
    found.update(s for s in extra if s)
    return sorted(found, key=len, reverse=True)  # a secret containing another is masked whole


def _redact_record(record: logging.LogRecord, extra: tuple[str, ...]) -> None:
    secrets = _secrets(extra)
    if not secrets:
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed log call: keep what it said, without raising later
        message = f"{record.msg} {record.args!r}"
        record.msg, record.args = message, None
    except Exception:
        return
    redacted = _mask_all(message, secrets)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        # formatters print a record's exc_text when set: a traceback can quote a secret too
        record.exc_text = _mask_all(_TRACEBACKS.formatException(record.exc_info), secrets)
    if record.stack_info:
        record.stack_info = _mask_all(record.stack_info, secrets)


_TRACEBACKS = logging.Formatter()


def _mask_all(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, mask(secret))
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks known secrets (and ``extra``) in a record's message, for handlers of
    your own; :func:`install_log_redaction` already covers records made through ``logging``."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._extra = extra

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record, self._extra)
        return True
