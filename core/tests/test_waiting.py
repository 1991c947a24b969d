"""The test kit's waiting helpers, on the virtual clock."""

from __future__ import annotations

import asyncio

import pytest

from agentsession import AgentAudio, AgentState, ResponseDone, UserState, UserTranscript
from agentsession.testing import FakeRealtimeModel, FakeResponse, read_events, virtual_clock, wait_for_state
from core_helpers import QuietAgent, started


@virtual_clock
async def test_read_events_stops_at_the_first_accepted_event() -> None:
    model = FakeRealtimeModel()
    model.channel.emit(UserTranscript("hi", final=True))
    model.channel.emit(ResponseDone(response_id="a"))
    model.channel.emit(ResponseDone(interrupted=True, response_id="b"))
    events = await read_events(model, lambda e: isinstance(e, ResponseDone))
    assert events == [UserTranscript("hi", final=True), ResponseDone(response_id="a")]
    assert await read_events(model, lambda e: True) == [ResponseDone(interrupted=True, response_id="b")]


@virtual_clock
async def test_read_events_returns_what_came_when_the_channel_ends_and_times_out_otherwise() -> None:
    model = FakeRealtimeModel()
    model.channel.emit(UserTranscript("hi", final=True))
    model.channel.end()
    assert await read_events(model, lambda e: False) == [UserTranscript("hi", final=True)]
    silent = FakeRealtimeModel()
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with pytest.raises(TimeoutError):
        await read_events(silent, lambda e: isinstance(e, AgentAudio), timeout=3.0)
    assert loop.time() - begun == pytest.approx(3.0)


@virtual_clock
async def test_wait_for_state_follows_the_agent_and_the_user() -> None:
    model = FakeRealtimeModel([FakeResponse(text="Sure.", audio=1.0, delay=0.3)])
    session, _, _ = await started(QuietAgent(), model)
    await wait_for_state(session, AgentState.IDLE)  # already there: returns at once
    model.user_starts_speaking()
    await wait_for_state(session, UserState.SPEAKING)
    model.user_stops_speaking("Can you help?")
    await wait_for_state(session, AgentState.SPEAKING)
    assert session.agent_state is AgentState.SPEAKING
    await wait_for_state(session, AgentState.IDLE)
    listeners = len(session._emitter._callbacks["agent_state_changed"])
    with pytest.raises(TimeoutError):
        await wait_for_state(session, AgentState.THINKING, timeout=2.0)
    assert len(session._emitter._callbacks["agent_state_changed"]) == listeners  # it let go of its listener
    await session.close()
