"""Tests for agentsession._audio: frames, resampling, re-framing and conversion."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest

from agentsession._audio import (
    SUPPORTED_RATES,
    AudioConverter,
    AudioFrame,
    Reframer,
    Resampler,
    _SoxrResampler,
)

PAIRS = [
    (48000, 16000),
    (16000, 48000),
    (24000, 16000),
    (16000, 24000),
    (24000, 48000),
    (48000, 24000),
    (44100, 48000),
]


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5, channels: int = 1) -> AudioFrame:
    t = np.arange(round(rate * seconds)) / rate
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return AudioFrame.from_float(np.repeat(wave[:, np.newaxis], channels, axis=1), rate)


def noise(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> AudioFrame:
    rng = np.random.default_rng(seed)
    return AudioFrame(
        rng.integers(-20000, 20000, (round(rate * seconds), channels), dtype=np.int16),
        rate,
    )


def resample_all(frame: AudioFrame, output_rate: int) -> npt.NDArray[np.int16]:
    resampler = Resampler(frame.sample_rate, output_rate, frame.channels)
    return np.concatenate((resampler.push(frame), resampler.flush()))


def amplitude_spectrum(samples: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.float64]:
    """Amplitude per 1 Hz bin of one steady-state second (after 0.25 s), in int16 units."""
    start = rate // 4
    segment = samples[start : start + rate, 0].astype(np.float64)
    assert len(segment) == rate
    return np.abs(np.fft.rfft(segment)) * 2 / rate


def db(ratio: float) -> float:
    return 20 * math.log10(ratio)


def chunked(frame: AudioFrame, sizes: list[int]) -> list[AudioFrame]:
    bounds = np.cumsum([0, *sizes])
    return [AudioFrame(frame.data[a:b], frame.sample_rate) for a, b in itertools.pairwise(bounds)]


def random_sizes(total: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(0, 700)))
    sizes[-1] -= sum(sizes) - total
    return sizes


# --- AudioFrame -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rate", "match"),
    [
        (np.zeros((10, 1), np.float32), 16000, "from_float"),
        (np.zeros((10, 1), np.int32), 16000, "int32"),
        (np.zeros((10, 1), ">i2"), 16000, "int16"),
        (np.zeros(10, np.int16), 16000, "reshape"),
        (np.zeros((10, 3), np.int16), 16000, "channels"),
        (np.zeros((10, 1), np.int16), 11025, "supported rates"),
        (np.zeros((10, 1), np.int16), 16000.0, "supported rates"),
        (np.zeros((10, 1), np.int16), np.int64(16000), "supported rates"),
        (np.zeros((10, 1), np.int16), True, "supported rates"),
        (np.zeros((10, 0), np.int16), 16000, "channels"),
        ([[0], [0]], 16000, "ndarray"),
    ],
)
def test_frame_validation(data: object, rate: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AudioFrame(data, rate)  # type: ignore[arg-type]


def test_frame_rejects_non_finite_timestamp() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        AudioFrame(np.zeros((1, 1), np.int16), 16000, math.nan)


def test_frame_properties_and_immutability() -> None:
    frame = AudioFrame(np.zeros((480, 2), np.int16), 24000, 1.5)
    assert (frame.channels, frame.samples_per_channel, frame.duration) == (2, 480, 0.02)
    assert frame.with_timestamp(3.0).timestamp == 3.0
    assert frame.with_timestamp(3.0).data is frame.data
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.timestamp = 2.0  # type: ignore[misc]


def test_bytes_round_trip_is_little_endian() -> None:
    frame = AudioFrame.from_bytes(b"\x01\x00\xff\x7f\x00\x80\xff\xff", 16000, channels=2, timestamp=0.5)
    assert frame.data.tolist() == [[1, 32767], [-32768, -1]]
    assert frame.timestamp == 0.5
    assert frame.to_bytes() == b"\x01\x00\xff\x7f\x00\x80\xff\xff"
    original = noise(48000, 0.01, channels=2)
    assert np.array_equal(
        AudioFrame.from_bytes(memoryview(original.to_bytes()), 48000, 2).data,
        original.data,
    )
    assert AudioFrame.from_bytes(b"", 8000).samples_per_channel == 0


def test_from_bytes_reads_bytes_in_place_and_copies_a_mutable_buffer() -> None:
    raw = noise(24000, 0.02).to_bytes()
    assert np.shares_memory(AudioFrame.from_bytes(raw, 24000).data, np.frombuffer(raw, np.int16))
    buffer = bytearray(raw)
    frame = AudioFrame.from_bytes(buffer, 24000)
    buffer[:2] = b"\x00\x00" if raw[:2] != b"\x00\x00" else b"\x01\x00"
    assert frame.to_bytes() == raw  # the caller reusing its buffer does not change the frame
    with pytest.raises(ValueError, match="unsupported sample rate"):
        AudioFrame.from_bytes(raw, 12345)
    with pytest.raises(ValueError, match="finite"):
        AudioFrame.from_bytes(raw, 24000, timestamp=float("nan"))


def test_frames_the_core_makes_have_the_same_geometry_as_checked_ones() -> None:
    reframer = Reframer(16000, 2)
    made = reframer.push(np.ones((480, 2), np.int16))
    assert [(f.samples_per_channel, f.channels, f.duration, f.timestamp) for f in made] == [(320, 2, 0.02, 0.0)]
    checked = AudioFrame(made[0].data, 16000)
    assert (checked.samples_per_channel, checked.duration) == (made[0].samples_per_channel, made[0].duration)
    assert AudioFrame(np.zeros((3, 2), np.int16), 8000).to_mono().samples_per_channel == 3


def test_reframer_passes_whole_frames_up_to_max_frame_ms_through_as_one() -> None:
    reframer = Reframer(24000, max_frame_ms=100)
    chunk = np.arange(2400, dtype=np.int16).reshape(-1, 1)
    [whole] = reframer.push(chunk)  # 100 ms, nothing buffered: one frame, the same samples (no copy)
    assert whole.samples_per_channel == 2400 and np.shares_memory(whole.data, chunk)
    longer = reframer.push(np.zeros((2880, 1), np.int16))  # 120 ms: at most 100 ms a frame
    assert [f.samples_per_channel for f in longer] == [2400, 480]
    assert reframer.push(np.zeros((100, 1), np.int16)) == []
    out = reframer.push(chunk)  # something buffered: what is whole, in frames of whole 20 ms, the rest waits
    assert [f.samples_per_channel for f in out] == [2400]
    assert np.array_equal(out[0].data[100:], chunk[:2300])
    assert out[0].timestamp == pytest.approx((2400 + 2880) / 24000)
    odd = reframer.push(np.arange(5000, dtype=np.int16).reshape(-1, 1))  # a provider's odd-sized delta
    assert [f.samples_per_channel for f in odd] == [2400, 2400]  # 100 pending + 5000: 4800 whole, 300 wait
    assert np.array_equal(np.concatenate([f.data for f in odd])[:, 0], np.r_[chunk[2300:, 0], np.arange(4700)])
    assert [f.timestamp for f in odd] == pytest.approx([(2400 + 2880 + 2400) / 24000, (2400 + 2880 + 4800) / 24000])
    assert [f.samples_per_channel for f in reframer.flush()] == [480]  # the 300 that waited, padded
    with pytest.raises(ValueError, match="max_frame_ms"):
        Reframer(24000, max_frame_ms=10)


@pytest.mark.parametrize(("rate_in", "rate_out"), [(16000, 24000), (48000, 16000)])
def test_soxr_streaming_resampler_agrees_with_ours(monkeypatch: pytest.MonkeyPatch, rate_in: int,
                                                   rate_out: int) -> None:
    pytest.importorskip("soxr")
    t = np.arange(rate_in) / rate_in
    tone = ((np.sin(2 * np.pi * 300 * t) + 0.5 * np.sin(2 * np.pi * 1700 * t)) * 8000).astype(np.int16).reshape(-1, 1)
    step = rate_in // 50

    def convert() -> tuple[np.ndarray, object]:
        converter = AudioConverter(rate_out)
        frames = [f for i in range(0, len(tone), step) for f in converter.push(AudioFrame(tone[i : i + step], rate_in))]
        resampler = converter._resampler
        frames += converter.flush()
        return np.concatenate([f.data for f in frames])[:, 0].astype(np.float64), resampler

    monkeypatch.delenv("AGENTSESSION_RESAMPLER", raising=False)
    ours, ours_resampler = convert()
    monkeypatch.setenv("AGENTSESSION_RESAMPLER", "soxr")
    theirs, soxr_resampler = convert()
    assert isinstance(ours_resampler, Resampler) and isinstance(soxr_resampler, _SoxrResampler)
    assert abs(len(ours) - len(theirs)) <= rate_out // 50  # the same audio, give or take the last frame's padding
    # ours is causal (late by a fraction of a sample more than libsoxr's): compare the spectra, away from the edges
    window = np.hanning(rate_out // 2)
    a, b = (np.abs(np.fft.rfft(x[rate_out // 4 : rate_out // 4 + rate_out // 2] * window)) for x in (ours, theirs))
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.01


@pytest.mark.parametrize(("size", "channels"), [(3, 1), (6, 2), (1, 2)])
def test_from_bytes_rejects_odd_byte_count(size: int, channels: int) -> None:
    with pytest.raises(ValueError, match="odd byte count"):
        AudioFrame.from_bytes(bytes(size), 16000, channels)


def test_float_round_trip_and_clipping() -> None:
    samples = np.random.default_rng(1).uniform(-1, 1, (1000, 2))
    restored = AudioFrame.from_float(samples, 16000).to_float()
    assert restored.dtype == np.float32 and restored.shape == (1000, 2)
    np.testing.assert_allclose(restored, samples, atol=1e-4)
    clipped = AudioFrame.from_float(np.array([2.0, -2.0, 0.5], np.float32), 16000)
    assert clipped.data.tolist() == [[32767], [-32767], [16384]]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_from_float_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        AudioFrame.from_float(np.array([0.0, bad]), 16000)


def test_from_float_rejects_integers() -> None:
    with pytest.raises(ValueError, match="float32/float64"):
        AudioFrame.from_float(np.zeros(4, np.int16), 16000)


def test_silence_and_to_mono() -> None:
    silence = AudioFrame.silence(0.02, 24000, channels=2, timestamp=1.0)
    assert silence.data.shape == (480, 2) and not silence.data.any() and silence.timestamp == 1.0
    with pytest.raises(ValueError, match="silence duration"):
        AudioFrame.silence(-1.0, 24000)
    stereo = AudioFrame(
        np.array([[1000, 3000], [32767, 32767], [-32768, -32768], [1, 2]], np.int16),
        16000,
        2.0,
    )
    mono = stereo.to_mono()
    assert mono.data.tolist() == [[2000], [32767], [-32768], [2]]
    assert mono.timestamp == 2.0
    assert mono.to_mono() is mono


# --- Resampler ------------------------------------------------------------------------


@pytest.mark.parametrize(("input_rate", "output_rate"), PAIRS)
@pytest.mark.parametrize("fraction", [None, 0.75])
def test_passband_tone_keeps_amplitude_and_frequency(input_rate: int, output_rate: int, fraction: float | None) -> None:
    freq = 1000 if fraction is None else round(fraction * min(input_rate, output_rate) / 2)
    spectrum = amplitude_spectrum(resample_all(tone(freq, input_rate, 1.5), output_rate), output_rate)
    peak = int(np.argmax(spectrum))
    assert peak == freq
    assert abs(db(spectrum[peak] / (0.5 * 32767))) < 0.5
    spurious = np.delete(spectrum, peak).max()  # images and aliases of the tone
    assert db(spurious / spectrum[peak]) < -60


@pytest.mark.parametrize(
    ("input_rate", "output_rate", "freq"),
    [
        (48000, 16000, 10000),
        (24000, 16000, 10000),
        (48000, 24000, 15000),
        (44100, 24000, 20000),
        (16000, 8000, 6000),
    ],
)
def test_tone_above_output_nyquist_is_removed(input_rate: int, output_rate: int, freq: int) -> None:
    spectrum = amplitude_spectrum(resample_all(tone(freq, input_rate, 1.5), output_rate), output_rate)
    # -60 dB anywhere: an alias would show up as a single bin.
    assert spectrum.max() < 1e-3 * 0.5 * 32767


@pytest.mark.parametrize(
    ("input_rate", "output_rate"),
    list(itertools.product(sorted(SUPPORTED_RATES), repeat=2)),
)
def test_20ms_frames_map_to_exact_20ms_output(input_rate: int, output_rate: int) -> None:
    resampler = Resampler(input_rate, output_rate, channels=2)
    frame = AudioFrame.silence(0.02, input_rate, channels=2)
    for _ in range(5):
        out = resampler.push(frame)
        assert out.shape == (output_rate // 50, 2) and out.dtype == np.int16


@pytest.mark.parametrize(("input_rate", "output_rate"), [*PAIRS, (48000, 22050), (8000, 44100)])
@pytest.mark.parametrize("channels", [1, 2])
def test_output_is_independent_of_chunking(input_rate: int, output_rate: int, channels: int) -> None:
    signal = noise(input_rate, 0.5, channels)
    whole = Resampler(input_rate, output_rate, channels).push(signal)
    resampler = Resampler(input_rate, output_rate, channels)
    parts, pushed = [], 0
    for chunk in chunked(signal, random_sizes(signal.samples_per_channel, seed=input_rate + output_rate)):
        parts.append(resampler.push(chunk))
        pushed += chunk.samples_per_channel
        assert sum(map(len, parts)) == math.ceil(pushed * output_rate / input_rate)
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize(("input_rate", "output_rate"), PAIRS)
def test_no_click_at_chunk_boundaries(input_rate: int, output_rate: int) -> None:
    freq, amplitude = 1000, 0.5 * 32767
    resampler = Resampler(input_rate, output_rate)
    signal = tone(freq, input_rate, 0.5)
    sizes = [input_rate // 50] * 10 + random_sizes(signal.samples_per_channel - input_rate // 5, seed=7)
    out = np.concatenate([resampler.push(chunk) for chunk in chunked(signal, sizes)])[output_rate // 100 :, 0]
    max_slope = amplitude * 2 * np.pi * freq / output_rate
    assert np.abs(np.diff(out.astype(np.int32))).max() <= max_slope * 1.01 + 2


@pytest.mark.parametrize(("input_rate", "output_rate"), PAIRS)
def test_latency_is_the_group_delay(input_rate: int, output_rate: int) -> None:
    impulse: npt.NDArray[np.int16] = np.zeros((input_rate // 10, 1), np.int16)
    impulse[input_rate // 20] = 30000
    out = resample_all(AudioFrame(impulse, input_rate), output_rate)
    expected = (1 / 20 + Resampler(input_rate, output_rate).latency) * output_rate
    assert abs(int(np.argmax(out)) - expected) <= 1


def test_flush_emits_tail_and_resets() -> None:
    signal = noise(24000, 0.1)
    resampler = Resampler(24000, 16000)
    first = resampler.push(signal)
    tail = resampler.flush()
    assert len(first) + len(tail) >= (signal.duration + resampler.latency) * 16000
    assert tail.any()
    assert np.array_equal(resampler.push(signal), first)
    assert len(Resampler(24000, 16000).flush()) == 0


def test_reset_drops_history() -> None:
    resampler = Resampler(16000, 48000, channels=2)
    fresh = Resampler(16000, 48000, channels=2).push(noise(16000, 0.02, 2, seed=3))
    resampler.push(noise(16000, 0.05, 2))
    resampler.reset()
    assert np.array_equal(resampler.push(noise(16000, 0.02, 2, seed=3)), fresh)


def test_same_rate_is_passthrough() -> None:
    resampler = Resampler(16000, 16000)
    frame = noise(16000, 0.02)
    assert np.array_equal(resampler.push(frame), frame.data)
    assert resampler.latency == 0.0
    assert resampler.flush().shape == (0, 1)


def test_resampler_rejects_mismatched_frames() -> None:
    resampler = Resampler(48000, 16000)
    with pytest.raises(ValueError, match="48000 Hz x 1 ch"):
        resampler.push(AudioFrame.silence(0.02, 16000))
    with pytest.raises(ValueError, match="48000 Hz x 1 ch"):
        resampler.push(AudioFrame.silence(0.02, 48000, channels=2))
    with pytest.raises(ValueError, match="supported rates"):
        Resampler(48000, 11025)


# --- Reframer -------------------------------------------------------------------------


def test_reframer_emits_exact_frames_with_continuous_timestamps() -> None:
    reframer = Reframer(16000)
    signal = noise(16000, 0.2)
    frames: list[AudioFrame] = []
    for i, chunk in enumerate(chunked(signal, [7, 333, 1, 0, 1000, 299, 641, 919])):
        frames += reframer.push(chunk.data if i % 2 else chunk)
    assert reframer.samples_per_frame == 320
    assert len(frames) == 3200 // 320
    assert all(f.samples_per_channel == 320 and f.sample_rate == 16000 for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([i * 0.02 for i in range(len(frames))])
    assert np.array_equal(np.concatenate([f.data for f in frames]), signal.data)
    assert reframer.flush() == []


def test_reframer_flush_pads_or_not() -> None:
    reframer = Reframer(24000, channels=2)
    signal = noise(24000, 0.03, channels=2)
    assert len(reframer.push(signal)) == 1
    (padded,) = reframer.flush()
    assert padded.samples_per_channel == 480 and padded.timestamp == pytest.approx(0.02)
    assert np.array_equal(padded.data[:240], signal.data[480:]) and not padded.data[240:].any()
    reframer.push(signal.data[:100])
    (partial,) = reframer.flush(pad=False)
    assert partial.samples_per_channel == 100 and partial.timestamp == pytest.approx(0.04)


def test_reframer_clear_keeps_position() -> None:
    reframer = Reframer(16000)
    assert len(reframer.push(noise(16000, 0.03))) == 1
    reframer.clear()
    fresh = noise(16000, 0.02, seed=5)
    (frame,) = reframer.push(fresh)
    assert np.array_equal(frame.data, fresh.data) and frame.timestamp == pytest.approx(0.02)


def test_reframer_validation() -> None:
    reframer = Reframer(16000)
    with pytest.raises(ValueError, match="16000 Hz x 1 ch"):
        reframer.push(AudioFrame.silence(0.02, 24000))
    with pytest.raises(ValueError, match="reshape"):
        reframer.push(np.zeros(320, np.int16))
    with pytest.raises(ValueError, match="frame_ms"):
        Reframer(22050, frame_ms=1)
    assert Reframer(44100).samples_per_frame == 882


# --- AudioConverter -------------------------------------------------------------------


def test_converter_stereo_48k_to_mono_24k() -> None:
    converter = AudioConverter(24000)
    signal = tone(1000, 48000, 1.5, channels=2)
    frames: list[AudioFrame] = []
    for chunk in chunked(signal, [960] * 75):
        out = converter.push(chunk)
        assert len(out) == 1
        frames += out
    frames += converter.flush()
    assert all(f.data.shape == (480, 1) and f.sample_rate == 24000 for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([i * 0.02 for i in range(len(frames))])
    spectrum = amplitude_spectrum(np.concatenate([f.data for f in frames]), 24000)
    assert int(np.argmax(spectrum)) == 1000
    assert abs(db(spectrum[1000] / (0.5 * 32767))) < 0.5


def test_converter_passes_whole_frames_through_as_views_and_keeps_counting_after_a_partial_one() -> None:
    converter = AudioConverter(16000)
    whole = noise(16000, 0.02)
    first = converter.push(whole)
    assert len(first) == 1 and first[0].data is whole.data and first[0].timestamp == 0.0
    assert converter.push(AudioFrame(whole.data[:100], 16000)) == []  # a partial frame waits for the rest
    joined = converter.push(whole)  # now re-framed (the partial one first), not passed through
    assert len(joined) == 1 and np.array_equal(joined[0].data[:100], whole.data[:100])
    assert joined[0].timestamp == pytest.approx(0.02)
    rest = converter.flush()
    assert rest[0].timestamp == pytest.approx(0.04)
    after = converter.push(whole)
    assert after[0].data is whole.data and after[0].timestamp == pytest.approx(0.06)


def test_frame_accepts_an_ndarray_subclass() -> None:
    class Tagged(np.ndarray):
        pass

    frame = AudioFrame(np.zeros((160, 1), np.int16).view(Tagged), 8000)
    assert frame.samples_per_channel == 160 and frame.duration == 0.02


def test_converter_mono_to_stereo_and_rate_changes() -> None:
    converter = AudioConverter(48000, channels=2, frame_ms=10)
    frames = converter.push(noise(16000, 0.1)) + converter.push(noise(44100, 0.1, channels=2)) + converter.flush()
    assert all(f.data.shape == (480, 2) for f in frames)
    assert np.array_equal(frames[0].data[:, 0], frames[0].data[:, 1])
    assert len(frames) * 0.01 >= 0.2


def test_converter_clear_drops_pending_audio() -> None:
    converter = AudioConverter(16000)
    converter.push(noise(48000, 0.03))
    converter.clear()
    assert converter.flush() == []


@pytest.mark.parametrize("rate", [11025, 12000, 96000, 192000])
def test_converter_takes_raw_samples_at_any_rate_and_channel_count(rate: int) -> None:
    """What a decoded file gives: float samples, 6 channels, a rate no AudioFrame holds."""
    t = np.arange(round(rate * 1.5)) / rate
    surround = np.repeat((0.5 * np.sin(2 * np.pi * 1000 * t))[:, np.newaxis], 6, axis=1).astype(np.float32)
    converter = AudioConverter(24000)
    frames: list[AudioFrame] = []
    block = rate // 50
    for start in range(0, len(surround), block):
        frames += converter.push_samples(surround[start : start + block], rate)
    frames += converter.flush()
    assert all(f.data.shape == (480, 1) and f.sample_rate == 24000 for f in frames)
    spectrum = amplitude_spectrum(np.concatenate([f.data for f in frames]), 24000)
    assert int(np.argmax(spectrum)) == 1000
    assert abs(db(spectrum[1000] / (0.5 * 32768))) < 0.5


def test_converter_raw_samples_int16_exact_and_floats_clipped() -> None:
    pcm = np.array([[-32768], [-1], [0], [1], [32767]] * 96, np.int16)
    same = AudioConverter(16000, frame_ms=30)
    assert np.array_equal(np.concatenate([f.data for f in same.push_samples(pcm, 16000)]), pcm)
    # float input is the inverse of AudioFrame.to_float: int16 read back as float comes back exactly
    again = AudioConverter(16000, frame_ms=30).push_samples(AudioFrame(pcm, 16000).to_float(), 16000)
    assert np.array_equal(np.concatenate([f.data for f in again]), pcm)
    loud = np.array([[2.0], [-2.0], [np.nan], [np.inf]] * 120, np.float32)
    out = np.concatenate([f.data for f in AudioConverter(16000, frame_ms=30).push_samples(loud, 16000)])
    assert out[:4, 0].tolist() == [32767, -32768, 0, 32767]  # clipped, never wrapped


def test_raw_samples_outside_the_input_range_are_refused() -> None:
    with pytest.raises(ValueError, match="1000 to 768000 Hz"):
        AudioConverter(24000).push_samples(np.zeros((10, 1), np.int16), 500)
    with pytest.raises(ValueError, match="shape"):
        AudioConverter(24000).push_samples(np.zeros(10, np.int16), 16000)
    with pytest.raises(ValueError, match="int16 or float"):
        AudioConverter(24000).push_samples(np.zeros((10, 1), np.int32), 16000)
