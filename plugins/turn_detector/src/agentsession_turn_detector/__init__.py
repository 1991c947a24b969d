"""An audio end-of-turn model for agentsession: ``TurnDetector`` (Pipecat's Smart Turn v3 on onnxruntime, the
model file shipped in the ``pipecat-ai`` package) and ``pre_download_model()``, VideoSDK's names."""

from __future__ import annotations

from ._detector import TurnDetector, pre_download_model
from ._model import bundled_model_path

__all__ = ["TurnDetector", "bundled_model_path", "pre_download_model"]
