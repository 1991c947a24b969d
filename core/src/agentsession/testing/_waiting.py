"""Waiting in tests for what a model or a session does, without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .._models import RealtimeModel
from .._pipeline_events import PipelineEvent
from .._session import AgentSession
from .._states import AgentState, UserState


async def read_events(
    model: RealtimeModel, until: Callable[[PipelineEvent], bool], *, timeout: float = 5.0
) -> list[PipelineEvent]:
    """Read ``model``'s pipeline events up to and including the first one ``until`` accepts (all of them, if
    the channel ends first). Raises ``TimeoutError`` after ``timeout`` seconds."""
    events: list[PipelineEvent] = []

    async def read() -> None:
        async for event in model.channel:
            events.append(event)
            if until(event):
                return

    await asyncio.wait_for(read(), timeout)
    return events


async def wait_for_state(session: AgentSession, state: AgentState | UserState, *, timeout: float = 5.0) -> None:
    """Return once the session's agent state (or user state, for a ``UserState``) is ``state``; at once if it
    already is. Raises ``TimeoutError`` after ``timeout`` seconds."""
    name = "agent_state_changed" if isinstance(state, AgentState) else "user_state_changed"
    current = session.agent_state if isinstance(state, AgentState) else session.user_state
    if current is state:
        return
    reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def check(data: dict[str, Any]) -> None:
        if data["state"] is state and not reached.done():
            reached.set_result(None)

    session.on(name, check)
    try:
        await asyncio.wait_for(reached, timeout)
    finally:
        session.off(name, check)
