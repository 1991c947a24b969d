"""Silero voice activity detection for agentsession: ``SileroVAD`` on core's ``VAD`` interface."""

from __future__ import annotations

from ._model import bundled_model_path
from ._vad import SileroVAD, create_vad

__all__ = ["SileroVAD", "bundled_model_path", "create_vad"]
