"""Puts this folder on ``sys.path`` so tests can import ``videosdk_fakes`` (it needs the SDK: the ``sdk`` extra)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
