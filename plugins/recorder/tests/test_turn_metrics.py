"""Every field of ``TurnMetrics`` goes through the recorder's ``metrics`` lines and back (``from_dict``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import agentsession_recorder.plugin as recorder
from agentsession import Agent, AgentSession, RealTimePipeline
from agentsession.plugin import TurnMetrics
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport, run_virtual
from agentsession_recorder import DIR_ENV


class Quiet(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Be brief.")


def test_every_field_is_recorded_and_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    monkeypatch.setenv("AGENTSESSION_RECORD", "1")  # recording is opt-in
    monkeypatch.setenv("AGENTSESSION_DISABLE_PLUGINS", "recorder")  # registered below, once, as this module
    emitted: list[dict[str, object]] = []
    full = TurnMetrics(turn=7, trigger="user", eou_delay=0.5, ttfa=0.8, e2e=1.35, interrupted=True,
                       audio_duration=1.25, speech_id="speech_0123abcd", end_of_turn_reason="turn_detector",
                       stt_latency=0.21, llm_ttft=0.375, llm_duration=1.25, tts_ttfb=0.125, realtime_ttfa=None,
                       audio_generated=2.5, audio_played=1.25, interrupted_at=1.25)
    full.add_tool("get_weather", 0.5, call_id="call_1")
    full.add_usage({"input_tokens": 120, "output_tokens": 30})

    async def converse() -> None:
        model = FakeRealtimeModel([FakeResponse(text="Hi.", audio=0.2)])
        session = AgentSession(Quiet(), RealTimePipeline(model), plugins=[recorder])
        session.on("metrics_collected", emitted.append)
        transport = FakeTransport()
        await transport.start()
        await session.start(transport=transport)
        await session.run(user_input="Hello?")
        full.started_at = round(session.now() - 2.0, 3)
        full.timestamp = round(session.now(), 3)
        recorder.agentsession_metrics_collected(session, full)  # what the session's observer thread calls
        await session.close("done")
        await transport.close()

    run_virtual(converse())
    [path] = tmp_path.glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    metrics = sorted((r for r in lines if r["event"] == "metrics"), key=lambda r: int(r["turn"]))
    assert [r["turn"] for r in metrics] == [1, 7]
    # the session's own record: every field of the event's payload is in the line, unchanged
    [payload] = emitted
    assert {k: v for k, v in metrics[0].items() if k in payload} == {k: v for k, v in payload.items()
                                                                     if k != "timestamp"}
    assert set(payload) - set(metrics[0]) == {"timestamp"}  # written as the line's "time"
    # the full record: back to the same TurnMetrics, the line's time being its timestamp
    line = metrics[1]
    assert line["tools"] == [{"name": "get_weather", "duration": 0.5, "is_error": False, "call_id": "call_1"}]
    assert line["input_tokens"] == 120 and line["realtime_ttfa"] is None
    assert TurnMetrics.from_dict({**line, "timestamp": line["time"]}) == full
    assert dataclasses.asdict(full).keys() - line.keys() == {"timestamp"}
