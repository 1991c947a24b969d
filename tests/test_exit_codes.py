"""Exit codes through the CLI in a subprocess, the same with and without ``--workers`` (issue 22, item 5).

File mode: 0 when every input ran to its end, 130 when Ctrl-C (143 when SIGTERM) cut it short (the output is
partial), 1 on failure. The long-running modes (console, playground) exit 0 on a clean Ctrl-C/SIGTERM shutdown.
Each signal is sent once the job has started (a line it prints), never after a sleep.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PARROT = ROOT / "examples" / "parrot.py"
STARTED = re.compile(r"^(\[worker \d+\] )?agent: starting -> idle$")
TIMEOUT = 60.0


def silence(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(np.zeros(int(24000 * seconds), np.int16).tobytes())
    return path


async def run(args: list[str], *, started: int = 0, sig: int | None = None,
              stdin: int | None = None) -> tuple[int, str, str]:
    """Run ``parrot.py args``; with ``sig``, send it once ``started`` jobs printed that they started."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PARROT), *args, stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT / "examples"),
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_task = asyncio.ensure_future(proc.stderr.read())
    lines: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            seen = 0
            while sig is not None and seen < started:
                raw = await proc.stdout.readline()
                assert raw, "the job ended before it started: " + "\n".join(lines) + (await err_task).decode()
                lines.append(raw.decode().rstrip("\n"))
                seen += bool(STARTED.match(lines[-1]))
            if sig is not None:
                proc.send_signal(sig)
            lines += (await proc.stdout.read()).decode().splitlines()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, "\n".join(lines), (await err_task).decode()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_file_mode_cut_short_by_a_signal_exits_128_plus_it(tmp_path: Path, workers: int, sig: int,
                                                                 code: int) -> None:
    inputs = [silence(tmp_path / f"in{k}.wav", 30.0) for k in range(2)]
    args = ["file", *(a for i in inputs for a in ("--input", str(i))), "--output-dir", str(tmp_path / "out"),
            "--workers", str(workers)]
    got, out, err = await run(args, started=2, sig=sig)
    assert got == code, f"{out}\n{err}"
    assert "Traceback" not in err, err
    assert out.count("ended: interrupted") == 2, out  # each job was shut down, not killed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["in0.wav", "in1.wav"]  # the partial outputs


@pytest.mark.parametrize("workers", [1, 2])
async def test_file_mode_run_to_its_end_exits_0_and_a_failure_1(tmp_path: Path, workers: int) -> None:
    hello = str(ROOT / "examples" / "hello.wav")
    ok = ["file", "--input", hello, "--input", str(silence(tmp_path / "quiet.wav", 1.0)), "--output-dir",
          str(tmp_path / "out"), "--speed", "max", "--workers", str(workers)]
    got, out, err = await run(ok)
    assert got == 0, f"{out}\n{err}"
    failing = ["file", "--input", hello, "--input", str(tmp_path / "missing.wav"), "--speed", "max",
               "--workers", str(workers)]
    got, out, err = await run(failing)
    assert got == 1, f"{out}\n{err}"
    assert "input file not found" in err


@pytest.mark.skipif(importlib.util.find_spec("agentsession_console_io") is None, reason="needs agentsession-console-io")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_console_mode_stopped_by_a_signal_exits_0(sig: int) -> None:
    got, out, err = await run(["console", "--text"], started=1, sig=sig, stdin=subprocess.PIPE)
    assert got == 0, f"{out}\n{err}"
    assert "Traceback" not in err, err
    assert "session summary" in out  # a clean shutdown prints the summary


@pytest.mark.skipif(importlib.util.find_spec("agentsession_webrtc") is None, reason="needs agentsession-webrtc")
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_playground_stopped_by_a_signal_exits_0(workers: int, sig: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PARROT), "playground", "--port", "0", "--workers", str(workers),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            while b"playground: open" not in (line := await proc.stdout.readline()):
                assert line, (await proc.stderr.read()).decode()
            proc.send_signal(sig)
            await proc.stdout.read()
            err = (await proc.stderr.read()).decode()
            assert await proc.wait() == 0, err
            assert "Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
