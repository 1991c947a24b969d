"""The wake-up timer: after ``wake_up`` seconds with neither side speaking, ask a handler to speak."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("agentsession.session")

#: set while a wake-up handler runs: what it asks the agent to say does not re-arm the timer
IN_WAKE_UP: contextvars.ContextVar[bool] = contextvars.ContextVar("agentsession_in_wake_up", default=False)


class WakeUpTimer:
    """Armed while the conversation is idle, disarmed by activity; fires once per idle stretch."""

    def __init__(self, seconds: float, fire: Callable[[], Awaitable[None]],
                 spawn: Callable[[Any, str], asyncio.Task[Any]]) -> None:
        self.seconds = seconds
        self._fire = fire
        self._spawn = spawn
        self._timer: asyncio.TimerHandle | None = None
        self._woke = False  # fired in this idle stretch: wait for activity before arming again

    def activity(self) -> None:
        """The user or the agent did something: the next idle stretch may wake the user up again."""
        if not IN_WAKE_UP.get():
            self._woke = False

    def update(self, idle: bool) -> None:
        if idle and not self._woke and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expired)
        elif not idle:
            self.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        self._woke = True
        self._spawn(self._run(), "wake-up")

    async def _run(self) -> None:
        token = IN_WAKE_UP.set(True)
        try:
            await self._fire()
        finally:
            IN_WAKE_UP.reset(token)


async def call_handler(handler: Callable[[], Awaitable[None] | None]) -> None:
    """Call ``session.on_wake_up`` (sync or async)."""
    result: Any = handler()
    if inspect.isawaitable(result):
        await result
