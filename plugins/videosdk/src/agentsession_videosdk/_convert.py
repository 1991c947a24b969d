"""Between PyAV frames (what the SDK's tracks carry) and core ``AudioFrame``s: layout only, never rate or channels."""

from __future__ import annotations

import fractions
import math

import av
import numpy as np
import numpy.typing as npt

from agentsession import AudioFrame

_INT_SCALE = {"s16": 1, "s32": 1 << 16}


def from_av(frame: av.AudioFrame) -> AudioFrame:
    """A core frame with the same rate, channels and samples (PCM16); float and 32-bit input is rescaled."""
    channels = len(frame.layout.channels)
    array = frame.to_ndarray()
    fmt = frame.format
    # Packed formats come as (1, n * channels), planar ones as (channels, n).
    samples = array.T if fmt.is_planar else array.reshape(-1, channels)
    name = fmt.name.rstrip("p")
    timestamp = float(frame.time) if frame.time is not None and math.isfinite(frame.time) else 0.0
    if name in _INT_SCALE:
        data = samples if name == "s16" else samples // _INT_SCALE[name]
        return AudioFrame(np.ascontiguousarray(data, dtype=np.int16), frame.sample_rate, timestamp)
    if name in ("flt", "dbl"):
        return AudioFrame.from_float(np.ascontiguousarray(samples), frame.sample_rate, timestamp)
    raise ValueError(f"unsupported audio sample format {fmt.name!r}")


def to_av(samples: npt.NDArray[np.int16], sample_rate: int, pts: int) -> av.AudioFrame:
    """A packed s16 PyAV frame of ``samples`` (shape ``(n, channels)``), stamped ``pts`` in 1/``sample_rate``."""
    channels = samples.shape[1]
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout="mono" if channels == 1 else "stereo"
    )
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, sample_rate)
    return frame
