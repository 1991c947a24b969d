"""The file transport end to end through the CLI, in a subprocess."""

from __future__ import annotations

import importlib.machinery
import os
import re
import signal
import subprocess
import sys
import threading
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


@pytest.mark.parametrize(("workers", "loop"), [(1, "asyncio"), (2, "asyncio"), (2, "uvloop")])
def test_a_batch_of_inputs_runs_concurrently_and_over_worker_processes(tmp_path: Path, workers: int,
                                                                        loop: str) -> None:
    if loop == "uvloop":  # the fast extra's loop (here the parent's: jobs at --speed max run on a virtual clock),
        pytest.importorskip("uvloop")  # whose subprocesses take fewer arguments than asyncio's
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
        capture_output=True, text=True, timeout=120, env={**os.environ, "AGENTSESSION_LOOP": loop},
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


# ------------------------------------------------------------- what people have: formats, mistakes, broken files

sf = pytest.importorskip("soundfile")


def run_agent(tmp_path: Path, *args: str, agent: str = FAKE_AGENT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "agent.py"
    script.write_text(agent)
    return subprocess.run([sys.executable, str(script), "file", *args], capture_output=True, text=True,
                          timeout=timeout)


def speech(rate: int, channels: int = 1) -> np.ndarray:
    """0.5 s silence, then 1 s of a loud tone ("speech"), as float samples of shape (n, channels)."""
    t = np.arange(rate) / rate
    voice = np.concatenate([np.zeros(rate // 2), 0.6 * np.sin(2 * np.pi * 300 * t)])
    return np.repeat(voice[:, np.newaxis], channels, axis=1)


def first_answer_at(path: Path) -> float:
    out = read_wav(path)
    return float(np.flatnonzero(np.abs(out.data[:, 0].astype(np.int32)) > 1000)[0] / out.sample_rate)


@pytest.mark.parametrize(("name", "rate", "channels", "subtype"), [
    ("in.wav", 48000, 1, "PCM_24"),
    ("in.wav", 44100, 2, "FLOAT"),
    ("in.wav", 16000, 1, "PCM_32"),
    ("in.flac", 22050, 1, "PCM_16"),
    ("in.ogg", 48000, 2, "VORBIS"),
    ("in.mp3", 44100, 1, "MPEG_LAYER_III"),
    ("in.wav", 11025, 6, "PCM_16"),  # neither the rate nor the channel count is one an AudioFrame holds
    ("in.wav", 96000, 1, "PCM_24"),
])
def test_file_mode_reads_the_audio_people_have(tmp_path: Path, name: str, rate: int, channels: int, subtype: str) -> None:
    sf.write(str(tmp_path / name), speech(rate, channels), rate, subtype=subtype)
    proc = run_agent(tmp_path, "--input", str(tmp_path / name), "--output", str(tmp_path / "out.wav"), "--speed", "max")
    assert proc.returncode == 0, proc.stderr
    assert "ended: input done" in proc.stdout and proc.stdout.count("agent speaking") == 1
    # the user stops at 1.5 s, the VAD needs 0.5 s, the model answers 0.3 s later (MP3 adds its decoder delay)
    assert first_answer_at(tmp_path / "out.wav") == pytest.approx(2.3, abs=0.08 if name.endswith(".mp3") else 0.03)


def test_output_format_follows_its_extension(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "in.wav"), speech(16000), 16000)
    proc = run_agent(tmp_path, "--input", str(tmp_path / "in.wav"), "--output", str(tmp_path / "out.flac"),
                     "--speed", "max")
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(tmp_path / "out.flac"))
    assert info.format == "FLAC" and info.samplerate == 24000 and info.duration > 3.0


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error a user sees: exit status 1, one ERROR line, no traceback."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_a_text_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("remember to buy milk\n")
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "notes.txt"), "--speed", "max"))
    assert "notes.txt is text, not audio (it begins b'remember to buy milk\\n'); give an audio file" in error


def test_a_text_file_named_mp3_is_said_to_be_text(tmp_path: Path) -> None:
    """libsndfile's MP3 reader said "File does not exist or is not a regular file (possibly a pipe?)"."""
    (tmp_path / "song.mp3").write_text("not really a song\n")
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "song.mp3"), "--speed", "max"))
    assert "song.mp3 is text, not audio" in error and "pipe" not in error


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "is empty, not an audio file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "looks like a WAV file, but it is cut short or damaged (16 bytes; "),
    (b"RIFF", "looks like a WAV file, but it is cut short or damaged (4 bytes; "),  # it used to "look like text"
    (None, "is a directory, not an audio file"),
])
def test_unreadable_inputs_say_why(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "in.wav"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert reason in one_line_error(run_agent(tmp_path, "--input", str(path), "--speed", "max"))


def test_input_as_its_own_output_is_refused_and_left_alone(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "in.wav"), speech(16000), 16000, subtype="PCM_16")
    before = (tmp_path / "in.wav").read_bytes()
    alias = tmp_path / "sub" / ".." / "in.wav"
    (tmp_path / "sub").mkdir()
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "in.wav"), "--output", str(alias)))
    assert "is also an input: it would be overwritten" in error
    assert (tmp_path / "in.wav").read_bytes() == before


def test_output_dir_keeps_inputs_of_the_same_name_apart(tmp_path: Path) -> None:
    for folder, delay in (("monday", 0), ("tuesday", 1)):
        (tmp_path / folder).mkdir()
        audio = np.concatenate([np.zeros((8000 * delay, 1)), speech(16000)])
        sf.write(str(tmp_path / folder / "call.flac"), audio, 16000)
    proc = run_agent(tmp_path, "--input", str(tmp_path / "monday" / "call.flac"), "--input",
                     str(tmp_path / "tuesday" / "call.flac"), "--output-dir", str(tmp_path / "out"), "--speed", "max")
    assert proc.returncode == 0, proc.stderr
    assert first_answer_at(tmp_path / "out" / "monday" / "call.wav") == pytest.approx(2.3, abs=0.03)
    assert first_answer_at(tmp_path / "out" / "tuesday" / "call.wav") == pytest.approx(2.8, abs=0.03)
    # the same name in one folder (call.wav next to call.flac) has nowhere to go but one file: refused
    sf.write(str(tmp_path / "monday" / "call.wav"), speech(16000), 16000)
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "monday" / "call.flac"), "--input",
                                     str(tmp_path / "monday" / "call.wav"), "--output-dir", str(tmp_path / "out2")))
    assert "would both be written to" in error and not (tmp_path / "out2").exists()


@pytest.mark.parametrize("where", ["a directory", "below a file", "read-only"])
def test_an_unwritable_output_is_one_clear_error_and_leaves_no_file(tmp_path: Path, where: str) -> None:
    sf.write(str(tmp_path / "in.wav"), speech(16000), 16000)
    output = {"a directory": tmp_path, "below a file": tmp_path / "in.wav" / "out.wav",
              "read-only": Path("/sys/agentsession-test-out.wav")}[where]
    if where == "read-only" and os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("no read-only file system here")
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "in.wav"), "--output", str(output)))
    assert f"cannot write {'the output to ' if where == 'a directory' else ''}{output}" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.py", "in.wav"]


FAILING_AGENT = FAKE_AGENT.replace("    await session.start()\n",
                                   "    raise ValueError('OPENAI_API_KEY is not set')\n")


def test_a_job_that_fails_leaves_no_output(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "in.wav"), speech(16000), 16000)
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "in.wav"), "--output",
                                     str(tmp_path / "out.wav"), agent=FAILING_AGENT))
    assert "OPENAI_API_KEY is not set" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.py", "in.wav"]


def test_a_wav_cut_mid_sample_is_read_to_its_end(tmp_path: Path) -> None:
    """An odd byte count (a recording cut off mid-sample) used to kill the input loop and hang the job."""
    write_wav(tmp_path / "whole.wav", AudioFrame.from_float(speech(16000), 16000))
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-1001])  # the header still claims every byte
    proc = run_agent(tmp_path, "--input", str(tmp_path / "cut.wav"), "--output", str(tmp_path / "out.wav"),
                     "--speed", "max", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "ended: input done" in proc.stdout and proc.stdout.count("agent speaking") == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_breaks_mid_way_ends_its_job_with_an_error(tmp_path: Path, workers: int) -> None:
    """A FLAC cut in half: libsndfile loses sync 1.5 s in. The job ends (exit 1), the batch's other job runs."""
    sf.write(str(tmp_path / "good.wav"), speech(16000), 16000)
    sf.write(str(tmp_path / "long.flac"), np.concatenate([speech(16000)] * 4), 16000)
    data = (tmp_path / "long.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    proc = run_agent(tmp_path, "--input", str(tmp_path / "cut.flac"), "--input", str(tmp_path / "good.wav"),
                     "--output-dir", str(tmp_path / "out"), "--speed", "max", "--workers", str(workers), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"ERROR .*the job failed: reading \S*cut.flac failed after \d+\.\d\d s: .*lost sync", proc.stderr)
    assert proc.stdout.count("ended: input done") == 1 and proc.stdout.count("ended: reading") == 1
    assert first_answer_at(tmp_path / "out" / "good.wav") == pytest.approx(2.3, abs=0.03)


def test_a_run_that_fails_mid_way_leaves_a_good_output_alone(tmp_path: Path) -> None:
    """A half-downloaded FLAC used to turn a good 10 s output into the 2 s the failed run produced."""
    sf.write(str(tmp_path / "long.flac"), np.concatenate([speech(16000)] * 4), 16000)
    data = (tmp_path / "long.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    sf.write(str(tmp_path / "out.wav"), speech(24000), 24000)
    good = (tmp_path / "out.wav").read_bytes()
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "cut.flac"), "--output",
                                     str(tmp_path / "out.wav"), "--speed", "max"))
    assert "lost sync" in error and f"{tmp_path / 'out.wav'} left as it was" in error
    assert f"its audio so far is in {tmp_path / 'out.partial.wav'}" in error
    assert (tmp_path / "out.wav").read_bytes() == good
    assert sf.info(str(tmp_path / "out.partial.wav")).duration > 1.0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_sample_rate_no_speech_has_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "in.wav"), "wb") as w:  # a header saying 1 Hz
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.full(20, 4000, np.int16).tobytes())
    sf.write(str(tmp_path / "out.wav"), speech(24000), 24000)
    good = (tmp_path / "out.wav").read_bytes()
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "in.wav"), "--output",
                                     str(tmp_path / "out.wav"), "--speed", "max"))
    assert "says its sample rate is 1 Hz, too low for speech" in error
    assert (tmp_path / "out.wav").read_bytes() == good


def test_an_ogg_cut_short_is_said_to_be_cut_short(tmp_path: Path) -> None:
    """libsndfile finds no samples in it: it used to be reported as a file that "holds no audio"."""
    sf.write(str(tmp_path / "long.ogg"), np.concatenate([speech(48000)] * 3), 48000)
    data = (tmp_path / "long.ogg").read_bytes()
    (tmp_path / "cut.ogg").write_bytes(data[: len(data) // 2])
    error = one_line_error(run_agent(tmp_path, "--input", str(tmp_path / "cut.ogg"), "--speed", "max"))
    assert "cut.ogg (OGG, " in error and "has no complete audio in it: it is probably cut short or damaged" in error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_with_a_writer_is_read_as_audio(tmp_path: Path) -> None:
    """The format check used to eat the FIFO's first 4 KiB, so libsndfile saw no header: "Format not recognised"."""
    sf.write(str(tmp_path / "in.wav"), speech(16000), 16000, subtype="PCM_16")
    os.mkfifo(tmp_path / "fifo")
    writer = subprocess.Popen(["sh", "-c", f"cat '{tmp_path / 'in.wav'}' > '{tmp_path / 'fifo'}'"])
    try:
        proc = run_agent(tmp_path, "--input", str(tmp_path / "fifo"), "--output", str(tmp_path / "out.wav"),
                         "--speed", "max")
        assert proc.returncode == 0, proc.stderr
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
    assert first_answer_at(tmp_path / "out.wav") == pytest.approx(2.3, abs=0.03)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_fifo_nobody_writes_to_waits_without_blocking_signals(tmp_path: Path, sig: signal.Signals) -> None:
    """Opening a FIFO with no writer blocked the event loop's thread: neither SIGTERM nor two SIGINTs ended it."""
    os.mkfifo(tmp_path / "fifo")
    script = tmp_path / "agent.py"
    script.write_text(FAKE_AGENT)
    proc = subprocess.Popen([sys.executable, str(script), "file", "--input", str(tmp_path / "fifo"), "--speed", "max"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = threading.Event()

    def watch() -> None:  # it says it waits for the pipe: the loop runs, the signal handlers are in
        assert proc.stderr is not None
        for line in proc.stderr:
            if "it is a pipe" in line:
                waiting.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert waiting.wait(timeout=30), "it never said it waits for the pipe"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 128 + sig  # cut short: 130 on Ctrl-C, 143 on SIGTERM
    finally:
        proc.kill()
        proc.wait()
        watcher.join(timeout=10)


def test_without_soundfile_file_mode_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsession._errors import AgentSessionError
    from agentsession._file_transport import FileMode, load_soundfile

    monkeypatch.setitem(sys.modules, "soundfile", None)  # what an install without the [files] extra sees
    with pytest.raises(AgentSessionError, match=re.escape("pip install 'agentsession[files]'")):
        load_soundfile()
    assert FileMode().problems() == [("file mode reads and writes audio through soundfile, which is not installed",
                                      "pip install 'agentsession[files]' (soundfile, which bundles libsndfile)")]
    monkeypatch.undo()
    assert FileMode().problems() == []


def test_the_clock_demo_runs_a_tool_offline(tmp_path: Path) -> None:
    """examples/clock.py: the first utterance is scripted as "What time is it?"; the parrot calls get_time."""
    out = tmp_path / "clock.wav"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "clock.py"), "file", "--input", str(REPO / "examples" / "hello.wav"),
         "--output", str(out), "--speed", "max"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith(("agent:", "user:"))]
    assert lines[2:4] == ["user said: What time is it?", "agent said: Let me call get_time."]
    tool = re.fullmatch(r"tool get_time\(\{\}\) -> (It is \d\d:\d\d UTC\.)", lines[4])
    assert tool, proc.stdout
    # the question, the call and the answer after it are one turn
    assert lines[5] == f"agent said: {tool.group(1)}" and lines[6].startswith("turn 2 (user): eou_delay=")
    assert lines[-1] == "ended: input done"
    assert read_wav(out).duration > 4.5


async def test_typed_text_that_names_a_tool_makes_the_parrot_call_it() -> None:
    from agentsession import Agent, AgentSession, ParrotModel, RealTimePipeline, function_tool
    from agentsession.testing import FakeTransport

    class Clock(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="tell the time")

        @function_tool
        async def get_time(self) -> str:
            """The time."""
            return "It is noon."

    session = AgentSession(Clock(), RealTimePipeline(ParrotModel(calls={"TIME": "get_time"})))
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    try:
        result = await session.run(user_input="what time is it?")
        assert [c.name for c in result.function_calls] == ["get_time"]
        assert "It is noon." in result.text
        other = await session.run(user_input="hello")
        assert other.function_calls == [] and "You typed: hello" in other.text
    finally:
        await session.close()
        await transport.close()
