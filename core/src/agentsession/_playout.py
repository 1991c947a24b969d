"""The playout buffer between the session and an output device: bounded, thread-safe, exact about what was played."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

import numpy as np

from ._audio import AudioFrame


class PlayoutBuffer:
    """Frames go in from the event loop (``put``); a device or a paced track pulls fixed blocks (``pull``).

    ``pull`` may be called from any thread (a PortAudio callback, say): it never blocks on the event
    loop, pads an underrun with silence and counts only real samples as played, so ``played`` is
    exactly the audio the user could hear. ``put`` waits while more than ``max_buffered`` seconds are
    queued, which bounds what an interruption has to throw away; a ``put`` that waited is woken once half of
    that has been pulled, not after every block (a pull from a device thread wakes the event loop: once per
    few blocks while an answer arrives faster than it is played, not once per block).
    """

    def __init__(self, sample_rate: int, channels: int = 1, *, max_buffered: float = 0.1) -> None:
        if max_buffered <= 0:
            raise ValueError("max_buffered must be > 0")
        self.sample_rate = sample_rate
        self.channels = channels
        self._max_samples = int(max_buffered * sample_rate)
        self._low_water = self._max_samples // 2  # a pull wakes the waiters once at most this much is left
        self._chunks: deque[np.ndarray] = deque()
        self._buffered = 0
        self._played = 0
        self._underruns = 0
        self._draining = True
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def played(self) -> float:
        """Seconds of real (not padded) audio pulled so far; never goes back, not even on ``clear``."""
        return self._played / self.sample_rate

    @property
    def buffered(self) -> float:
        """Seconds queued and not yet pulled."""
        return self._buffered / self.sample_rate

    @property
    def underruns(self) -> int:
        """Pulls that ran dry while more audio was expected (padded with silence)."""
        return self._underruns

    async def put(self, frame: AudioFrame) -> None:
        """Queue ``frame``; wait while the buffer is full."""
        if frame.sample_rate != self.sample_rate or frame.channels != self.channels:
            raise ValueError(
                f"playout buffer takes {self.sample_rate} Hz x{self.channels}, "
                f"got {frame.sample_rate} Hz x{frame.channels}"
            )
        while self._buffered >= self._max_samples:
            await self._wait()
        self._append(frame)

    def put_nowait(self, frame: AudioFrame) -> bool:
        """Queue ``frame`` if there is room now (as ``put`` would without waiting); return whether it was."""
        if self._buffered >= self._max_samples:
            return False
        if frame.sample_rate != self.sample_rate or frame.channels != self.channels:
            raise ValueError(
                f"playout buffer takes {self.sample_rate} Hz x{self.channels}, "
                f"got {frame.sample_rate} Hz x{frame.channels}"
            )
        self._append(frame)
        return True

    def _append(self, frame: AudioFrame) -> None:
        with self._lock:
            self._chunks.append(frame.data)
            self._buffered += frame.samples_per_channel
            self._draining = False
        self._wake_all()

    def pull(self, n: int) -> tuple[np.ndarray, int]:
        """Take ``n`` samples per channel (padded with zeros); return them and how many were real."""
        out = np.zeros((n, self.channels), dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                head = self._chunks[0]
                take = min(n - filled, head.shape[0])
                out[filled : filled + take] = head[:take]
                filled += take
                if take == head.shape[0]:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
            self._buffered -= filled
            self._played += filled
            if filled < n and not self._draining and (filled or self._played):
                self._underruns += 1
        if filled and self._waiters and self._buffered <= self._low_water:
            self._notify()
        return out, filled

    def clear(self) -> None:
        """Drop everything not yet pulled."""
        with self._lock:
            self._chunks.clear()
            self._buffered = 0
            self._draining = True
        self._wake_all()

    async def wait_drained(self) -> None:
        """Return once everything put so far has been pulled (or cleared)."""
        with self._lock:
            self._draining = True
        while self._buffered > 0:
            await self._wait()

    async def wait_data(self) -> None:
        """Return once something is queued."""
        while self._buffered == 0:
            await self._wait()

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._loop_thread = loop, threading.get_ident()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    def _notify(self) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._wake_all()
        else:
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
