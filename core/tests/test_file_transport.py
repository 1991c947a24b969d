"""The file transport end to end through the CLI, in a subprocess."""

from __future__ import annotations

import importlib.machinery
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession import AudioFrame
from agentsession.testing import tone

REPO = Path(__file__).resolve().parents[2]

FAKE_AGENT = '''
from agentsession import Agent, AgentSession, EnergyVAD, JobContext, RealTimePipeline, WorkerJob
from agentsession.testing import FakeRealtimeModel, FakeResponse

class A(Agent):
    def __init__(self):
        super().__init__(instructions="test")

async def entrypoint(ctx: JobContext):
    model = FakeRealtimeModel([FakeResponse("first answer", audio=1.0, delay=0.3)], vad=EnergyVAD())
    session = AgentSession(A(), RealTimePipeline(model))
    session.on("agent_state_changed", lambda d: print("agent", d["state"].value, flush=True))
    await ctx.connect()
    await session.start()
    print("ended:", await ctx.wait_for_shutdown(), flush=True)
    await session.close()
    await ctx.shutdown()

WorkerJob(entrypoint).start()
'''


def write_wav(path: Path, frame: AudioFrame) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frame.channels)
        w.setsampwidth(2)
        w.setframerate(frame.sample_rate)
        w.writeframes(frame.to_bytes())


def read_wav(path: Path) -> AudioFrame:
    with wave.open(str(path), "rb") as w:
        return AudioFrame.from_bytes(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels())


@pytest.mark.parametrize("speed", ["max", "realtime"])
def test_file_mode_answers_the_user_on_the_conversation_timeline(tmp_path: Path, speed: str) -> None:
    # 0.5 s silence, 1 s "speech" (a tone), then silence: the fake model's VAD ends the turn 0.5 s after it
    audio = np.concatenate([np.zeros((8000, 1), np.int16), tone(1.0, 16000, 300).data])
    write_wav(tmp_path / "in.wav", AudioFrame(audio, 16000))
    script = tmp_path / "agent.py"
    script.write_text(FAKE_AGENT)
    proc = subprocess.run(
        [sys.executable, str(script), "file", "--input", str(tmp_path / "in.wav"), "--output", str(tmp_path / "out.wav"),
         "--speed", speed],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ended: input done" in proc.stdout
    assert proc.stdout.count("agent speaking") == 1
    out = read_wav(tmp_path / "out.wav")
    assert out.sample_rate == 24000
    level = np.abs(out.data[:, 0].astype(np.int32))
    loud = np.flatnonzero(level > 1000) / 24000
    # user stops at 1.5 s; VAD needs 0.5 s of silence; the model answers 0.3 s later with 1 s of audio
    tolerance = 0.03 if speed == "max" else 0.15
    assert loud[0] == pytest.approx(1.5 + 0.5 + 0.3, abs=tolerance)
    assert loud[-1] - loud[0] == pytest.approx(1.0, abs=0.03)


def test_parrot_demo_repeats_the_user(tmp_path: Path) -> None:
    out = tmp_path / "parrot.wav"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "parrot.py"), "file", "--input", str(REPO / "examples" / "hello.wav"),
         "--output", str(out), "--speed", "max"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "agent said: Hello! Say something" in proc.stdout
    assert "repeating" in proc.stdout and "ended: input done" in proc.stdout
    assert "eou_delay=" in proc.stdout and "e2e=" in proc.stdout
    heard = read_wav(out)
    with wave.open(str(REPO / "examples" / "hello.wav"), "rb") as w:
        spoken_s = w.getnframes() / w.getframerate()
    assert heard.duration > spoken_s  # the greeting, then the repeat on the same timeline


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "parrot.py"), "file", "--input", str(tmp_path / "nope.wav")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "input file not found" in proc.stderr


def test_input_is_required_in_file_mode() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "parrot.py"), "file"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--input" in proc.stderr


BATCH_AGENT = FAKE_AGENT.replace(
    'print("ended:", await ctx.wait_for_shutdown(), flush=True)',
    'import os; print("ended:", await ctx.wait_for_shutdown(), "pid", os.getpid(), flush=True)',
)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_of_inputs_runs_concurrently_and_over_worker_processes(tmp_path: Path, workers: int) -> None:
    inputs = []
    for k in range(4):  # the k-th user speaks after k * 0.2 s
        audio = np.concatenate([np.zeros((8000 + 3200 * k, 1), np.int16), tone(1.0, 16000, 300).data])
        inputs += ["--input", str(tmp_path / f"in{k}.wav")]
        write_wav(tmp_path / f"in{k}.wav", AudioFrame(audio, 16000))
    script = tmp_path / "agent.py"
    script.write_text(BATCH_AGENT)
    proc = subprocess.run(
        [sys.executable, str(script), "file", *inputs, "--output-dir", str(tmp_path / "out"), "--speed", "max",
         "--workers", str(workers)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    if workers > 1:  # each line whole, tagged with the worker it came from
        assert all(re.match(r"\[worker \d+\] (agent \w+|ended: .*)$", line) for line in lines), proc.stdout
        lines = [line.split("] ", 1)[1] for line in lines]
    ends = [line for line in lines if line.startswith("ended: input done")]
    assert len(ends) == 4, proc.stdout
    assert len({line.split("pid ")[1] for line in ends}) == workers  # jobs spread over the processes
    for k in range(4):
        level = np.abs(read_wav(tmp_path / "out" / f"in{k}.wav").data[:, 0].astype(np.int32))
        first = np.flatnonzero(level > 1000)[0] / 24000
        assert first == pytest.approx(0.5 + 0.2 * k + 1.0 + 0.5 + 0.3, abs=0.03)  # each on its own timeline


def test_outputs_must_match_inputs(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", AudioFrame.silence(0.5, 16000))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "parrot.py"), "file", "--input", str(tmp_path / "a.wav"),
         "--input", str(tmp_path / "a.wav"), "--output", str(tmp_path / "o.wav")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "2 --input but 1 --output" in proc.stderr


def test_worker_processes_of_a_program_run_as_a_module(tmp_path: Path) -> None:
    """``python -m pkg``: the workers start the same way, so the package's relative imports still work."""
    package = tmp_path / "batchpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agent.py").write_text(BATCH_AGENT.replace("WorkerJob(entrypoint).start()", ""))
    (package / "__main__.py").write_text("from .agent import entrypoint\nfrom agentsession import WorkerJob\n\n"
                                         "WorkerJob(entrypoint).start()\n")
    inputs = []
    for k in range(2):
        write_wav(tmp_path / f"in{k}.wav", AudioFrame(tone(1.0, 16000, 300).data, 16000))
        inputs += ["--input", str(tmp_path / f"in{k}.wav")]
    proc = subprocess.run(
        [sys.executable, "-m", "batchpkg", "file", *inputs, "--output-dir", str(tmp_path / "out"), "--speed", "max",
         "--workers", "2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    ends = [line for line in proc.stdout.splitlines() if line.startswith("[worker") and "ended: input done" in line]
    assert len({line.split("pid ")[1] for line in ends}) == 2


def test_program_command_reruns_a_script_or_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from agentsession import program_command

    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/srv/agent/main.py", "console"])
    main.__spec__ = None
    assert program_command() == [sys.executable, "/srv/agent/main.py"]
    main.__spec__ = importlib.machinery.ModuleSpec("myagent.__main__", None)
    assert program_command() == [sys.executable, "-m", "myagent"]
    main.__spec__ = importlib.machinery.ModuleSpec("myagent.cli", None)
    assert program_command() == [sys.executable, "-m", "myagent.cli"]
