"""examples/background_music.py through the CLI's file mode: the output has the music where the agent is quiet
and both signals where they overlap."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_background_music_example_mixes_under_the_voice(tmp_path: Path) -> None:
    out = tmp_path / "music.wav"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "background_music.py"), "file", "--input",
                           str(ROOT / "examples" / "hello.wav"), "--output", str(out), "--speed", "max"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tool control_background_music -> Music started." in done.stdout.splitlines()
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    blocks = np.abs(audio[: len(audio) // (rate // 10) * (rate // 10)].reshape(-1, rate // 10)).mean(axis=1)
    quiet = blocks[(blocks > 50) & (blocks < 1000)]  # the music alone, where the agent is silent
    assert len(quiet) >= 10, blocks  # at least a second of it
    assert np.count_nonzero(blocks < 20) <= 2, "silence where the music should play"
    assert np.count_nonzero(blocks > 2500) >= 5  # the agent's voice (with the music under it)
