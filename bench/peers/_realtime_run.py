"""What ``realtime_floor.py`` and ``realtime_model_only.py`` share: the harness's fake server and measurement
around N sessions that each script makes its own way, and the harness's playout of their answers. The scripts
import it after putting the harness's folder on ``sys.path``."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from realtime_common import (
    API_KEY,
    FakeServer,
    TurnPlayoutClock,
    WindowCounters,
    add_realtime_args,
    emit,
    measure_realtime,
    parse_args,
    phase_of,
    start_server,
)


class Session(Protocol):
    async def close(self) -> None: ...


class Played:
    """A session's side of the harness: each answer chunk given to :meth:`play` is played as one chunk into the
    harness's ``TurnPlayoutClock``, in order; the tasks in ``tasks`` are cancelled on :meth:`close`, then
    :meth:`disconnect` runs."""

    def __init__(self, counters: WindowCounters) -> None:
        self.counters = counters
        self.tasks: list[asyncio.Task[None]] = []
        self._clock = TurnPlayoutClock(counters)
        self._chunks: asyncio.Queue[float] = asyncio.Queue()

    def play(self, seconds: float) -> None:
        self._chunks.put_nowait(seconds)

    def start_playout(self) -> None:
        self.tasks.append(asyncio.create_task(self._playout()))

    async def _playout(self) -> None:
        while True:
            seconds = await self._chunks.get()
            await self._clock.play(seconds)
            self.counters.frames_out += 1
            self.counters.audio_out_s += seconds

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.disconnect()

    async def disconnect(self) -> None:
        """Close what the session connected."""


#: makes and starts one session: its counters, its caller's phase in the talk cycle, the fake server
Start = Callable[[WindowCounters, float, FakeServer], Awaitable[Session]]


def run(doc: str, framework: str, version: str, start: Start) -> None:
    """Parse the harness's arguments, start the fake server (``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` point
    the SDK at it), measure N sessions made by ``start`` and print the harness's JSON row."""
    args = parse_args(doc, add_realtime_args)
    if not args.verbose:
        logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        server = start_server(args)
        try:
            os.environ["OPENAI_BASE_URL"] = server.http_base
            os.environ["OPENAI_API_KEY"] = API_KEY
            counters = [WindowCounters() for _ in range(args.sessions)]
            sessions: list[Session] = []

            async def start_all() -> None:
                for i, c in enumerate(counters):
                    sessions.append(await start(c, phase_of(args, i), server))

            async def stop_all() -> None:
                await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

            emit(await measure_realtime(framework=framework, version=version, args=args, counters=counters,
                                        server=server, start_all=start_all, stop_all=stop_all, errors=[]))
        finally:
            server.stop()

    asyncio.run(main())
