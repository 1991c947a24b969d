"""Replay (issue 27), through the CLI: a conversation recorded once against the OpenAI Realtime fakes (through the
real SDK) is a cassette; ``python agent.py replay CASSETTE`` runs the agent again offline, with the server gone,
and exits 0 when nothing changed, 1 with a report naming what did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession.testing import assert_replays, replay_cassette

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "examples" / "weather_replay.py"
TIMEOUT = 120.0
HEARD = "What is the weather in Paris? get_weather"

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("OPENAI_", "GOOGLE_", "GEMINI_", "SSL_CERT", "AGENTSESSION_RECORD", "WEATHER_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def speech(path: Path, text: str, times: int = 1, gap: float = 3.0, end: float | None = None) -> Path:
    """2 s of silence, then ``times`` x (``text`` spoken by espeak-ng, ``gap`` s of silence; ``end`` s after the
    last one)."""
    spoken = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(spoken), text], check=True, timeout=30)
    with wave.open(str(spoken), "rb") as w:
        rate = w.getframerate()
        voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    parts = [np.zeros(2 * rate, "<i2")]
    for i in range(times):
        parts += [voice, np.zeros(int((gap if end is None or i < times - 1 else end) * rate), "<i2")]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(parts).tobytes())
    return path


def agent_audio(path: Path) -> np.ndarray:
    """The agent's audio in a file mode output, silences left out."""
    with wave.open(str(path), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return samples[samples != 0]


def replay(cassette: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(AGENT), "replay", str(cassette), *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=clean_env(**env), cwd=str(cassette.parent))


def record_in_process(tmp_path: Path, said: Path, *, output: Path | None = None, **knobs: str) -> Path:
    """Record one conversation of the weather agent against the fakes served in its own process (on the virtual
    clock); return the cassette."""
    env = clean_env(WEATHER_FAKES="1", AGENTSESSION_RECORD="1", AGENTSESSION_RECORDER_DIR=str(tmp_path / "rec"),
                    **knobs)
    command = [sys.executable, str(AGENT), "file", "--input", str(said), "--speed", "max"]
    if output is not None:
        command += ["--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    (cassette,) = (tmp_path / "rec").glob("*.cassette")
    return cassette


async def _record(folder: Path, said: Path, *knobs: str) -> tuple[Path, Path]:
    """Record one conversation against ``agentsession fakes openai`` (another process, stopped afterwards)."""
    fakes = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentsession", "fakes", "openai", "--set", f"openai.heard={HEARD}",
        *(arg for knob in knobs for arg in ("--set", knob)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env())
    assert fakes.stdout is not None and fakes.stderr is not None
    try:
        env = clean_env(AGENTSESSION_RECORD="1", AGENTSESSION_RECORDER_DIR=str(folder / "recordings"))
        async with asyncio.timeout(TIMEOUT):
            while (line := (await fakes.stdout.readline()).decode()).strip() != "serving":
                assert line, (await fakes.stderr.read()).decode()
                found = re.match(r"export (\w+)=(.*)$", line.strip())
                if found:
                    env[found.group(1)] = shlex.split(found.group(2))[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(AGENT), "file", "--input", str(said), "--output", str(folder / "recorded.wav"),
            env=env, cwd=str(folder), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
    finally:
        fakes.send_signal(signal.SIGINT)
        await asyncio.wait_for(fakes.wait(), TIMEOUT)
    (cassette,) = (folder / "recordings").glob("*.cassette")
    return cassette, folder / "recorded.wav"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("replay")
    return asyncio.run(_record(folder, speech(folder / "in.wav", "What is the weather in Paris")))


def test_the_cassette_holds_the_conversation(recorded: tuple[Path, Path]) -> None:
    cassette, _ = recorded
    meta = json.loads((cassette / "cassette.json").read_text())
    assert meta["version"] == 1 and meta["links"] == ["OpenAI Realtime"] and meta["sample_rate"] == 24000
    kinds = [e["kind"] for e in meta["log"]]
    assert "tool_call" in kinds and "user_transcript" in kinds
    traffic = [json.loads(line) for line in (cassette / "traffic.jsonl").read_text().splitlines()]
    sent = [r["msg"]["type"] for r in traffic if r["dir"] == "sent"]
    assert sent[0] == "session.update" and "input_audio_buffer.append" in sent
    appended = next(r["msg"] for r in traffic if r["dir"] == "sent" and r["msg"]["type"] == "input_audio_buffer.append")
    assert set(appended["audio"]) == {"$audio"}  # audio in audio.bin, not in the JSON
    assert "sk-fake-agentsession-openai" not in (cassette / "traffic.jsonl").read_text()
    report = subprocess.run([sys.executable, "-m", "agentsession", "report", str(cassette)], capture_output=True,
                            text=True, timeout=TIMEOUT, env=clean_env())
    assert report.returncode == 0 and "WeatherAgent" in report.stdout, report.stderr


def test_a_replay_with_the_server_gone_reproduces_the_conversation(recorded: tuple[Path, Path]) -> None:
    cassette, recorded_wav = recorded
    again = cassette.parent.parent / "replays"
    done = replay(cassette, "--output", str(cassette.parent / "replayed.wav"), "--speed", "max",
                  AGENTSESSION_RECORD="1", AGENTSESSION_RECORDER_DIR=str(again))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no differences" in done.stdout
    assert len(list(again.glob("*.jsonl"))) == 1 and not list(again.glob("*.cassette"))  # a replay makes no cassette
    heard, replayed = agent_audio(recorded_wav), agent_audio(cassette.parent / "replayed.wav")
    assert len(heard) > 24000 and np.array_equal(heard, replayed)  # the agent said the same, sample for sample


def test_a_changed_tool_result_fails_with_the_request_and_the_tool(recorded: tuple[Path, Path]) -> None:
    cassette, _ = recorded
    done = replay(cassette, "--speed", "max", WEATHER_TEMP="25")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "(conversation.item.create function_call_output, tool get_weather) differs:" in done.stdout
    assert re.search(r"item\.output: recorded '.*\"temperature\": 18.*', now '.*\"temperature\": 25", done.stdout)
    assert "tool calls differ:" in done.stdout and "differs from the recording" in done.stderr


def test_changed_instructions_fail_with_the_session_update(recorded: tuple[Path, Path]) -> None:
    cassette, _ = recorded
    done = replay(cassette, "--speed", "max", WEATHER_INSTRUCTIONS="You are a pirate.")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "request 1 (session.update) differs:" in done.stdout
    assert "session.instructions: recorded 'You tell the weather, briefly.', now 'You are a pirate.'" in done.stdout
    assert "tool calls differ" not in done.stdout  # the rest of the conversation went as recorded


def test_the_pytest_helper_passes_and_fails_with_the_report(recorded: tuple[Path, Path]) -> None:
    cassette, _ = recorded
    assert assert_replays(cassette, AGENT, env=clean_env()).ok
    changed = replay_cassette(cassette, AGENT, env={**clean_env(), "WEATHER_TEMP": "30"})
    assert changed.code == 1 and "tool get_weather" in changed.report
    with pytest.raises(AssertionError, match="differs from the recording"):
        assert_replays(cassette, AGENT, env={**clean_env(), "WEATHER_TEMP": "30"})


def test_a_barge_in_replays_where_the_answers_were_cut(tmp_path: Path) -> None:
    """The user cuts 4 s answers short; the replay cuts them exactly where they were cut (the truncations sent,
    the words and seconds heard)."""
    said = speech(tmp_path / "in.wav", "What is the weather in Paris", times=2, gap=1.2, end=6.0)
    cassette = record_in_process(tmp_path, said, WEATHER_FAKES_AUDIO="4")
    log = json.loads((cassette / "cassette.json").read_text())["log"]
    assert [e["kind"] for e in log].count("interrupted") == 2
    assert "conversation.item.truncate" in (cassette / "traffic.jsonl").read_text()
    same = replay(cassette, "--speed", "max", "--tolerance", "0")
    assert same.returncode == 0 and "no differences" in same.stdout, same.stdout + same.stderr


def test_a_long_conversation_replays_in_seconds(tmp_path: Path) -> None:
    """12 questions over 50 s, recorded against the fakes served in the agent's process on the virtual clock."""
    said = speech(tmp_path / "long.wav", "What is the weather in Paris", times=12, gap=3.0)
    cassette = record_in_process(tmp_path, said)
    log = json.loads((cassette / "cassette.json").read_text())["log"]
    assert sum(e["kind"] == "tool_call" for e in log) == 12 and log[-1]["t"] > 50
    started = time.monotonic()
    again = replay(cassette, "--speed", "max")
    took = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    print(f"replayed {log[-1]['t']:.0f} s of conversation in {took:.1f} s")


def test_gemini_live_records_and_replays(tmp_path: Path) -> None:
    """The same on Gemini Live (its fakes served in the agent's process, on the virtual clock)."""
    said = speech(tmp_path / "in.wav", "What is the weather in Paris")
    cassette = record_in_process(tmp_path, said, output=tmp_path / "recorded.wav", WEATHER_MODEL="gemini")
    assert json.loads((cassette / "cassette.json").read_text())["links"] == ["Gemini Live"]
    same = replay(cassette, "--speed", "max", "--output", str(tmp_path / "replayed.wav"), WEATHER_MODEL="gemini")
    assert same.returncode == 0 and "no differences" in same.stdout, same.stdout + same.stderr
    heard, replayed = agent_audio(tmp_path / "recorded.wav"), agent_audio(tmp_path / "replayed.wav")
    assert len(heard) > 24000 and np.array_equal(heard, replayed)
    changed = replay(cassette, "--speed", "max", WEATHER_MODEL="gemini", WEATHER_TEMP="25",
                     WEATHER_INSTRUCTIONS="Be a pirate.")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "request 1 (setup) differs:" in changed.stdout
    assert "setup.systemInstruction.parts[0].text: recorded 'You tell the weather, briefly.', now 'Be a pirate.'" \
        in changed.stdout
    assert "(tool_response, tool get_weather) differs:" in changed.stdout
    assert "response.temperature: recorded 18, now 25" in changed.stdout


def test_a_cascade_records_and_replays(tmp_path: Path) -> None:
    """The same on a cascade: OpenAI's streaming transcription (websocket), chat completions and speech (HTTP)."""
    said = speech(tmp_path / "in.wav", "What is the weather in Paris")
    cassette = record_in_process(tmp_path, said, output=tmp_path / "recorded.wav", WEATHER_MODEL="cascade")
    assert sorted(json.loads((cassette / "cassette.json").read_text())["links"]) == [
        "OpenAI HTTP", "OpenAI transcription"]
    same = replay(cassette, "--speed", "max", "--output", str(tmp_path / "replayed.wav"), WEATHER_MODEL="cascade")
    assert same.returncode == 0 and "no differences" in same.stdout, same.stdout + same.stderr
    heard, replayed = agent_audio(tmp_path / "recorded.wav"), agent_audio(tmp_path / "replayed.wav")
    assert len(heard) > 24000 and np.array_equal(heard, replayed)
    changed = replay(cassette, "--speed", "max", WEATHER_MODEL="cascade", WEATHER_TEMP="25",
                     WEATHER_INSTRUCTIONS="Be a pirate.")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "(POST /v1/chat/completions) differs:" in changed.stdout
    assert "body.messages[0].content: recorded 'You tell the weather, briefly.', now 'Be a pirate.'" in changed.stdout
    assert "(POST /v1/chat/completions, tool get_weather) differs:" in changed.stdout
    assert re.search(r"body\.messages\[\d\]\.content: recorded '.*\"temperature\": 18.*', now '.*\"temperature\": 25",
                     changed.stdout)
