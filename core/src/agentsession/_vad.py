"""An energy-based voice activity detector: no model, no dependency, good enough for clean audio."""

from __future__ import annotations

import math

import numpy as np

from ._audio import AudioFrame
from ._models import VAD, VADEvent


class EnergyVAD(VAD):
    """Speech is audio louder than ``threshold_db`` dBFS for ``min_speech`` seconds; it ends after
    ``min_silence`` seconds below ``threshold_db - hysteresis_db``."""

    def __init__(
        self,
        *,
        threshold_db: float = -40.0,
        hysteresis_db: float = 6.0,
        min_speech: float = 0.1,
        min_silence: float = 0.5,
    ) -> None:
        if min_speech < 0 or min_silence <= 0:
            raise ValueError("min_speech must be >= 0 and min_silence > 0")
        self.threshold_db = threshold_db
        self.hysteresis_db = hysteresis_db
        self.min_speech = min_speech
        self.min_silence = min_silence
        self.reset()

    def reset(self) -> None:
        self._position = 0.0
        self._speaking = False
        self._run_start: float | None = None

    @property
    def speaking(self) -> bool:
        """Whether the stream is inside speech now."""
        return self._speaking

    @staticmethod
    def level_db(frame: AudioFrame) -> float:
        """RMS level of ``frame`` in dBFS (-inf for digital silence)."""
        if frame.samples_per_channel == 0:
            return -math.inf
        samples = frame.data.astype(np.float32)
        rms = float(np.sqrt(np.mean(samples * samples))) / 32768.0
        return 20.0 * math.log10(rms) if rms > 0 else -math.inf

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        start = self._position
        self._position += frame.duration
        level = self.level_db(frame)
        if not self._speaking:
            if level >= self.threshold_db:
                if self._run_start is None:
                    self._run_start = start
                if self._position - self._run_start >= self.min_speech:
                    self._speaking, at, self._run_start = True, self._run_start, None
                    return [VADEvent("start", at)]
            else:
                self._run_start = None
            return []
        if level < self.threshold_db - self.hysteresis_db:
            if self._run_start is None:
                self._run_start = start
            if self._position - self._run_start >= self.min_silence:
                self._speaking, at, self._run_start = False, self._run_start, None
                return [VADEvent("end", at)]
        else:
            self._run_start = None
        return []
