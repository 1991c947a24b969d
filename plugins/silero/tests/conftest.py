"""Fixtures: the test tracks (made once per run); makes ``silero_audio`` importable from the tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from silero_audio import Track, make_nonspeech_track, make_speech_track  # noqa: E402


@pytest.fixture(scope="session")
def speech_track() -> Track:
    return make_speech_track()


@pytest.fixture(scope="session")
def nonspeech_track() -> Track:
    return make_nonspeech_track()
