"""Background and thinking audio (VideoSDK's ``BackgroundAudioHandlerConfig``): tracks mixed once, in core, on
the output path, under the agent's voice. A session that plays none has no mixer and pays nothing."""

from __future__ import annotations

import importlib
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ._audio import AudioFrame, Resampler
from ._errors import AgentSessionError

#: how loud the background stays under the agent's voice (a fraction of its own volume)
DUCKED = 0.3


@dataclass
class BackgroundAudioHandlerConfig:
    """A track to play: ``file_path`` (WAV, or any format ``soundfile`` reads when installed; ``None``: a built-in
    sound), ``volume`` (0..1), ``looping``; ``enabled=False`` plays nothing. ``mode`` is VideoSDK's and kept:
    here every track is mixed with the agent's voice."""

    file_path: str | None = None
    enabled: bool = True
    mode: str = "playback"
    volume: float = 1.0
    looping: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.volume <= 1.0:
            raise ValueError(f"volume must be between 0 and 1, got {self.volume!r}")


def load_track(path: str | Path, rate: int) -> npt.NDArray[np.int16]:
    """The file's audio as mono int16 at ``rate``."""
    path = Path(path)
    if not path.is_file():
        raise AgentSessionError(f"background audio file {str(path)!r} does not exist")
    if path.suffix.lower() == ".wav":
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise AgentSessionError(f"{path.name}: only 16-bit WAV is read without soundfile "
                                        "(pip install 'agentsession[files]' for other formats)")
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
            source_rate = w.getframerate()
    else:
        try:
            sf = importlib.import_module("soundfile")
        except ImportError:
            raise AgentSessionError(f"{path.name}: reading it needs soundfile: pip install 'agentsession[files]' "
                                    "(or give a 16-bit WAV)") from None
        data, source_rate = sf.read(str(path), dtype="int16", always_2d=True)
    mono = AudioFrame(np.ascontiguousarray(data, dtype=np.int16), int(source_rate)).to_mono()
    if mono.sample_rate == rate:
        return mono.data[:, 0].copy()
    resampler = Resampler(mono.sample_rate, rate)
    return np.concatenate([resampler.push(mono), resampler.flush()])[:, 0]


def thinking_sound(rate: int) -> npt.NDArray[np.int16]:
    """The built-in thinking sound: soft, irregular key clicks (2 s, loops)."""
    rng = np.random.default_rng(3)
    out = np.zeros(2 * rate, dtype=np.float64)
    for at in np.sort(rng.uniform(0.0, 1.9, 9)):
        n = int(0.012 * rate)
        click = rng.normal(0, 1, n) * np.exp(-np.linspace(0, 6, n))
        start = int(at * rate)
        out[start:start + n] += click * 6000
    return np.clip(out, -32768, 32767).astype(np.int16)


def office_sound(rate: int) -> npt.NDArray[np.int16]:
    """The built-in background sound: a low, steady room noise (4 s, loops)."""
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, 4 * rate)
    smooth = np.convolve(noise, np.ones(32) / 32, mode="same")  # darker than white noise
    fade = np.minimum(1.0, np.minimum(np.arange(noise.size), noise.size - np.arange(noise.size)) / (0.05 * rate))
    return np.clip(smooth * 2500 * fade, -32768, 32767).astype(np.int16)


class Track:
    """One playing track: its samples, where it is, its volume, whether it loops."""

    def __init__(self, samples: npt.NDArray[np.int16], volume: float, looping: bool) -> None:
        self.samples = samples
        self.volume = volume
        self.looping = looping
        self.position = 0

    @property
    def finished(self) -> bool:
        return not self.looping and self.position >= self.samples.size

    def take(self, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` samples (zeros past the end of a track that does not loop), scaled by the volume."""
        out = np.zeros(n, dtype=np.float64)
        filled = 0
        while filled < n and self.samples.size and not self.finished:
            if self.position >= self.samples.size:
                self.position = 0
            chunk = self.samples[self.position:self.position + n - filled]
            out[filled:filled + chunk.size] = chunk
            filled += chunk.size
            self.position += chunk.size
        return out * self.volume


class BackgroundMixer:
    """The background track and the thinking track of one session's output, mixed into the agent's frames (the
    background ducked under its voice) and played alone while the agent is silent."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels
        self.background: Track | None = None
        self.thinking: Track | None = None
        self.override_thinking = True  # False: no thinking sound while the background plays

    @property
    def active(self) -> bool:
        """Whether there is anything to play."""
        self._drop_finished()
        return self.background is not None or self.thinking is not None

    def mix(self, frame: AudioFrame) -> AudioFrame:
        """``frame`` (the agent's voice) with the background under it."""
        self._drop_finished()
        if self.background is None:
            return frame
        under = self.background.take(frame.data.shape[0]) * DUCKED
        mixed = frame.data.astype(np.float64) + under[:, None]
        return AudioFrame(np.clip(mixed, -32768, 32767).astype(np.int16), frame.sample_rate, frame.timestamp)

    def alone(self, seconds: float = 0.02) -> AudioFrame:
        """A frame of the tracks alone (the agent is silent)."""
        n = round(seconds * self.rate)
        total = np.zeros(n, dtype=np.float64)
        if self.background is not None:
            total += self.background.take(n)
        if self.thinking is not None and (self.background is None or self.override_thinking):
            total += self.thinking.take(n)
        data = np.clip(total, -32768, 32767).astype(np.int16)[:, None].repeat(self.channels, axis=1)
        self._drop_finished()
        return AudioFrame(data, self.rate)

    def _drop_finished(self) -> None:
        if self.background is not None and self.background.finished:
            self.background = None
        if self.thinking is not None and self.thinking.finished:
            self.thinking = None
