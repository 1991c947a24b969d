"""Core's replay pieces: a ReplayScript answers when the agent sent what preceded each answer, with the recorded
delays and this run's ids; requests are compared; a cassette round-trips its audio and masks secrets."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from agentsession._replay import compare_logs, diff_values
from agentsession.plugin import Cassette, CassetteWriter, ReplayScript, TrafficRecord, protect_secret
from agentsession.testing import virtual_clock


def audio(message: Any) -> int | None:
    return len(base64.b64decode(message["audio"])) if isinstance(message, dict) and "audio" in message else None


def rec(t: float, direction: str, msg: Any) -> TrafficRecord:
    return TrafficRecord(t, "Test", 0, direction, msg)  # type: ignore[arg-type]


PCM = base64.b64encode(bytes(480)).decode()
RECORDED = [
    rec(0.0, "sent", {"type": "setup", "instructions": "Be brief.", "tools": [{"name": "get_weather"}]}),
    rec(0.1, "received", {"type": "ready"}),
    rec(0.2, "sent", {"audio": PCM}),
    rec(0.3, "sent", {"audio": PCM}),
    rec(0.8, "received", {"type": "speech_started"}),  # after 960 bytes of audio, 0.5 s later
    rec(1.0, "sent", {"type": "ask", "event_id": "ev_old"}),
    rec(1.2, "received", {"type": "answer", "event_id": "ev_old", "text": "Sunny."}),
]


@virtual_clock
async def test_answers_wait_for_what_preceded_them_and_keep_their_timing() -> None:
    script = ReplayScript(RECORDED, audio)
    loop = asyncio.get_running_loop()
    got: list[tuple[float, Any]] = []

    async def send(record: TrafficRecord, message: Any) -> None:
        got.append((round(loop.time(), 3), message))

    player = asyncio.create_task(script.play(send))
    await asyncio.sleep(1)
    assert got == []  # nothing before the agent's first request
    script.client(RECORDED[0].msg)
    await asyncio.sleep(1)
    assert got == [(1.1, {"type": "ready"})]
    script.client({"audio": PCM})
    await asyncio.sleep(3)
    assert len(got) == 1  # half the audio: the server's VAD has not fired yet
    script.client({"audio": PCM})
    await asyncio.sleep(1)
    assert got[1] == (5.5, {"type": "speech_started"})
    script.client({"type": "ask", "event_id": "ev_new"})
    await player
    assert got[2] == (6.2, {"type": "answer", "event_id": "ev_new", "text": "Sunny."})  # this run's id
    assert script.finish() == []


@virtual_clock
async def test_a_changed_request_is_reported_and_one_of_another_kind_stops_the_turn() -> None:
    script = ReplayScript(RECORDED, audio)
    sent: list[Any] = []

    async def send(record: TrafficRecord, message: Any) -> None:
        sent.append(message)

    player = asyncio.create_task(script.play(send))
    script.client({"type": "setup", "instructions": "Be long.", "tools": [{"name": "get_weather"}, {"name": "x"}]})
    script.client({"audio": PCM})
    script.client({"audio": PCM})
    script.client({"type": "cancel"})  # the recording sent an "ask" here
    script.client({"type": "ask"})
    await asyncio.sleep(5)
    assert [m["type"] for m in sent] == ["ready", "speech_started"]  # no answer to what it no longer sends
    player.cancel()
    report = "\n".join(script.finish())
    assert "request 1 (setup) differs:" in report
    assert "instructions: recorded 'Be brief.', now 'Be long.'" in report
    assert "tools[x]: new, " in report
    assert "request 2 (cancel) is new: the recording sent ask here" in report
    assert "request 3 (ask) is new: the cassette has no answer for it, so that turn stops" in report


def test_values_are_compared_with_their_secrets_masked_and_ids_mapped() -> None:
    protect_secret("sk-live-0123456789abcdefghijklmnop")
    ids: dict[str, str] = {}
    out: list[str] = []
    diff_values({"event_id": "a", "key": "[REDACTED]"}, {"event_id": "b", "key": "sk-live-0123456789abcdefghijklmnop"},
                "", ids, out)
    assert ids == {"a": "b"}
    assert out == [] or all("sk-live" not in line for line in out)


def test_where_an_answer_was_cut_may_be_off_by_the_tolerance() -> None:
    recorded = {"type": "conversation.item.truncate", "audio_end_ms": 2480}
    out: list[str] = []
    diff_values(recorded, {**recorded, "audio_end_ms": 2500}, "", {}, out, tolerance=0.5)
    assert out == []
    diff_values(recorded, {**recorded, "audio_end_ms": 2500}, "", {}, out, tolerance=0.0)
    assert out == ["audio_end_ms: recorded 2480, now 2500"]
    cut = {"t": 1.0, "kind": "interrupted", "text": "Hi! Ask me", "heard": 2.48}
    assert compare_logs([cut], [{**cut, "heard": 2.5}], tolerance=0.5) == []
    assert compare_logs([cut], [{**cut, "heard": 2.5}], tolerance=0.0) == [
        "interruptions differ:", "    - cut at 2.48 s: Hi! Ask me", "    + cut at 2.50 s: Hi! Ask me"]


def test_logs_compare_tools_transcripts_and_timing() -> None:
    old = [{"t": 1.0, "kind": "agent_state", "state": "speaking"}, {"t": 1.1, "kind": "agent_transcript", "text": "Hi"},
           {"t": 2.0, "kind": "tool_call", "name": "f", "arguments": {}, "result": 1, "is_error": False}]
    assert compare_logs(old, old) == []
    new = [{"t": 2.0, "kind": "agent_state", "state": "speaking"}, {"t": 2.1, "kind": "agent_transcript", "text": "Hey"}]
    report = "\n".join(compare_logs(old, new, tolerance=0.5))
    assert "- agent: Hi" in report and "+ agent: Hey" in report and "- f({}) -> 1" in report
    assert "began speaking turn 1 at 2.00 s, recorded 1.00 s (tolerance 0.5 s)" in report


@virtual_clock
async def test_a_cassette_keeps_audio_apart_and_reads_back(tmp_path: Path) -> None:
    class Session:
        def on(self, event: str, callback: Any) -> None:
            pass

    protect_secret("sk-live-0123456789abcdefghijklmnop")  # as the plugin holding the key does (not left to another test)
    writer = CassetteWriter(Session())  # type: ignore[arg-type]
    pcm = base64.b64encode(bytes(range(256)) * 8).decode()
    writer.link_message("Test", 0, "sent", '{"type": "setup", "key": "sk-live-0123456789abcdefghijklmnop"}')
    writer.open(tmp_path / "x.cassette")
    writer.link_message("Test", 0, "sent", json.dumps({"audio": pcm}))
    writer.link_message("Test", 0, "received", b"not json")
    writer.close()
    traffic = (tmp_path / "x.cassette" / "traffic.jsonl").read_text()
    assert pcm not in traffic and "sk-live-0123456789" not in traffic
    cassette = Cassette.load(tmp_path / "x.cassette")
    (records,) = cassette.connections("Test")
    assert records[1].msg == {"audio": pcm} and records[2].msg == "not json" and records[2].binary
