"""``SessionRecorder``: one session's events as JSON lines, each written with one system call."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ._redact import Redactor

logger = logging.getLogger("agentsession.recorder")

#: set to 1 to record sessions: installing the recorder alone records nothing
RECORD_ENV = "AGENTSESSION_RECORD"
#: the folder recordings go to (default ``./recordings``)
DIR_ENV = "AGENTSESSION_RECORDER_DIR"
DEFAULT_DIR = "recordings"
#: version of the record format (see ``agentsession._report`` for the fields)
FORMAT = 1


def recording_enabled() -> bool:
    """Whether ``AGENTSESSION_RECORD`` asks for recordings (1, true, yes or on)."""
    return os.environ.get(RECORD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def recordings_dir() -> Path:
    """The folder named by ``AGENTSESSION_RECORDER_DIR``, else ``./recordings``."""
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


class SessionRecorder:
    """Appends one JSON object per event to ``path``.

    Each line goes to the file with a single ``write`` system call, so whatever was recorded before a
    crash (even SIGKILL) is in the file and every line in it is whole. ``record`` is thread-safe: the
    session's events arrive on the event loop, plugin hooks on the session's observer thread. Values pass
    through the ``Redactor`` first.
    """

    def __init__(self, path: str | Path, started: float, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.started = started
        self.session_id = uuid.uuid4().hex[:12]
        self._redact = redactor if redactor is not None else Redactor.from_env()
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @classmethod
    def create(cls, agent: str, started: float, directory: str | Path | None = None,
               redactor: Redactor | None = None) -> SessionRecorder:
        """A recorder writing ``<directory>/<date>-<time>-<agent>-<id>.jsonl``."""
        folder = Path(directory) if directory is not None else recordings_dir()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", agent).strip("-") or "session"
        return cls(folder / f"{stamp}-{slug}-{uuid.uuid4().hex[:6]}.jsonl", started, redactor)

    def record(self, event: str, at: float | None = None, **data: Any) -> None:
        """Write one record: ``event``, ``t`` (seconds since the start), ``time`` (epoch) and ``data``."""
        at = time.time() if at is None else at
        record = {"event": event, "t": round(at - self.started, 6), "time": round(at, 6), **self._redact(data)}
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:  # a late event after close(): append it all the same
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    _write_all(fd, line)
                finally:
                    os.close(fd)
            else:
                _write_all(self._fd, line)

    def close(self) -> None:
        """Close the file (idempotent); a later ``record`` still appends."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"<SessionRecorder {self.session_id} {self.path}>"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
