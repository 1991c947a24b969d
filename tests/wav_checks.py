"""What the end-to-end tests read from an agent's output WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

BLOCK = 0.02  # seconds per loudness block of the output WAV


def loud_segments(path: Path, gap: float = 0.1) -> list[tuple[float, float]]:
    """The (start, end) seconds of the output's non-silent stretches; pauses under ``gap`` are bridged."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    n = int(rate * BLOCK)
    blocks = audio[: len(audio) // n * n].reshape(-1, n)
    loud = np.sqrt(np.mean(blocks**2, axis=1)) > 1000
    segments: list[tuple[float, float]] = []
    for i in np.flatnonzero(loud):
        start, end = i * BLOCK, (i + 1) * BLOCK
        if segments and start - segments[-1][1] < gap:
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((start, end))
    return [(round(a, 2), round(b, 2)) for a, b in segments]
