"""``FakeTransport``: a paced in-memory transport for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from .._audio import AudioFrame, Reframer
from .._transport import PacedTransport


class FakeTransport(PacedTransport):
    """The user's audio comes from ``feed``/``push_audio``; what the agent played is kept in ``output``.

    Output is paced by the loop clock (virtual in tests), 20 ms per block, like a real device.
    """

    def __init__(self, sample_rate: int = 24000, channels: int = 1) -> None:
        super().__init__(sample_rate, channels)
        self._input: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._blocks: list[np.ndarray] = []
        self.output_times: list[float] = []
        self.closed = False

    # ---- the user side
    def push_audio(self, frame: AudioFrame) -> None:
        """Deliver one frame as the user's audio now."""
        self._input.put_nowait(frame)

    async def feed(self, audio: AudioFrame, *, realtime: bool = True) -> None:
        """Deliver ``audio`` as 20 ms frames, one per 20 ms of loop time when ``realtime``."""
        framer = Reframer(audio.sample_rate, audio.channels)
        for frame in framer.push(audio) + framer.flush():
            self.push_audio(frame)
            if realtime:
                await asyncio.sleep(frame.duration)

    def type_text(self, text: str) -> None:
        """The user types ``text``."""
        self._texts.put_nowait(text)

    def end_input(self) -> None:
        """The user's side is over (``audio_input`` ends)."""
        self._input.put_nowait(None)
        self._texts.put_nowait(None)

    @property
    def output(self) -> np.ndarray:
        """Every real sample played so far, (n, channels) int16."""
        if not self._blocks:
            return np.zeros((0, self.channels), np.int16)
        return np.concatenate(self._blocks)

    # ---- Transport
    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._input.get()) is not None:
            yield frame

    async def _text_iter(self) -> AsyncIterator[str]:
        while (text := await self._texts.get()) is not None:
            yield text

    def text_input(self) -> AsyncIterator[str]:
        return self._text_iter()

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        if real:
            self._blocks.append(samples[:real].copy())
            self.output_times.append(at)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.end_input()
        await super().close()
