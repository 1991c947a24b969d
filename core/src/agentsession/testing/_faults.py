"""Faults and chatter for fake servers (``agentsession fakes`` uses them too, so no pytest here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def slow_loris(transport: asyncio.WriteTransport, interval: float) -> asyncio.Task[None]:
    """Make ``transport`` (a fake server's connection) write what it is given one byte per ``interval``
    seconds, so no message ever completes; the task returned does the writing (cancel it to stop)."""
    write = transport.write
    pending = bytearray()
    wake = asyncio.Event()

    def held(data: bytes | bytearray | memoryview) -> None:
        pending.extend(data)
        wake.set()

    async def dribble() -> None:
        while True:
            await wake.wait()
            while pending:
                write(bytes(pending[:1]))
                del pending[:1]
                await asyncio.sleep(interval)
            wake.clear()

    transport.write = held  # type: ignore[method-assign]
    return asyncio.get_running_loop().create_task(dribble())


def every(seconds: float, send: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Call ``send`` every ``seconds`` (a fake server's chatter) until the task returned is cancelled."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            await send()

    return asyncio.get_running_loop().create_task(loop())
