"""Whisper's log-mel features in numpy: what Smart Turn v3's encoder reads (no torch, no transformers).

The recipe of ``transformers.WhisperFeatureExtractor`` with Smart Turn's settings: 16 kHz audio, 8 s
(128 000 samples), zero-mean unit-variance waveform, a centred STFT (400-sample periodic Hann window,
160-sample hop, reflect padding), the power spectrum on 80 Slaney mel bands from 0 to 8 kHz (Slaney area
normalisation), ``log10`` floored at 1e-10, the last frame dropped (800 frames), the range limited to 8 decades
below the peak, then ``(x + 4) / 4``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
SECONDS = 8
N_SAMPLES = SAMPLE_RATE * SECONDS
N_FFT = 400
HOP = 160
N_MELS = 80


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear (3 mels per 200 Hz) up to 1 kHz, logarithmic above."""
    log_step = 27.0 / np.log(6.4)
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) * log_step)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    log_step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))


def mel_filters() -> npt.NDArray[np.float64]:
    """The ``(N_FFT // 2 + 1, N_MELS)`` triangular filterbank, each band scaled to unit area (Slaney)."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2.0)), N_MELS + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))


_FILTERS = mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann


def fit(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """The last ``SECONDS`` of 16 kHz ``samples``, zero-padded at the start to exactly that length."""
    x = np.asarray(samples, np.float32)[-N_SAMPLES:]
    return np.pad(x, (N_SAMPLES - x.size, 0)) if x.size < N_SAMPLES else x


def log_mel(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """``(N_MELS, 800)`` float32 features of 8 s of 16 kHz audio in [-1, 1] (see ``fit``)."""
    x = np.asarray(samples, np.float32)
    if x.shape != (N_SAMPLES,):
        raise ValueError(f"log_mel needs {N_SAMPLES} samples (8 s at 16 kHz, see fit()), got shape {x.shape}")
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # (801, 201)
    mel: npt.NDArray[np.float64] = np.log10(np.maximum(power @ _FILTERS, 1e-10)).T[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)
