"""SileroVAD on real speech (espeak-ng) under white noise 10 dB below it, on loud non-speech, at every input rate."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pytest
from silero_audio import Track, at_rate

from agentsession.plugin import VAD, AudioFrame, EnergyVAD, UtteranceCollector, VADEvent
from agentsession.testing import VADContract
from agentsession_silero import SileroVAD, bundled_model_path, create_vad

# the tolerances: a start from 0.15 s before to 0.35 s after the onset, an end within 1.5 s of the offset
START_EARLY, START_LATE, END_LATE = 0.15, 0.35, 1.5
END_EARLY = 0.25  # an end this far before the offset would cut the last syllable


def run(vad: VAD, frames: list[AudioFrame]) -> list[tuple[VADEvent, float]]:
    """Every event, with the seconds of audio pushed when it was returned."""
    out: list[tuple[VADEvent, float]] = []
    pushed = 0.0
    for frame in frames:
        pushed += frame.duration
        out.extend((event, pushed) for event in vad.push(frame))
    return out


def segments(events: list[tuple[VADEvent, float]]) -> list[tuple[float, float | None]]:
    """(start, end) positions; the events must alternate start, end, start, ..."""
    kinds = [event.kind for event, _ in events]
    assert kinds == ["start", "end"] * (len(kinds) // 2) + ["start"] * (len(kinds) % 2), kinds
    positions = [event.position for event, _ in events]
    ends: list[float | None] = [*positions[1::2], None]
    return list(zip(positions[0::2], ends, strict=False))


def assert_finds_every_utterance(track: Track, events: list[tuple[VADEvent, float]]) -> None:
    found = segments(events)
    expected = [(u.onset, u.offset) for u in track.utterances]
    assert len(found) == len(expected), f"found {found}, expected {expected}"
    for (start, end), (onset, offset) in zip(found, expected, strict=True):
        assert onset - START_EARLY <= start <= onset + START_LATE, (start, onset)
        assert end is not None and offset - END_EARLY <= end <= offset + END_LATE, (end, offset)
    for event, reported_at in events:
        # reported in real time: a start once min_speech_duration is heard, an end within 1.5 s of the offset
        limit = 0.2 if event.kind == "start" else END_LATE
        assert reported_at - event.position <= limit, (event, reported_at)


@pytest.mark.parametrize(
    ("rate", "channels"),
    [(8000, 1), (16000, 1), (24000, 1), (44100, 1), (48000, 1), (48000, 2), (16000, 2)],
)
def test_finds_every_utterance_under_noise_at_any_input_rate(speech_track: Track, rate: int, channels: int) -> None:
    vad = SileroVAD()
    events = run(vad, at_rate(speech_track, rate, channels))
    assert_finds_every_utterance(speech_track, events)
    assert not vad.speaking
    assert vad.position == pytest.approx(speech_track.duration, abs=0.02)


def test_model_rate_8000_also_finds_every_utterance(speech_track: Track) -> None:
    events = run(SileroVAD(sample_rate=8000), at_rate(speech_track, 48000))
    assert_finds_every_utterance(speech_track, events)


def test_input_rate_may_change_mid_stream(speech_track: Track) -> None:
    first, second = at_rate(speech_track, 48000), at_rate(speech_track, 16000)
    half = len(first) // 2  # 15 s: between two utterances
    events = run(SileroVAD(), first[:half] + second[half:])
    assert_finds_every_utterance(speech_track, events)


def test_loud_nonspeech_is_not_speech(nonspeech_track: Track) -> None:
    frames = at_rate(nonspeech_track, 48000)
    # the sounds are loud: core's energy VAD takes the chord (0.5-5.5 s) and the noise bursts (6-10.6 s) for
    # speech; the clicks (11.1-16.1 s) are short enough for its min_speech, but peak near full scale
    energy = segments(run(EnergyVAD(), frames))
    assert len(energy) == 2, energy
    assert energy[0] == (pytest.approx(0.5, abs=0.1), pytest.approx(5.5, abs=0.1))
    assert energy[1] == (pytest.approx(6.2, abs=0.1), pytest.approx(10.5, abs=0.1))
    clicks = nonspeech_track.samples[round(11.1 * nonspeech_track.sample_rate) :]
    assert np.abs(clicks.astype(np.float64)).max() > 0.5 * 32768
    vad = SileroVAD()
    probabilities = []
    for frame in frames:
        assert vad.push(frame) == []
        probabilities.append(vad.probability)
    assert max(probabilities) < vad.activation_threshold
    assert not vad.speaking


def test_energy_vad_takes_the_whole_noisy_track_for_one_utterance(speech_track: Track) -> None:
    """Documents why this plugin exists: with noise 10 dB below the voice, core's EnergyVAD (at its defaults)
    reports speech from the first frame and never an end, so no turn would ever end."""
    events = run(EnergyVAD(), at_rate(speech_track, 48000))
    assert [event.kind for event, _ in events] == ["start"]
    assert events[0][0].position < 0.2


def test_probability_follows_the_speech(speech_track: Track) -> None:
    vad = SileroVAD()
    assert vad.probability == 0.0
    inside, between = [], []
    first, second = speech_track.utterances[:2]
    for frame in at_rate(speech_track, 16000):
        vad.push(frame)
        if first.onset + 0.5 < vad.position < first.offset - 0.3:
            inside.append(vad.probability)
        elif first.offset + 0.8 < vad.position < second.onset - 0.2:
            between.append(vad.probability)
    assert np.median(inside) > 0.8 and max(between) < 0.2, (np.median(inside), max(between))


def test_reset_starts_a_new_stream(speech_track: Track) -> None:
    frames = at_rate(speech_track, 48000)
    fresh = run(SileroVAD(), frames)
    vad = SileroVAD()
    partial = run(vad, frames[: round(2.5 / 0.02)])  # stopped in the middle of the first utterance
    assert [event.kind for event, _ in partial] == ["start"] and vad.speaking
    vad.reset()
    assert (vad.speaking, vad.position, vad.probability) == (False, 0.0, 0.0)
    assert run(vad, frames) == fresh


def test_streams_share_the_model_but_not_their_state(speech_track: Track, nonspeech_track: Track) -> None:
    speech, noise = at_rate(speech_track, 16000), at_rate(nonspeech_track, 16000)
    alone = run(SileroVAD(), speech)
    a, b = SileroVAD(), SileroVAD()
    assert a._model is b._model
    interleaved: list[tuple[VADEvent, float]] = []
    pushed = 0.0
    for i, frame in enumerate(speech):
        pushed += frame.duration
        interleaved.extend((event, pushed) for event in a.push(frame))
        assert b.push(noise[i % len(noise)]) == []
    assert interleaved == alone


def test_options_shape_the_segments(speech_track: Track) -> None:
    frames = at_rate(speech_track, 16000)
    # every pause in the track is shorter than 3 s: one long segment
    merged = segments(run(SileroVAD(min_silence_duration=3.0), frames))
    assert len(merged) == 1 and merged[0][1] is not None
    assert merged[0][0] == pytest.approx(speech_track.utterances[0].onset, abs=START_LATE)
    assert merged[0][1] == pytest.approx(speech_track.utterances[-1].offset, abs=END_LATE)
    # "Yes." lasts 0.4 s: too short for min_speech_duration=0.6
    long_only = segments(run(SileroVAD(min_speech_duration=0.6), frames))
    assert len(long_only) == len(speech_track.utterances) - 1
    assert all(abs(start - 12.5) > 1.0 for start, _ in long_only)
    # the threshold is what decides: just above the loudest window's probability nothing starts
    probe, highest = SileroVAD(), 0.0
    for frame in frames:
        probe.push(frame)
        highest = max(highest, probe.probability)
    assert 0.9 < highest < 1.0
    assert run(SileroVAD(activation_threshold=(highest + 1) / 2), frames) == []
    assert segments(run(SileroVAD(activation_threshold=highest, min_speech_duration=0), frames))


def test_collector_with_prefix_padding_keeps_the_first_syllable(speech_track: Track) -> None:
    vad = SileroVAD(prefix_padding=0.3)
    collector = UtteranceCollector(vad, preroll=vad.prefix_padding)
    utterances = []
    for frame in at_rate(speech_track, 16000):
        for event, audio in collector.push(frame):
            if event.kind == "end":
                assert audio is not None
                utterances.append((event.position, audio.duration))
    assert len(utterances) == len(speech_track.utterances)
    for (end, duration), spoken in zip(utterances, speech_track.utterances, strict=True):
        # the audio runs from at least the onset to past the end the VAD reported
        assert end - duration <= spoken.onset, (end, duration, spoken)
        assert duration >= spoken.offset - spoken.onset


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activation_threshold": 0.0}, "activation_threshold"),
        ({"activation_threshold": 1.0}, "activation_threshold"),
        ({"activation_threshold": float("nan")}, "activation_threshold"),
        ({"activation_threshold": "0.5"}, "activation_threshold"),
        ({"activation_threshold": True}, "activation_threshold"),
        ({"deactivation_threshold": 0.6}, "deactivation_threshold"),
        ({"deactivation_threshold": 0.0}, "deactivation_threshold"),
        ({"min_speech_duration": -0.1}, "min_speech_duration"),
        ({"min_silence_duration": 0.0}, "min_silence_duration"),
        ({"min_silence_duration": float("inf")}, "min_silence_duration"),
        ({"prefix_padding": -1}, "prefix_padding"),
        ({"sample_rate": 48000}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"model_path": "/nonexistent/silero_vad.onnx"}, "model_path"),
    ],
)
def test_bad_options_raise(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SileroVAD(**options)


def test_defaults_and_factory() -> None:
    vad = SileroVAD()
    assert (vad.activation_threshold, vad.deactivation_threshold) == (0.5, pytest.approx(0.35))
    assert (vad.min_speech_duration, vad.min_silence_duration, vad.prefix_padding) == (0.05, 0.55, 0.5)
    made = create_vad(activation_threshold=0.6, min_silence_duration=0.8)
    assert isinstance(made, SileroVAD) and isinstance(made, VAD)
    assert (made.activation_threshold, made.deactivation_threshold, made.min_silence_duration) == (
        0.6,
        pytest.approx(0.45),
        0.8,
    )
    assert "activation_threshold=0.6" in repr(made)
    assert bundled_model_path().name == "silero_vad.onnx"
    # an explicit path to the same file is the same shared model
    assert SileroVAD(model_path=bundled_model_path())._model is vad._model


def test_entry_point_imports() -> None:
    (entry,) = [ep for ep in entry_points(group="agentsession") if ep.name == "silero"]
    module = entry.load()
    assert module.create_vad is create_vad


def test_silero_is_the_best_vad_installed() -> None:
    """Found through its entry point (``agentsession_vads``): a session whose model reports no user speech
    runs it."""
    from agentsession.plugin import installed_vad
    from agentsession_silero import SileroVAD

    assert isinstance(installed_vad(), SileroVAD)


class TestSileroVADContract(VADContract):
    """The VAD contract every VAD runs, on real speech (a neural VAD ignores the contract's default tone)."""

    def create_vad(self) -> SileroVAD:
        return SileroVAD()

    def speech(self, seconds: float) -> AudioFrame:
        from silero_audio import _espeak, _resample

        voice = _resample(_espeak("I would like to book a table for two tonight, please."), self.sample_rate)[:, 0]
        reps = int(np.ceil(seconds * self.sample_rate / voice.shape[0]))
        data = np.tile(voice, reps)[: int(seconds * self.sample_rate)]
        return AudioFrame(data.reshape(-1, 1), self.sample_rate)
