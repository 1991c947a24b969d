"""agentsession-recorder: records every session to a JSON-lines file, for ``agentsession report``.

Installed, it records the sessions of a process run with ``AGENTSESSION_RECORD=1`` (found through its entry
point; no code change); ``AGENTSESSION_RECORDER_DIR`` names the folder (default ``./recordings``).
"""

from __future__ import annotations

from ._recorder import DEFAULT_DIR, DIR_ENV, FORMAT, RECORD_ENV, SessionRecorder, recording_enabled, recordings_dir
from ._redact import Redactor, is_secret_field
from .plugin import recorder_for

__all__ = ["DEFAULT_DIR", "DIR_ENV", "FORMAT", "RECORD_ENV", "Redactor", "SessionRecorder", "is_secret_field",
           "recorder_for", "recording_enabled", "recordings_dir"]
