"""Smart Turn v3's ONNX model, found in the package that ships it and loaded once per process."""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._features import fit, log_mel

_PACKAGE = "pipecat"  # the pipecat-ai distribution; its package is never imported, only its data file read
_DATA = Path("audio", "turn", "smart_turn", "data")
_VERSION = re.compile(r"smart-turn-v(\d+)\.(\d+)-cpu\.onnx")
#: The model's answer swings with where the audio ends within a 10 ms hop of its features: a finished sentence
#: can read 0.31 there and 0.91-0.98 with its last 1-8 ms left off (onnxruntime 1.28-1.32; 1.26 dips elsewhere).
#: With more than one reading, an answer at least this close to 0 or 1 stands; any other is read again, each time
#: ``TRIM`` samples (4 ms) earlier, and the median of the readings is the answer.
SURE = 0.05
TRIM = 64
READINGS = (1, 3)


def bundled_model_path() -> Path:
    """The newest ``smart-turn-v3.*-cpu.onnx`` that the installed ``pipecat-ai`` carries."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pipecat-ai is not installed: pip install agentsession-turn-detector pulls it in "
                           "(it ships the Smart Turn model)")
    folder = Path(next(iter(spec.submodule_search_locations))) / _DATA
    found = sorted(
        ((int(m[1]), int(m[2])), path) for path in folder.glob("smart-turn-v*-cpu.onnx")
        if (m := _VERSION.fullmatch(path.name)) and m[1] == "3"
    )
    if not found:
        raise RuntimeError(f"the installed pipecat-ai has no smart-turn-v3.*-cpu.onnx in {folder}")
    return found[-1][1]


class SmartTurnModel:
    """One onnxruntime session; ``probability`` is thread-safe."""

    def __init__(self, path: Path) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        # one thread per call: sessions of many calls share the process and its cores
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.path = path
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"])
        names = [i.name for i in self._session.get_inputs()]
        if names != ["input_features"]:
            raise RuntimeError(f"{path} is not a Smart Turn v3 model (its inputs are {names})")

    def probability(self, samples: npt.NDArray[np.float32], readings: int = 1) -> float:
        """The probability that the speaker is done, from 16 kHz audio in [-1, 1] ending where they stopped (the
        last 8 s are heard): one reading if it is sure (``SURE``), else the median of ``readings`` (see ``TRIM``)."""
        if readings not in READINGS:
            raise ValueError(f"readings must be one of {READINGS}, got {readings!r}")
        (first,) = self._read([samples])
        if readings == 1 or first <= SURE or first >= 1.0 - SURE:
            return first
        again = self._read([samples[: max(0, len(samples) - TRIM * i)] for i in range(1, readings)])
        return float(np.median([first, *again]))

    def _read(self, windows: list[npt.NDArray[np.float32]]) -> list[float]:
        """The model's answer for each window, in one run."""
        (out,) = self._session.run(None, {"input_features": np.stack([log_mel(fit(w)) for w in windows])})
        return [float(p) for p in np.asarray(out).reshape(-1)]


_lock = threading.Lock()
_models: dict[Path, SmartTurnModel] = {}


def load_model(path: str | Path | None = None) -> SmartTurnModel:
    """The process-wide model for ``path`` (default: the bundled one), loaded on first use."""
    resolved = Path(path).resolve() if path is not None else bundled_model_path()
    with _lock:
        model = _models.get(resolved)
        if model is None:
            if not resolved.is_file():
                raise ValueError(f"model_path {str(resolved)!r} is not a file")
            model = _models[resolved] = SmartTurnModel(resolved)
        return model
