"""Real speech for the tests and the benchmark: espeak-ng renders it, core's converter brings it to 16 kHz."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt

from agentsession.plugin import AudioConverter, AudioFrame

RATE = 16000


def available() -> bool:
    return shutil.which("espeak-ng") is not None


def render(text: str, voice: str = "en-us", *, ssml: bool = False) -> npt.NDArray[np.int16]:
    """``text`` spoken by espeak-ng's ``voice`` as mono 16 kHz int16, leading and trailing silence cut.
    ``ssml``: the text is SSML (``<break time="600ms"/>`` makes a pause inside a sentence)."""
    args = ["espeak-ng", "-v", voice, "--stdout", *(["-m"] if ssml else []), text]
    wav = subprocess.run(args, check=True, capture_output=True, timeout=60).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16).reshape(-1, 1)
    converter = AudioConverter(RATE)
    frames = converter.push_samples(samples, rate) + converter.flush()
    audio = np.concatenate([f.data[:, 0] for f in frames])
    voiced = np.flatnonzero(np.abs(audio) > 300)
    return audio[voiced[0]:voiced[-1] + 1]


def frame(samples: npt.NDArray[np.int16], rate: int = RATE) -> AudioFrame:
    return AudioFrame(samples.reshape(-1, 1), rate)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(int(seconds * RATE), np.int16)
