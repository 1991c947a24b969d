"""``python main.py``: the worker's default mode joins the room, and a whole session runs through it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("videosdk", reason="the VideoSDK SDK is the `sdk` extra: run these in its own venv (README)")

from videosdk_fakes import MeetingFactory  # noqa: E402

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob  # noqa: E402
from agentsession.testing import FakeRealtimeModel, tone  # noqa: E402
from agentsession_videosdk import _sdk  # noqa: E402

TOKEN = "eyJhbGciOiJIUzI1NiJ9.worker-secret-token.signature"


def test_default_mode_joins_the_room_and_runs_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOSDK_AUTH_TOKEN", TOKEN)
    factory = MeetingFactory(peers=(("p1", "Alice"),))
    monkeypatch.setattr(_sdk, "create_meeting", factory)
    model = FakeRealtimeModel()
    seen: dict[str, Any] = {}

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(agent=Agent(instructions="You are a test."), pipeline=RealTimePipeline(model))
        await ctx.connect()  # joins and waits for Alice
        await session.start()
        room = factory.room
        assert room is not None
        room.peer_publishes_audio("p1")
        room.peer_says("p1", tone(0.3, 48000))
        await session.say("Hello Alice", wait_for_playback=True)
        seen["heard"] = model.received_audio
        room.removed_by_host()
        seen["reason"] = await ctx.wait_for_shutdown()
        await session.close()

    code = WorkerJob(entrypoint, lambda: JobContext(room_options=RoomOptions(room_id="abcd-efgh-ijkl",
                                                                             name="Assistant"))).run([])
    assert code == 0
    room = factory.room
    assert room is not None
    assert factory.config["name"] == "Assistant" and factory.config["peer_type"] == "agent"
    assert seen["heard"] == pytest.approx(0.3, abs=0.05)  # Alice's audio reached the model (24 kHz mono)
    assert "left the room" in seen["reason"]
    loud = sum(1 for f in room.sent if np.abs(f.to_ndarray()).max() > 1000)
    assert loud * 0.02 == pytest.approx(0.66, abs=0.1)  # say(): 0.06 s per character of tone
    assert "speaking" in room.agent_states and room.agent_states[-1] != "speaking"
    assert {"text": "Hello Alice", "peerId": "agent-peer", "type": "final"}.items() <= room.transcripts[-1].items()
