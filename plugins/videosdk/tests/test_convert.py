"""PyAV frames to core frames and back: layout only (rate and channels are core's job)."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from agentsession_videosdk._convert import from_av, to_av


def _stereo(n: int = 960) -> np.ndarray:
    left = np.arange(n, dtype=np.int16)
    return np.stack([left, -left], axis=1)


def test_packed_stereo_s16_keeps_rate_channels_and_samples() -> None:
    samples = _stereo()
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 48000
    frame.pts, frame.time_base = 960, fractions.Fraction(1, 48000)
    out = from_av(frame)
    assert (out.sample_rate, out.channels) == (48000, 2)
    assert np.array_equal(out.data, samples)
    assert out.timestamp == pytest.approx(0.02)


def test_planar_and_float_formats() -> None:
    samples = _stereo()
    planar = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.T), format="s16p", layout="stereo")
    planar.sample_rate = 48000
    assert np.array_equal(from_av(planar).data, samples)
    floats = av.AudioFrame.from_ndarray(np.full((1, 480), 0.5, np.float32), format="flt", layout="mono")
    floats.sample_rate = 24000
    out = from_av(floats)
    assert out.channels == 1 and out.sample_rate == 24000
    assert int(out.data[0, 0]) == pytest.approx(16384, abs=1)


def test_to_av_is_packed_s16_with_pts() -> None:
    samples = np.arange(960, dtype=np.int16).reshape(-1, 1)
    frame = to_av(samples, 48000, pts=1920)
    assert (frame.format.name, frame.layout.name, frame.samples, frame.sample_rate) == ("s16", "mono", 960, 48000)
    assert frame.pts == 1920 and frame.time_base == fractions.Fraction(1, 48000)
    assert np.array_equal(from_av(frame).data, samples)
