"""Start, close and failure isolation: no leaked task, no crash from a user's bug."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from agentsession import (
    Agent,
    AgentSession,
    AgentSessionError,
    AgentState,
    JobContext,
    RealTimePipeline,
    hookimpl,
)
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport, virtual_clock
from core_helpers import GreetingAgent, QuietAgent, settle, started


def others() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


@virtual_clock
async def test_close_during_speech_twice_leaves_no_task() -> None:
    before = others()
    model = FakeRealtimeModel([FakeResponse("long", audio=5.0)])
    session, transport, rec = await started(GreetingAgent(), model)
    await settle(0.5)
    assert session.agent_state is AgentState.SPEAKING
    await session.close()
    await session.close()
    await transport.close()
    assert others() - before == set()
    assert rec.agent_states()[-1] == "closing"
    assert [d["reason"] for d in rec.of("closed")] == ["closed"]
    assert model.closed


async def test_close_before_start_is_a_no_op() -> None:
    before = others()
    session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))
    await session.close()
    await session.close()
    assert others() - before == set()
    with pytest.raises(AgentSessionError):
        await session.start()


async def test_say_before_start_is_a_clear_error() -> None:
    session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))
    with pytest.raises(AgentSessionError, match="before session.start"):
        await session.say("hi")


@virtual_clock
async def test_close_from_inside_a_tool_completes() -> None:
    from agentsession import function_tool
    from agentsession.testing import FakeToolCall

    class Leaver(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Leave when asked.")

        @function_tool
        async def hang_up(self) -> str:
            """End the call."""
            await self.session.close("hung up")
            return "bye"

    before = others()
    model = FakeRealtimeModel([FakeResponse(audio=0.2, tool_calls=[FakeToolCall("hang_up")])])
    session, transport, rec = await started(Leaver(), model)
    await session.send_text("bye")
    await settle(2)
    assert session.closed and [d["reason"] for d in rec.of("closed")] == ["hung up"]
    await transport.close()
    assert others() - before == set()


@virtual_clock
async def test_a_raising_callback_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model)

    def bad(_: object) -> None:
        raise RuntimeError("callback bug")

    async def bad_async(_: object) -> None:
        raise RuntimeError("async callback bug")

    session.on("agent_state_changed", bad)
    session.on("agent_state_changed", bad_async)
    with caplog.at_level(logging.ERROR):
        await session.say("hello", wait_for_playback=True)
    assert "callback bug" in caplog.text and "async callback bug" in caplog.text
    assert rec.agent_states()[-1] == "idle"
    await session.close()


async def test_slow_or_raising_observer_never_delays_the_session() -> None:
    release = threading.Event()
    seen: list[str] = []

    class SlowObserver:
        name = "slow-observer"

        @hookimpl
        def agentsession_agent_state_changed(self, session: AgentSession, old: AgentState, new: AgentState) -> None:
            release.wait(5)
            seen.append(new.value)

    class BadObserver:
        name = "bad-observer"

        @hookimpl
        def agentsession_agent_state_changed(self, session: AgentSession, old: AgentState, new: AgentState) -> None:
            raise RuntimeError("observer bug")

    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()), plugins=[SlowObserver(), BadObserver()])
    await session.start(transport=transport)
    started_at = time.monotonic()
    await session.say("hi", wait_for_playback=True)  # real time: ~0.5 s with the observer blocked
    assert time.monotonic() - started_at < 2.0
    assert seen == []  # the observer is still blocked, the session went on
    release.set()
    await session.close()
    await transport.close()
    assert seen[:4] == ["idle", "thinking", "speaking", "idle"]


@virtual_clock
async def test_non_recoverable_model_error_closes_the_session() -> None:
    model = FakeRealtimeModel()
    session, transport, rec = await started(QuietAgent(), model)
    model.fail("quota exceeded", recoverable=False)
    await settle(1)
    assert session.closed
    assert rec.of("error")[0]["message"] == "quota exceeded"
    assert rec.of("closed")[0]["reason"] == "error"
    await transport.close()


@virtual_clock
async def test_recoverable_error_is_reported_and_the_session_goes_on() -> None:
    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model)
    model.fail("rate limited", recoverable=True)
    await settle(1)
    assert not session.closed and rec.of("error")[0]["recoverable"] is True
    await session.close()


@virtual_clock
async def test_session_uses_the_jobs_transport_and_shutdown_follows_close() -> None:
    transport = FakeTransport()
    ctx = JobContext(transport=transport)
    await ctx.connect()
    session = AgentSession(GreetingAgent(), RealTimePipeline(FakeRealtimeModel()))
    await session.start()
    assert session.transport is transport
    await settle(3)
    assert transport.output.shape[0] > 0
    waiter = asyncio.ensure_future(ctx.wait_for_shutdown())
    await session.close("bye")
    assert await waiter == "session closed: bye"
    await ctx.shutdown()
    assert transport.closed


async def test_start_before_connect_is_a_clear_error() -> None:
    ctx = JobContext(transport=FakeTransport())
    from agentsession._ports import current_job

    token = current_job.set(ctx)
    try:
        session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))
        with pytest.raises(AgentSessionError, match="ctx.connect"):
            await session.start()
    finally:
        current_job.reset(token)


def test_bad_arguments_are_rejected_early() -> None:
    with pytest.raises(TypeError, match="Agent"):
        AgentSession("agent", RealTimePipeline(FakeRealtimeModel()))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Pipeline"):
        AgentSession(QuietAgent(), "pipeline")  # type: ignore[arg-type]
    model = FakeRealtimeModel()  # a realtime model is a pipeline in its own right
    assert AgentSession(QuietAgent(), model).pipeline.model is model
    with pytest.raises(ValueError, match="instructions"):
        Agent(instructions="")


async def test_a_model_that_fails_to_start_leaves_nothing_running() -> None:
    from agentsession import ModelError

    class NoKey(FakeRealtimeModel):
        async def start(self, options: object) -> None:  # type: ignore[override]
            raise ModelError("set OPENAI_API_KEY", recoverable=False)

    before = others()
    session = AgentSession(QuietAgent(), RealTimePipeline(NoKey()))
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await session.start()
    assert others() - before == set()
    await session.close()  # still safe
