"""Wake-up timer semantics of DESIGN.md section 6, on the virtual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentsession import AgentSession, RealTimePipeline, hookimpl
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, virtual_clock
from core_helpers import QuietAgent, settle, started
from test_session_states import ToolAgent


def wake_times(rec: Any) -> list[float]:
    return [t for t, n, _ in rec.events if n == "wake_up"]


@virtual_clock
async def test_fires_once_per_idle_period_and_rearms_after_activity() -> None:
    model = FakeRealtimeModel([FakeResponse("Sure", audio=1.0, delay=0.2)])
    said: list[float] = []
    session: AgentSession | None = None

    async def on_wake_up() -> None:
        assert session is not None
        said.append(asyncio.get_running_loop().time())
        await session.say("Are you still there?")

    session, _, rec = await started(QuietAgent(), model, wake_up=10, on_wake_up=on_wake_up)
    await settle(60)
    assert wake_times(rec) == [pytest.approx(10.0)]  # once, not again after its own "are you there?"
    model.user_starts_speaking()
    await settle(1)
    model.user_stops_speaking("yes")  # answered: 0.2 s to first audio, 1 s of audio
    await settle(30)
    assert wake_times(rec) == [pytest.approx(10.0), pytest.approx(61 + 1.2 + 10, abs=0.021)]
    assert len(said) == 2
    await session.close()


@virtual_clock
async def test_counted_from_the_end_of_playout_not_of_generation() -> None:
    # the fake model generates 12 s of audio 4x faster than real time: generation ends at ~3.2 s,
    # playout at 12.2 s
    model = FakeRealtimeModel([FakeResponse("long", audio=12.0, delay=0.2)])
    session, _, rec = await started(QuietAgent(), model, wake_up=5, on_wake_up=lambda: None)
    await session.reply()
    await settle(30)
    assert wake_times(rec) == [pytest.approx(12.2 + 5, abs=0.021)]
    await session.close()


@virtual_clock
async def test_never_while_the_user_speaks() -> None:
    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model, wake_up=5, on_wake_up=lambda: None)
    await settle(2)
    model.user_starts_speaking()
    await settle(20)
    assert wake_times(rec) == []
    model.user_stops_speaking("a very long sentence", respond=False)
    await settle(10)
    # the turn was not answered: the agent stays THINKING, which is not idle either
    assert wake_times(rec) == []
    await session.close()


@virtual_clock
async def test_never_while_a_tool_runs() -> None:
    model = FakeRealtimeModel([
        FakeResponse(audio=0.2, tool_calls=[FakeToolCall("lookup", {"city": "Rome"})], then=FakeResponse("Done", audio=0.5))
    ])
    agent = ToolAgent()
    session, _, rec = await started(agent, model, wake_up=5, on_wake_up=lambda: None)
    await session.send_text("Weather in Rome?")
    await settle(25)  # well past wake_up=5, within the tool's 30 s timeout
    assert wake_times(rec) == []
    agent.release.set()
    await settle(1)
    done_at = asyncio.get_running_loop().time()
    await settle(10)
    assert len(wake_times(rec)) == 1 and wake_times(rec)[0] < done_at + 5
    await session.close()


async def test_wake_up_without_a_handler_fails_at_start() -> None:
    session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()), wake_up=10)
    with pytest.raises(ValueError, match="on_wake_up"):
        await session.start()
    await session.close()


def test_wake_up_must_be_positive() -> None:
    with pytest.raises(ValueError, match="wake_up"):
        AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()), wake_up=0)


class WakeUpPlugin:
    name = "wake-up-test-plugin"

    def __init__(self) -> None:
        self.calls: list[float] = []

    @hookimpl
    def agentsession_wake_up(self, session: AgentSession, idle_s: float) -> Any:
        self.calls.append(idle_s)

        async def speak() -> bool:
            await session.say("Hello?")
            return True

        return speak()


@virtual_clock
async def test_a_plugin_handles_wake_up_when_the_session_has_no_callback() -> None:
    plugin = WakeUpPlugin()
    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model, wake_up=3, plugins=[plugin])
    await settle(10)
    assert plugin.calls == [3.0]
    assert model.said == ["Hello?"]
    await session.close()


@virtual_clock
async def test_a_raising_handler_is_isolated() -> None:
    def boom() -> None:
        raise RuntimeError("handler bug")

    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model, wake_up=2, on_wake_up=boom)
    await settle(5)
    assert any("handler bug" in e["message"] for e in rec.of("error"))
    await session.say("still alive")
    await settle(2)
    assert model.said == ["still alive"]
    await session.close()
