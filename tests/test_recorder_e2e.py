"""End to end: the recorder plugin, found through its entry point only, records sessions run in a subprocess,
and ``agentsession report`` reads the files back (and plots them)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentsession import mask

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789abcdefghijklmnopqrstuv"

#: a scripted conversation on core's FakeRealtimeModel; it never imports the recorder
SCRIPT = '''\
"""A scripted conversation on core's FakeRealtimeModel. It never imports the recorder: the recorder is
found through its entry point, as any installed plugin is."""

from __future__ import annotations

import asyncio
import os
import sys

from agentsession import Agent, AgentSession, RealTimePipeline, function_tool
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport, run_virtual


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You help with the weather.")

    @function_tool
    async def get_weather(self, city: str, api_key: str = "") -> dict[str, object]:
        """The weather in a city.

        Args:
            city: the city's name
            api_key: the weather service's key
        """
        await asyncio.sleep(0.4)
        return {"city": city, "temp": 21}


async def conversation(forever: bool) -> None:
    secret = os.environ["OPENAI_API_KEY"]
    weather = FakeResponse(
        text="Let me check.", audio=0.6,
        tool_calls=[FakeToolCall("get_weather", {"city": "Paris", "api_key": secret})],
        then=FakeResponse(text="It is 21 degrees in Paris.", audio=1.5, delay=0.3),
    )
    model = FakeRealtimeModel(
        [] if forever else [weather, FakeResponse(text="Once upon a time " * 5, audio=4.0),
                            FakeResponse(text="Okay, stopping.", audio=0.8, delay=0.35),
                            FakeResponse(text=f"My key is {secret}.", audio=1.0)],
        default=FakeResponse(text="again", audio=0.1, delay=0.01), speed=1.0,
    )
    session = AgentSession(Assistant(), RealTimePipeline(model), wake_up=2.5)
    session.on_wake_up = lambda: session.say("Are you still there?")
    turns: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    session.on("metrics_collected", turns.put_nowait)
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)

    async def turn() -> dict[str, object]:
        return await asyncio.wait_for(turns.get(), 30)

    async def user_says(text: str, seconds: float) -> None:
        model.user_starts_speaking()
        await asyncio.sleep(seconds)
        model.user_stops_speaking(text)

    while forever:
        await session.send_text("Say it again.")
        print(f"turn {(await turn())['turn']}", flush=True)
    await session.say("Hello! Ask me about the weather.", wait_for_playback=True)
    await turn()
    await user_says("What's the weather in Paris?", 1.2)
    await turn()  # "Let me check.", the tool call and the answer after its result: one turn
    await asyncio.sleep(0.6)
    await user_says("Tell me a story.", 0.8)
    await asyncio.sleep(1.5)
    await user_says("Stop, stop.", 0.9)  # a barge-in: the story is cut
    assert (await turn())["interrupted"]
    await turn()
    await asyncio.sleep(0.6)
    await user_says("What is your key?", 0.7)
    await turn()
    await turn()  # after 2.5 s of silence, the wake-up's question
    await asyncio.sleep(0.5)
    await session.close()
    await transport.close()


if __name__ == "__main__":
    run_virtual(conversation("--forever" in sys.argv))
'''


def _env(rec_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTSESSION_DISABLE_PLUGINS"}
    env.update(AGENTSESSION_RECORD="1", AGENTSESSION_RECORDER_DIR=str(rec_dir), OPENAI_API_KEY=SECRET, **extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _report(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(["-m", "agentsession", "report", str(path), *extra], dict(os.environ), path.parent)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording of the scripted conversation (run once for the module)."""
    work = tmp_path_factory.mktemp("scripted")
    (work / "conversation.py").write_text(SCRIPT, encoding="utf-8")
    done = _run(["conversation.py"], _env(work / "rec"), work)
    assert done.returncode == 0, done.stderr
    files = list((work / "rec").glob("*.jsonl"))
    assert len(files) == 1, f"expected one recording, got {files}"
    return files[0]


def test_the_recorder_is_found_through_its_entry_point_and_records_everything(scripted: Path) -> None:
    assert "agentsession_recorder" not in SCRIPT
    records = _lines(scripted)
    kinds = [r["event"] for r in records]
    assert kinds[0] == "session_started" and "session_closed" in kinds
    head = records[0]
    assert head["agent"] == "Assistant" and head["model"] == "fake" and head["tools"] == ["get_weather"]
    for kind in ("user_state", "agent_state", "user_transcript", "agent_transcript", "tool_call", "metrics",
                 "wake_up"):
        assert kind in kinds, kind
    # the weather question, its tool call and the answer after it are one turn
    assert [r["turn"] for r in records if r["event"] == "metrics"] == [1, 2, 3, 4, 5, 6]
    tool = next(r for r in records if r["event"] == "tool_call")
    assert tool["name"] == "get_weather" and tool["arguments"]["city"] == "Paris"
    assert tool["result"] == {"city": "Paris", "temp": 21} and tool["duration"] == pytest.approx(0.4, abs=0.01)
    users = [r["text"] for r in records if r["event"] == "user_transcript"]
    assert users == ["What's the weather in Paris?", "Tell me a story.", "Stop, stop.", "What is your key?"]
    assert any(r["event"] == "agent_transcript" and r.get("interrupted") for r in records)
    assert all(isinstance(r["t"], float | int) and r["t"] >= 0 for r in records)


def test_secrets_are_redacted(scripted: Path) -> None:
    text = scripted.read_text(encoding="utf-8")
    assert SECRET not in text
    tool = next(r for r in _lines(scripted) if r["event"] == "tool_call")
    assert tool["arguments"]["api_key"] == mask(SECRET)  # a key-like field
    assert f"My key is {mask(SECRET)}." in text  # a known secret inside a transcript


def test_the_recording_round_trips_through_report(scripted: Path) -> None:
    done = _report(scripted, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["complete"] and summary["skipped_lines"] == 0
    turns = summary["turns"]
    assert [t["trigger"] for t in turns] == ["say", "user", "user", "user", "user", "say"]
    assert turns[1]["user"] == "What's the weather in Paris?" and turns[1]["tools"] == ["get_weather"]
    assert turns[1]["agent"] == "Let me check. It is 21 degrees in Paris."
    assert turns[2]["interrupted"] and turns[2]["user"] == "Tell me a story."
    assert turns[5]["agent"] == "Are you still there?"
    metrics = [r for r in _lines(scripted) if r["event"] == "metrics"]
    assert len(metrics) == 6
    e2e = sorted(m["e2e"] for m in metrics if m["trigger"] == "user")  # the user's turns, not the agent's own
    assert summary["latency"]["e2e"]["n"] == len(e2e) == 4
    assert summary["latency"]["e2e"]["p50"] == pytest.approx((e2e[1] + e2e[2]) / 2)
    assert summary["latency"]["e2e"]["max"] == pytest.approx(e2e[-1])
    assert summary["latency"]["tool_duration"]["p50"] == pytest.approx(0.4, abs=0.01)

    text = _report(scripted)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "turn  trigger" in out and "p50 ms" in out and "p95 ms" in out
    assert "What's the weather in Paris?" in out and "user (interrupted)" in out and "wake_up" in out
    p50 = f"{summary['latency']['e2e']['p50'] * 1000:.0f}"
    assert any(line.split()[:3] == ["e2e", "4", p50] for line in out.splitlines())


def test_the_timeline_plot_is_a_valid_png(scripted: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the 'plot' extra: pip install 'agentsession[plot]'")
    png = tmp_path / "timeline.png"
    done = _report(scripted, "--plot", str(png))
    assert done.returncode == 0, done.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", data[16:24])
    assert width > 1000 and height > 600 and len(data) > 20_000


def test_the_parrot_example_is_recorded(tmp_path: Path) -> None:
    args = [str(ROOT / "examples" / "parrot.py"), "file", "--input", str(ROOT / "examples" / "hello.wav"),
            "--speed", "max"]
    done = _run(args, _env(tmp_path / "rec"), tmp_path)
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "rec").glob("*.jsonl")
    summary = json.loads(_report(path, "--json").stdout)
    assert summary["session"]["agent"] == "ParrotAgent" and summary["complete"]
    assert [t["trigger"] for t in summary["turns"]] == ["say", "user"]
    assert summary["turns"][1]["eou_delay"] is not None


def test_a_disabled_recorder_records_nothing(tmp_path: Path) -> None:
    args = [str(ROOT / "examples" / "parrot.py"), "file", "--input", str(ROOT / "examples" / "hello.wav"),
            "--speed", "max"]
    done = _run(args, _env(tmp_path / "rec", AGENTSESSION_DISABLE_PLUGINS="recorder"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "rec").exists()


def test_a_session_killed_with_sigkill_leaves_a_readable_file(tmp_path: Path) -> None:
    (tmp_path / "conversation.py").write_text(SCRIPT, encoding="utf-8")
    rec_dir = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "conversation.py", "--forever"], env=_env(rec_dir), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 30:  # the session runs flat out on a virtual clock: kill it mid-stream
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the session did not record 30 turns in 60 s"
            files = list(rec_dir.glob("*.jsonl"))
            seen = files[0].read_bytes().count(b'"event": "metrics"') if files else 0
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    [path] = rec_dir.glob("*.jsonl")
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the last line was cut"
    records = _lines(path)  # every line is whole JSON
    assert records[0]["event"] == "session_started"
    assert sum(r["event"] == "metrics" for r in records) >= seen
    assert not any(r["event"] == "session_closed" for r in records)
    done = _report(path)
    assert done.returncode == 0, done.stderr
    assert "INCOMPLETE" in done.stdout
    summary = json.loads(_report(path, "--json").stdout)
    assert not summary["complete"] and summary["skipped_lines"] == 0 and len(summary["turns"]) >= seen


def test_report_of_several_recordings_and_their_plots(scripted: Path, tmp_path: Path) -> None:
    """The recorder README's `agentsession report recordings/*.jsonl --plot timeline.png`, with two recordings."""
    pytest.importorskip("matplotlib", reason="the plot needs the 'plot' extra: pip install 'agentsession[plot]'")
    second = tmp_path / "second.jsonl"
    records = _lines(scripted)
    second.write_text("".join(json.dumps({**r, "session_id": "second"} if r["event"] == "session_started" else r)
                              + "\n" for r in records[: len(records) // 2]), encoding="utf-8")
    png = tmp_path / "timeline.png"
    done = _run(["-m", "agentsession", "report", str(scripted), str(second), "--plot", str(png)], dict(os.environ),
                tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"({scripted})" in done.stdout and f"({second})" in done.stdout and "over all 2 recordings:" in done.stdout
    one = json.loads(_report(scripted, "--json").stdout)["latency"]["e2e"]
    both = json.loads(_run(["-m", "agentsession", "report", str(scripted), str(second), "--json"],
                           dict(os.environ), tmp_path).stdout)
    assert [r["path"] for r in both["recordings"]] == [str(scripted), str(second)]
    assert one["n"] < both["latency"]["e2e"]["n"] < 2 * one["n"]  # the second holds the first half of the turns
    for name in (scripted.stem, "second"):
        assert (tmp_path / f"timeline-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"timeline written to {tmp_path / f'timeline-{name}.png'}" in done.stdout


def test_report_of_an_audio_file_is_one_line_error(scripted: Path) -> None:
    done = _run(["-m", "agentsession", "report", str(ROOT / "examples" / "hello.wav"), str(scripted)],
                dict(os.environ), scripted.parent)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {ROOT / 'examples' / 'hello.wav'} is not a session recording (not text; "
                                   "a recording is the .jsonl file agentsession-recorder writes)")
    assert f"({scripted})" in done.stdout  # the readable one is still reported
