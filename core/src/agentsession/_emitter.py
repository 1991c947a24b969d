"""A small event emitter: sync and async callbacks, isolated failures, owned tasks."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("agentsession.events")

Callback = Callable[[Any], Any]


class EventEmitter:
    """``on``/``off``/``once``/``emit`` for named events.

    Callbacks never run inside ``emit``: when a loop is running they are scheduled on it (sync ones with
    ``call_soon``, async ones as tasks this emitter owns), so the code that emits, such as the audio path,
    never waits behind a callback. Without a running loop, sync callbacks run inline. A raising callback
    is logged and isolated.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._once: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, callback: Callback | None = None) -> Any:
        """Register ``callback`` for ``event``; without a callback, return a decorator."""
        if callback is None:
            return lambda cb: self.on(event, cb)
        if not callable(callback):
            raise TypeError(f"callback for {event!r} must be callable, got {type(callback).__name__}")
        self._callbacks.setdefault(event, []).append(callback)
        return callback

    def once(self, event: str, callback: Callback) -> Callback:
        """Register ``callback`` for the next ``event`` only."""
        self.on(event, callback)
        self._once.add((event, id(callback)))
        return callback

    def off(self, event: str, callback: Callback | None = None) -> None:
        """Remove one callback, or every callback of ``event``."""
        if callback is None:
            for cb in self._callbacks.pop(event, []):
                self._once.discard((event, id(cb)))
            return
        callbacks = self._callbacks.get(event, [])
        if callback in callbacks:
            callbacks.remove(callback)
            self._once.discard((event, id(callback)))

    def has_listeners(self, event: str) -> bool:
        """Whether anything listens to ``event`` (lets hot paths skip building event data)."""
        return bool(self._callbacks.get(event))

    def emit(self, event: str, data: Any = None) -> None:
        """Deliver ``data`` to every callback of ``event``."""
        callbacks = list(self._callbacks.get(event, ()))
        for cb in callbacks:
            if (event, id(cb)) in self._once:
                self.off(event, cb)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for cb in callbacks:
            if loop is None:
                self._call(event, cb, data)
            else:
                loop.call_soon(self._call, event, cb, data)

    def _call(self, event: str, cb: Callback, data: Any) -> None:
        try:
            result = cb(data)
        except Exception:
            logger.exception("callback %r for event %r raised", _name(cb), event)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._task_done(event, cb, t))

    def _task_done(self, event: str, cb: Callback, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "async callback %r for event %r raised", _name(cb), event, exc_info=task.exception()
            )

    async def aclose(self) -> None:
        """Cancel the async callbacks still running and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


def _name(cb: Callback) -> str:
    return getattr(cb, "__qualname__", repr(cb))
