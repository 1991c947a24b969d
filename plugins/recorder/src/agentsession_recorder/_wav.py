"""The conversation as a stereo WAV: the user on the left, the agent on the right, on one timeline."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np

from agentsession import AudioConverter, AudioFrame

RATE = 24000
CHANNELS = 2
SAMPLE_WIDTH = 2
_HEADER = 44  # bytes of a canonical PCM WAV header: RIFF, fmt and data chunk headers


def _header(data_bytes: int) -> bytes:
    """A PCM WAV header for ``data_bytes`` bytes of samples."""
    block = CHANNELS * SAMPLE_WIDTH
    return b"".join((
        b"RIFF", struct.pack("<I", 36 + data_bytes), b"WAVE",
        b"fmt ", struct.pack("<IHHIIHH", 16, 1, CHANNELS, RATE, RATE * block, block, 8 * SAMPLE_WIDTH),
        b"data", struct.pack("<I", data_bytes),
    ))


class _WavFile:
    """A PCM WAV on disk that is a valid file at every moment, even if the process is killed.

    The header is written when the file is opened; each append goes straight to the OS (no user-space
    buffer), then the two size fields are rewritten in place. A kill between the two leaves samples the
    header does not count yet, which every reader ignores: the file always opens.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.data_bytes = 0
        try:
            self._write_at(0, _header(0))
        except BaseException:
            self._file.close()
            raise

    def append(self, data: bytes) -> None:
        self._write_at(_HEADER + self.data_bytes, data)
        self.data_bytes += len(data)
        self._write_at(4, struct.pack("<I", 36 + self.data_bytes))
        self._write_at(40, struct.pack("<I", self.data_bytes))

    def close(self) -> None:
        self._file.close()

    def _write_at(self, offset: int, data: bytes) -> None:
        self._file.seek(offset)
        view = memoryview(data)
        while view:
            written = self._file.write(view) or 0
            view = view[written:]


class ConversationWav:
    """Places each side's frames at the time they happened and writes the file as it goes.

    The user's audio is continuous, so it is the clock: everything more than ``margin`` seconds behind
    the user's latest audio is final and goes to the file (agent audio arriving later than that is
    dropped, and counted). ``close`` writes the rest. Thread-safe. The file is a valid WAV from the
    moment it is created, and stays one as audio is appended: a process killed at any point (even in
    its first second) leaves a file that opens, holding the audio written until then.
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
        self._wav: _WavFile | None = _WavFile(self.path)

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
        self._wav.append(stereo.astype("<i2").tobytes())
        self._base = until
