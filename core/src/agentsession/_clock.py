"""A virtual-clock event loop: time jumps to the next timer when nothing else can happen.

A 30-second conversation with timeouts runs in milliseconds, in the same order every time. Work handed
to an executor (``run_in_executor``, ``asyncio.to_thread``) and the executor's shutdown are real: while
any is pending, the loop waits for it for real and the clock moves by the real time waited.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockEventLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None or loop._real_work:
            started = time.monotonic()
            events: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
            if loop is not None:
                loop._now += time.monotonic() - started
            return events
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            return super().select(None)
        loop._now += timeout
        return []


class VirtualClockEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual (starts at 0)."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        self._now = 0.0
        self._real_work = 0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._now

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:  # type: ignore[override]
        future = super().run_in_executor(executor, func, *args)
        self._real_work += 1
        future.add_done_callback(self._real_work_done)
        return future

    def _real_work_done(self, _: object) -> None:
        self._real_work -= 1

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        """Joining the executor's threads is real work too (``asyncio.run`` ends with it; Python 3.12+ bounds it
        with a timeout that a jump of the clock would expire at once)."""
        self._real_work += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._real_work -= 1


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh virtual-clock loop."""
    with asyncio.Runner(loop_factory=VirtualClockEventLoop) as runner:
        return runner.run(coro)


def virtual_clock(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Decorate an ``async def`` test so it runs on a virtual-clock loop (it becomes a plain function)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run_virtual(fn(*args, **kwargs))

    return wrapper
