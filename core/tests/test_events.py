"""Typed session events: one frozen dataclass each, names checked at ``on()``, read like VideoSDK's dicts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_args

import pytest

from agentsession import EVENT_NAMES, AgentSession, AgentState, EventName, RealTimePipeline
from agentsession._events import AgentStateChanged, ErrorOccurred, SessionEvent, UserTranscribed
from agentsession.testing import FakeRealtimeModel, FakeTransport, virtual_clock
from core_helpers import QuietAgent


def session() -> AgentSession:
    return AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))


def test_an_unknown_event_name_is_refused_with_the_closest_one() -> None:
    with pytest.raises(ValueError, match="'agent_state_chnaged'.*did you mean 'agent_state_changed'"):
        session().on("agent_state_chnaged", print)
    with pytest.raises(ValueError, match="the events are: user_state_changed"):
        session().on("zzz", print)
    with pytest.raises(ValueError, match="did you mean 'closed'"):
        session().once("close", print)


def test_every_name_is_a_typed_event() -> None:
    import agentsession._events as events

    classes = [c for c in vars(events).values()
               if isinstance(c, type) and issubclass(c, SessionEvent) and c is not SessionEvent]
    assert sorted(c.event_name for c in classes) == sorted(EVENT_NAMES) == sorted(get_args(EventName))
    assert all(dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen for c in classes)  # type: ignore[attr-defined]


def test_an_event_reads_like_the_dict_videosdk_gives() -> None:
    event = AgentStateChanged(state=AgentState.IDLE, previous=AgentState.STARTING, timestamp=1.5)
    assert event["state"] == "idle" and f"{event['state']}" == "idle" and event.state is AgentState.IDLE
    assert event == {"state": "idle", "previous": "starting", "timestamp": 1.5}
    assert dict(event) == event.to_dict() and {**event}["previous"] == "starting"
    assert event.get("nope") is None and "state" in event and len(event) == 3
    assert json.loads(json.dumps(event.to_dict())) == {"state": "idle", "previous": "starting", "timestamp": 1.5}
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.state = AgentState.SPEAKING  # type: ignore[misc]
    with pytest.raises(KeyError):
        event["nope"]


def test_optional_keys_are_left_out_while_empty() -> None:
    assert UserTranscribed(text="hi", final=True) == {"text": "hi", "final": True}
    assert dict(UserTranscribed(text="hi", final=True, typed=True))["typed"] is True
    assert ErrorOccurred(message="m")["component"] is None  # a plain field: always there


@virtual_clock
async def test_callbacks_get_typed_events_and_no_state_event_repeats_its_state() -> None:
    s = session()
    seen: list[Any] = []
    s.on("agent_state_changed", seen.append)
    transport = FakeTransport()
    await transport.start()
    await s.start(transport=transport)
    await s.say("Hello there.", wait_for_playback=True)
    await s.close()
    assert all(isinstance(e, AgentStateChanged) for e in seen)
    assert [str(e["state"]) for e in seen][:2] == ["starting", "idle"]
    assert all(e["state"] != e["previous"] for e in seen)
    assert [str(e["state"]) for e in seen][-1] == "closing"
