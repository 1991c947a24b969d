"""The conversation as a stereo WAV: the user on the left, the agent on the right, on one timeline."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np

from agentsession import AudioConverter, AudioFrame

RATE = 24000


class ConversationWav:
    """Places each side's frames at the time they happened and writes the file as it goes.

    The user's audio is continuous, so it is the clock: everything more than ``margin`` seconds behind
    the user's latest audio is final and goes to the file (agent audio arriving later than that is
    dropped, and counted). ``close`` writes the rest. Thread-safe.
    """

    def __init__(self, path: str | Path, *, margin: float = 1.0) -> None:
        self.path = Path(path)
        self.margin = int(margin * RATE)
        self.late_samples = 0
        self._lock = threading.Lock()
        self._sides = {"user": np.zeros(0, np.int16), "agent": np.zeros(0, np.int16)}
        self._converters = {"user": AudioConverter(RATE), "agent": AudioConverter(RATE)}
        self._cursor = {"user": 0, "agent": 0}  # where each side's next converted sample goes
        self._base = 0  # samples already in the file
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(RATE)

    def add(self, side: str, frame: AudioFrame, at: float) -> None:
        """``frame`` of ``side`` ("user" or "agent") started ``at`` seconds into the session."""
        with self._lock:
            if self._wav is None:
                return
            start = int(round(at * RATE))
            for out in self._converters[side].push(frame):
                cursor = max(start, self._cursor[side])
                self._place(side, cursor, out.data[:, 0])
                self._cursor[side] = cursor + out.samples_per_channel
                start = self._cursor[side]
            if side == "user":
                self._write_until(self._cursor["user"] - self.margin)

    def close(self) -> None:
        with self._lock:
            if self._wav is None:
                return
            self._write_until(self._base + max(len(s) for s in self._sides.values()))
            self._wav.close()
            self._wav = None

    def _place(self, side: str, at: int, samples: np.ndarray) -> None:
        offset = at - self._base
        if offset < 0:
            self.late_samples += min(len(samples), -offset)
            samples, offset = samples[-offset:], 0
        buffer = self._sides[side]
        end = offset + len(samples)
        if end > len(buffer):
            buffer = np.concatenate([buffer, np.zeros(end - len(buffer), np.int16)])
        buffer[offset:end] = samples
        self._sides[side] = buffer

    def _write_until(self, until: int) -> None:
        count = until - self._base
        if count <= 0 or self._wav is None:
            return
        stereo = np.zeros((count, 2), np.int16)
        for channel, side in enumerate(("user", "agent")):
            part = self._sides[side][:count]
            stereo[: len(part), channel] = part
            self._sides[side] = self._sides[side][count:]
        self._wav.writeframes(stereo.astype("<i2").tobytes())
        self._base = until
