from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agentsession import Agent, AgentSession, RealTimePipeline, Transport
from agentsession.testing import FakeRealtimeModel, FakeTransport


class QuietAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a test agent.")


class GreetingAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a test agent.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! How can I help you today?")


@dataclass
class Recorder:
    """Records session events with the loop time they were delivered at."""

    events: list[tuple[float, str, Any]] = field(default_factory=list)

    def attach(self, session: AgentSession, *names: str) -> None:
        for name in names or ("agent_state_changed", "user_state_changed"):
            session.on(name, lambda data, name=name: self.events.append(
                (round(asyncio.get_running_loop().time(), 3), name, data)))

    def agent_states(self) -> list[str]:
        """The agent's states after ``start()``'s ``starting`` (``test_states_start_with_starting`` checks it)."""
        states = [d["state"].value for _, n, d in self.events if n == "agent_state_changed"]
        return states[1:] if states[:1] == ["starting"] else states

    def user_states(self) -> list[str]:
        return [d["state"].value for _, n, d in self.events if n == "user_state_changed"]

    def of(self, name: str) -> list[Any]:
        return [d for _, n, d in self.events if n == name]


class AsyncPlayTransport(FakeTransport):
    """``FakeTransport`` with only an async ``play`` (no ``play_nowait``), as a transport written against the bare
    ``Transport`` has: the session starts each ``play()`` itself, and the playout task finishes those that wait
    for room in the 100 ms buffer."""

    play_nowait = Transport.play_nowait


#: the two ways a session hands frames to a transport: ``play_nowait``, or an async ``play`` started at once
TRANSPORTS = [FakeTransport, AsyncPlayTransport]


async def started(
    agent: Agent, model: FakeRealtimeModel, *, on_wake_up: Any = None, transport: FakeTransport | None = None,
    **kwargs: Any
) -> tuple[AgentSession, FakeTransport, Recorder]:
    transport = transport if transport is not None else FakeTransport()
    await transport.start()
    session = AgentSession(agent, RealTimePipeline(model), **kwargs)
    session.on_wake_up = on_wake_up
    rec = Recorder()
    rec.attach(session, "agent_state_changed", "user_state_changed", "metrics_collected", "function_tool_called",
               "wake_up", "error", "user_transcript", "agent_transcript", "closed", "false_interruption",
               "reconnecting", "reconnected")
    await session.start(transport=transport)
    return session, transport, rec


async def settle(seconds: float) -> None:
    """Let ``seconds`` of (virtual) time pass."""
    await asyncio.sleep(seconds)
