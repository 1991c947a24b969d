"""Audio made at test time: espeak-ng sentences at known onsets under white noise, and loud non-speech.

Also used by ``bench/vad_cost.py``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agentsession.plugin import AudioFrame, Resampler

ESPEAK_RATE = 22050
TRACK_SECONDS = 30.0
NOISE_BELOW_SPEECH_DB = 10.0
# (onset in seconds, sentence): gaps of at least 1.5 s between utterances, one short reply among them
SENTENCES: tuple[tuple[float, str], ...] = (
    (1.0, "Hello, could you tell me what the weather is like in Paris today?"),
    (7.0, "I would like to book a table for two people tomorrow evening."),
    (12.5, "Yes."),
    (15.0, "Actually, make that three people, and somewhere near the river if possible."),
    (22.0, "Thank you very much, that is all I needed for now."),
)


@dataclass(frozen=True)
class Utterance:
    text: str
    onset: float  # first audible sample, seconds
    offset: float  # last audible sample, seconds


@dataclass(frozen=True)
class Track:
    """Mono int16 samples at ``sample_rate`` and where the speech in them is."""

    samples: npt.NDArray[np.int16]
    sample_rate: int
    utterances: tuple[Utterance, ...]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _espeak(text: str) -> npt.NDArray[np.float64]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True, timeout=30)
        with wave.open(str(path)) as reader:
            assert reader.getframerate() == ESPEAK_RATE and reader.getsampwidth() == 2 and reader.getnchannels() == 1
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
    audible = np.flatnonzero(np.abs(pcm) > 300)  # about -40 dBFS: trims espeak's leading/trailing silence
    return pcm[audible[0] : audible[-1] + 1]


def _resample(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.int16]:
    pcm = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)[:, np.newaxis]
    if rate == ESPEAK_RATE:
        return pcm
    resampler = Resampler(ESPEAK_RATE, rate)
    out = np.concatenate([resampler.push(AudioFrame(pcm, ESPEAK_RATE)), resampler.flush()])
    # drop the filter's delay so that onsets stay where they were placed
    delay = round(resampler.latency * rate)
    result: npt.NDArray[np.int16] = out[delay : delay + round(len(pcm) * rate / ESPEAK_RATE)]
    return result


def make_speech_track(noise_below_db: float = NOISE_BELOW_SPEECH_DB, seed: int = 7) -> Track:
    """The sentences at their onsets in a 30 s track, with white noise ``noise_below_db`` under the speech RMS."""
    track = np.zeros(round(TRACK_SECONDS * ESPEAK_RATE))
    utterances = []
    spoken = []
    for onset, text in SENTENCES:
        speech = _espeak(text)
        start = round(onset * ESPEAK_RATE)
        track[start : start + len(speech)] += speech
        spoken.append(speech)
        utterances.append(Utterance(text, onset, (start + len(speech)) / ESPEAK_RATE))
    speech_rms = float(np.sqrt(np.mean(np.concatenate(spoken) ** 2)))
    noise = np.random.default_rng(seed).standard_normal(len(track))
    track += noise * speech_rms / 10 ** (noise_below_db / 20)
    return Track(_resample(track, ESPEAK_RATE)[:, 0], ESPEAK_RATE, tuple(utterances))


def make_nonspeech_track(seed: int = 11) -> Track:
    """Loud sounds that are not speech: a chord, white-noise bursts, keyboard-like clicks (5 s each)."""
    rate = ESPEAK_RATE
    rng = np.random.default_rng(seed)
    t = np.arange(5 * rate) / rate
    # A major chord with a few harmonics, -9 dBFS peak-ish, 50 ms fades
    chord = sum(np.sin(2 * np.pi * f * h * t) / h for f in (220.0, 277.18, 329.63) for h in (1, 2, 3))
    chord = chord / np.max(np.abs(chord)) * 0.35 * 32767
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    chord *= fade
    # 0.3 s white-noise bursts every 0.8 s at about -12 dBFS RMS
    bursts = np.zeros_like(t)
    for start in np.arange(0.2, 4.8, 0.8):
        i = round(start * rate)
        bursts[i : i + round(0.3 * rate)] = rng.standard_normal(round(0.3 * rate)) * 0.25 * 32767
    # fast typing: about 12 key clicks a second, each a 30 ms noise burst ringing at 3 kHz, decaying in 5 ms
    clicks = np.zeros_like(t)
    click_t = np.arange(round(0.03 * rate)) / rate
    for start in np.cumsum(rng.uniform(0.05, 0.12, 80)):
        i = round(start * rate)
        if i + len(click_t) >= len(t):
            break
        shape = np.exp(-click_t / 0.005) * (rng.standard_normal(len(click_t)) + np.sin(2 * np.pi * 3000 * click_t))
        clicks[i : i + len(click_t)] += shape * 0.3 * 32767
    silence = np.zeros(round(0.5 * rate))
    track = np.concatenate([silence, chord, silence, bursts, silence, clicks, silence])
    return Track(_resample(track, rate)[:, 0], rate, ())


def at_rate(track: Track, rate: int, channels: int = 1) -> list[AudioFrame]:
    """``track`` resampled to ``rate`` (core's resampler) and cut in 20 ms frames of ``channels``."""
    samples = _resample(track.samples.astype(np.float64), rate)
    if channels == 2:
        samples = np.repeat(samples, 2, axis=1)
    size = rate // 50
    return [AudioFrame(samples[i : i + size], rate) for i in range(0, len(samples) - size + 1, size)]
