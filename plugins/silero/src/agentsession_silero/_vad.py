"""``SileroVAD``: core's ``VAD`` interface over Silero's neural voice activity model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentsession import VAD, AudioConverter, AudioFrame, VADEvent

from ._model import CONTEXT_SAMPLES, MODEL_RATES, STATE_SHAPE, WINDOW_SAMPLES, SileroModel, load_model

_WINDOW_MS = 32  # the model's window at both of its rates


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class SileroVAD(VAD):
    """Silero VAD (v6, ONNX, run by onnxruntime on the CPU); frames of any rate and channel count.

    Frames are mixed to mono and resampled to ``sample_rate`` (the model's rate, 16000 or 8000) by core's
    ``AudioConverter``; the model scores each 32 ms window with a speech probability. Speech starts once
    ``min_speech_duration`` of windows score at least ``activation_threshold``, and ends once
    ``min_silence_duration`` of windows score below ``deactivation_threshold`` (default
    ``activation_threshold - 0.15``, the hysteresis LiveKit uses). Like core's ``EnergyVAD``, an event's
    ``position`` is where the speech started or stopped, in seconds of audio pushed so far (to the 32 ms
    window), not where it was recognised: "start" is reported ``min_speech_duration`` later and "end"
    ``min_silence_duration`` later.

    ``prefix_padding`` is the audio a consumer should keep from before a reported start (e.g. as core's
    ``UtteranceCollector(vad, preroll=vad.prefix_padding)``): the VAD itself only reports positions.

    The model is loaded once per process and shared; each ``SileroVAD`` holds only its stream's state, so
    one instance serves one stream (``reset()`` between streams).
    """

    def __init__(
        self,
        *,
        activation_threshold: float = 0.5,
        deactivation_threshold: float | None = None,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.55,
        prefix_padding: float = 0.5,
        sample_rate: int = 16000,
        model_path: str | Path | None = None,
    ) -> None:
        activation = _number("activation_threshold", activation_threshold)
        if not 0.0 < activation < 1.0:
            raise ValueError(f"activation_threshold must be between 0 and 1 (exclusive), got {activation_threshold!r}")
        if deactivation_threshold is None:
            deactivation = max(activation - 0.15, 0.01)
        else:
            deactivation = _number("deactivation_threshold", deactivation_threshold)
            if not 0.0 < deactivation <= activation:
                raise ValueError(
                    f"deactivation_threshold must be > 0 and <= activation_threshold ({activation}), "
                    f"got {deactivation_threshold!r}"
                )
        min_speech = _number("min_speech_duration", min_speech_duration)
        if min_speech < 0:
            raise ValueError(f"min_speech_duration must be >= 0 seconds, got {min_speech_duration!r}")
        min_silence = _number("min_silence_duration", min_silence_duration)
        if min_silence <= 0:
            raise ValueError(f"min_silence_duration must be > 0 seconds, got {min_silence_duration!r}")
        padding = _number("prefix_padding", prefix_padding)
        if padding < 0:
            raise ValueError(f"prefix_padding must be >= 0 seconds, got {prefix_padding!r}")
        if type(sample_rate) is not int or sample_rate not in MODEL_RATES:
            raise ValueError(
                f"sample_rate is the model's rate and must be 16000 or 8000 (input frames of any rate are "
                f"resampled to it), got {sample_rate!r}"
            )
        self.activation_threshold = activation
        self.deactivation_threshold = deactivation
        self.min_speech_duration = min_speech
        self.min_silence_duration = min_silence
        self.prefix_padding = padding
        self.sample_rate = sample_rate
        self._model: SileroModel = load_model(model_path)
        self._window = WINDOW_SAMPLES[sample_rate]
        self._context = CONTEXT_SAMPLES[sample_rate]
        self._window_s = self._window / sample_rate
        # durations in whole windows (a duration that falls inside a window needs that window complete)
        self._speech_windows = max(1, math.ceil(min_speech / self._window_s - 1e-9))
        self._silence_windows = max(1, math.ceil(min_silence / self._window_s - 1e-9))
        self.reset()

    def reset(self) -> None:
        """Forget the stream: model state, buffered audio, position and speech state."""
        self._converter = AudioConverter(self.sample_rate, 1, _WINDOW_MS)
        self._state = np.zeros(STATE_SHAPE, np.float32)
        # the model's input row: the previous window's last samples, then the new window
        self._input = np.zeros((1, self._context + self._window), np.float32)
        self._windows = 0
        self._position = 0.0
        self._probability = 0.0
        self._speaking = False
        self._run_start: int | None = None  # first window of the current run above/below the threshold

    @property
    def speaking(self) -> bool:
        """Whether the stream is inside speech now (after the last "start", before its "end")."""
        return self._speaking

    @property
    def probability(self) -> float:
        """The model's speech probability for the last complete 32 ms window (0.0 before the first)."""
        return self._probability

    @property
    def position(self) -> float:
        """Seconds of audio pushed since the last reset."""
        return self._position

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        self._position += frame.duration
        events: list[VADEvent] = []
        for window in self._converter.push(frame):
            event = self._step(self._infer(window))
            if event is not None:
                events.append(event)
        return events

    def _infer(self, window: AudioFrame) -> float:
        row = self._input
        row[0, : self._context] = row[0, self._window :]  # context: the tail of the previous window
        np.multiply(window.data[:, 0], np.float32(1 / 32768), out=row[0, self._context :])
        probabilities, self._state = self._model.run(row, self._state, self.sample_rate)
        self._probability = float(probabilities[0])
        return self._probability

    def _step(self, probability: float) -> VADEvent | None:
        index = self._windows
        self._windows += 1
        if not self._speaking:
            if probability < self.activation_threshold:
                self._run_start = None
                return None
            if self._run_start is None:
                self._run_start = index
            if self._windows - self._run_start < self._speech_windows:
                return None
            self._speaking = True
            kind: Literal["start", "end"] = "start"
        else:
            if probability >= self.deactivation_threshold:
                self._run_start = None
                return None
            if self._run_start is None:
                self._run_start = index
            if self._windows - self._run_start < self._silence_windows:
                return None
            self._speaking = False
            kind = "end"
        at, self._run_start = self._run_start, None
        return VADEvent(kind, at * self._window_s)

    def __repr__(self) -> str:
        return (
            f"SileroVAD(activation_threshold={self.activation_threshold}, "
            f"deactivation_threshold={self.deactivation_threshold}, min_speech_duration={self.min_speech_duration}, "
            f"min_silence_duration={self.min_silence_duration}, prefix_padding={self.prefix_padding}, "
            f"sample_rate={self.sample_rate})"
        )


def create_vad(**options: Any) -> SileroVAD:
    """A ``SileroVAD`` with ``options`` (the keyword arguments of ``SileroVAD``): the factory a session can call
    to get "the best VAD installed"."""
    return SileroVAD(**options)
