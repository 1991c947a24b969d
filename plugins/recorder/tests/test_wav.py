"""The optional stereo WAV: the user left, the agent right, on the conversation's timeline."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from agentsession import AudioFrame
from agentsession.testing import tone
from agentsession_recorder._wav import ConversationWav

REPO = Path(__file__).resolve().parents[3]


def read(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())


def test_sides_land_on_their_channels_at_their_times(tmp_path: Path) -> None:
    wav = ConversationWav(tmp_path / "c.wav", margin=0.2)
    silence = AudioFrame.silence(0.02, 16000)
    for i in range(100):  # 2 s of user audio at 16 kHz: a tone from 0.5 s to 1.0 s
        frame = AudioFrame(tone(0.02, 16000, 300).data, 16000) if 25 <= i < 50 else silence
        wav.add("user", frame, i * 0.02)
        if i == 60:  # the agent answers at 1.2 s for 0.4 s
            wav.add("agent", tone(0.4, 24000, 500), 1.2)
    wav.close()
    rate, data = read(tmp_path / "c.wav")
    assert rate == 24000 and data.shape[1] == 2
    user = np.flatnonzero(np.abs(data[:, 0].astype(int)) > 1000) / rate
    agent = np.flatnonzero(np.abs(data[:, 1].astype(int)) > 1000) / rate
    assert abs(user[0] - 0.5) < 0.01 and abs(user[-1] - 1.0) < 0.01
    assert abs(agent[0] - 1.2) < 0.01 and abs(agent[-1] - 1.6) < 0.01
    assert wav.late_samples == 0


def test_agent_audio_later_than_the_margin_is_dropped_and_counted(tmp_path: Path) -> None:
    wav = ConversationWav(tmp_path / "c.wav", margin=0.1)
    for i in range(50):
        wav.add("user", AudioFrame.silence(0.02, 24000), i * 0.02)
    wav.add("agent", tone(0.2, 24000), 0.5)  # 0.5 s, but the file is final up to 0.9 s
    wav.close()
    assert wav.late_samples == int(0.2 * 24000)


def test_parrot_session_recorded_as_stereo(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTSESSION_RECORD": "1", "AGENTSESSION_RECORDER_DIR": str(tmp_path),
           "AGENTSESSION_RECORDER_WAV": "1"}
    out = tmp_path / "agent-side.wav"
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "parrot.py"), "file", "--input", str(REPO / "examples" / "hello.wav"),
         "--output", str(out), "--speed", "max"],
        env=env, check=True, capture_output=True, timeout=120,
    )
    (recording,) = tmp_path.glob("*-ParrotAgent-*.wav")
    rate, stereo = read(recording)
    _, agent_file = read(out)
    n = min(len(stereo), len(agent_file))
    # the right channel is exactly what the file transport played, on the same timeline
    assert np.array_equal(stereo[:n, 1], agent_file[:n, 0])
    user = np.flatnonzero(np.abs(stereo[:, 0].astype(int)) > 1000) / rate
    assert 0.4 < user[0] < 0.7  # hello.wav starts speaking after 0.5 s of silence
    assert (tmp_path / recording.with_suffix(".jsonl").name).exists()


KILLED_WRITER = """
import os, signal, sys
from agentsession import AudioFrame
from agentsession.testing import tone
from agentsession_recorder._wav import ConversationWav

wav = ConversationWav(sys.argv[1], margin=0.2)
for i in range(int(sys.argv[2])):
    wav.add("user", AudioFrame(tone(0.02, 24000, 300).data, 24000), i * 0.02)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_at_any_point_leaves_a_wav_that_opens(tmp_path: Path) -> None:
    """SIGKILL right after the file is created, and after 1 s of audio: the file opens with what was written."""
    for frames, expected in ((0, 0), (50, int(0.8 * 24000))):  # 50 frames = 1 s; all but the 0.2 s margin is final
        path = tmp_path / f"killed-{frames}.wav"
        done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), str(frames)], timeout=60)
        assert done.returncode == -9
        rate, data = read(path)
        assert rate == 24000 and data.shape == (expected, 2)
        if expected:
            assert np.abs(data[:, 0].astype(int)).max() > 1000 and not data[:, 1].any()


def test_the_header_counts_exactly_the_samples_on_disk(tmp_path: Path) -> None:
    wav = ConversationWav(tmp_path / "c.wav", margin=0.0)
    for i in range(10):
        wav.add("user", tone(0.02, 24000), i * 0.02)
        with wave.open(str(tmp_path / "c.wav"), "rb") as w:  # read while still being written
            assert w.getnframes() == (i + 1) * 480
            assert (tmp_path / "c.wav").stat().st_size == 44 + (i + 1) * 480 * 4
    wav.close()
    rate, data = read(tmp_path / "c.wav")
    assert data.shape == (4800, 2)
