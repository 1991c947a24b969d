"""Transports move audio between a user and a session: a room, the console, a browser, a file."""

from __future__ import annotations

import argparse
import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np

from ._audio import AudioFrame
from ._playout import PlayoutBuffer
from ._ports import JobView, SessionView


class Transport(ABC):
    """One user's audio in and the agent's audio out.

    Contract (checked by ``agentsession.testing.TransportContract``): ``play`` applies back-pressure and
    returns once the frame is buffered; ``clear`` drops what was not played yet; ``played`` counts the
    seconds of ``play``-ed audio actually output, exactly, and never goes back; ``wait_for_playout``
    returns when all of it has been output or cleared; ``audio_input`` ends when the user's side ends;
    ``close`` is idempotent and ends ``audio_input``.
    """

    #: the user hung up (closed the page, left the room): nobody hears what is played any more, so a goodbye
    #: in ``on_exit`` is skipped and the job ends at once
    user_gone: bool = False
    #: sample rate and channel count ``play`` takes (the session converts to them)
    sample_rate: int = 24000
    channels: int = 1
    #: the longest frame ``play`` takes, in ms (a multiple of 20): audio that comes in longer chunks (a provider's
    #: 100 ms deltas) is played in frames of up to this, each a whole number of 20 ms, one ``play`` each (fewer
    #: wake-ups, as a sink that gets the provider's chunks has); set 20 for a device that takes 20 ms frames only
    max_frame_ms: int = 100
    #: why the transport broke (``fail``), or None: the worker then ends the job and exits non-zero
    failure: str | None = None

    def __init__(self) -> None:
        self._ended: asyncio.Future[str] | None = None

    async def start(self) -> None:
        """Connect (join the room, open the device, ...)."""

    @abstractmethod
    def audio_input(self) -> AsyncIterator[AudioFrame]:
        """The user's audio, any rate or chunk size; ends when the user's side ends."""

    def text_input(self) -> AsyncIterator[str] | None:
        """Text the user types, for transports that offer it."""
        return None

    @abstractmethod
    async def play(self, frame: AudioFrame) -> None:
        """Queue ``frame`` (at ``sample_rate``/``channels``) for output."""

    def play_nowait(self, frame: AudioFrame) -> bool:
        """Queue ``frame`` as ``play`` would if that needs no waiting, and return True; else do nothing and
        return False (the session then awaits ``play``). Optional: a transport whose ``play`` can tell at
        once that it has room implements it, and saves the session a task switch per frame."""
        return False

    @abstractmethod
    def clear(self) -> None:
        """Drop queued output now (an interruption)."""

    @property
    @abstractmethod
    def played(self) -> float:
        """Seconds of ``play``-ed audio output so far."""

    @abstractmethod
    async def wait_for_playout(self) -> None:
        """Return when everything queued has been output or cleared."""

    async def wait_for_participant(self, participant_id: str | None = None) -> str:
        """Wait until a user is there and return their id (default: the user of a one-user transport is)."""
        return participant_id or "user"

    def bind(self, session: SessionView) -> None:
        """Called by ``session.start()``; a transport may subscribe to the session's events here."""

    async def close(self) -> None:
        """Release the device or connection; idempotent."""
        self.end("closed")

    def end(self, reason: str) -> None:
        """Say that this transport's conversation is over (room ended, input done, tab closed)."""
        fut = self._ended_future()
        if not fut.done():
            fut.set_result(reason)

    def fail(self, reason: str) -> None:
        """End the conversation because the transport broke (a device stopped, a file could not be read): like
        ``end``, and the worker reports ``reason`` as an error and exits with a non-zero status."""
        if self.failure is None and not self._ended_future().done():
            self.failure = reason
        self.end(reason)

    async def wait_ended(self) -> str:
        """Wait until the transport ends; return why."""
        return await asyncio.shield(self._ended_future())

    def _ended_future(self) -> asyncio.Future[str]:
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
        return self._ended


class BufferedTransport(Transport):
    """A transport whose output device (a sound card callback, a WebRTC track, a paced clock) pulls the
    agent's audio from ``self.playout``; this class does the session's side of it. After ``close``,
    ``play`` drops frames and ``wait_for_playout`` returns at once."""

    def __init__(self, sample_rate: int = 24000, channels: int = 1, *, max_buffered: float = 0.1) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.channels = channels
        self.playout = PlayoutBuffer(sample_rate, channels, max_buffered=max_buffered)
        self._output_closed = False

    async def play(self, frame: AudioFrame) -> None:
        if not self._output_closed:
            await self.playout.put(frame)

    def play_nowait(self, frame: AudioFrame) -> bool:
        return self._output_closed or self.playout.put_nowait(frame)

    def clear(self) -> None:
        self.playout.clear()

    @property
    def played(self) -> float:
        return self.playout.played

    async def wait_for_playout(self) -> None:
        if not self._output_closed:
            await self.playout.wait_drained()

    async def close(self) -> None:
        self._output_closed = True
        self.playout.clear()
        await super().close()


class PacedTransport(BufferedTransport):
    """A transport whose output is pulled by a clock on the event loop (virtual in tests).

    Subclasses give ``audio_input`` and may override ``on_output`` to see each block as it is played.
    """

    def __init__(self, sample_rate: int = 24000, channels: int = 1, *, block_ms: int = 20) -> None:
        super().__init__(sample_rate, channels)
        self._block = sample_rate * block_ms // 1000
        self._pacer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._pacer is None:
            self._pacer = asyncio.get_running_loop().create_task(self._pace(), name="playout-pacer")

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        """One block went out at loop time ``at``; ``real`` of its samples were audio, the rest padding."""

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)
            self._pacer = None
        await super().close()

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        period = self._block / self.sample_rate
        next_tick = loop.time()
        while True:
            if self.playout.buffered == 0:
                await self.playout.wait_data()
                next_tick = max(next_tick, loop.time())
            samples, real = self.playout.pull(self._block)
            self.on_output(samples, real, next_tick)
            next_tick += period
            await asyncio.sleep(max(0.0, next_tick - loop.time()))


class NullTransport(PacedTransport):
    """No user: no input, output paced and discarded. Used for text-only sessions and tests."""

    def __init__(self, sample_rate: int = 24000) -> None:
        super().__init__(sample_rate)
        self._closed = asyncio.Event()

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        await self._closed.wait()
        return
        yield  # pragma: no cover - makes this an async generator

    async def close(self) -> None:
        self._closed.set()
        await super().close()


TransportFactory = Callable[[JobView], Transport]


class TransportMode:
    """A command-line mode (``console``, ``playground``, ``room``, ``file``) that a plugin provides.

    The simplest mode is a factory ``JobContext -> Transport``; a ``TransportMode`` adds command-line
    options and may run many jobs (one per browser tab, say) by overriding ``run``.
    """

    #: whether the mode's jobs end on their own (``file``: when the inputs end). A Ctrl-C/SIGTERM that cuts such
    #: a run short exits 130/143 (its output is partial), as a shell expects; the long-running modes (``console``,
    #: ``playground``, ``room``) are meant to be stopped that way, and exit 0 on a clean shutdown.
    finite = False
    #: whether ``run`` serves jobs until it is stopped (a server: ``playground``). The first Ctrl-C/SIGTERM ends the
    #: running jobs; once they have ended, the worker stops such a mode too (cancels ``run``, which closes its server
    #: and returns), as it does at once when no job is running.
    serves = False

    def __init__(self, factory: TransportFactory, *, help: str = "") -> None:
        self.factory = factory
        self.help = help
        self.provider = ""  # the plugin that provides this mode, set at discovery
        self.options = argparse.Namespace()  # the parsed command line, set by the worker before ``run``

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """The event loop this mode runs on (``None``: asyncio's default)."""
        return None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this mode's command-line options."""

    def problems(self) -> list[tuple[str, str]]:
        """What this mode needs that this environment lacks, as ``(problem, fix)`` pairs (default: nothing).
        ``agentsession doctor`` shows them and fails for this mode; keep it quick and free of side effects."""
        return []

    def create(self, ctx: JobView) -> Transport:
        """Build the transport for one job."""
        return self.factory(ctx)

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        """Run the jobs of this mode; by default exactly one. ``run_job(transport)`` runs the user's entrypoint
        with a new JobContext (``transport=None`` lets the context build it with ``create`` on ``connect``)."""
        await run_job(None)


def as_mode(value: TransportMode | TransportFactory) -> TransportMode:
    """Accept a plain factory where a ``TransportMode`` is expected."""
    return value if isinstance(value, TransportMode) else TransportMode(value)
