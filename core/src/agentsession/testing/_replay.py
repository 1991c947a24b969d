"""``replay_cassette``/``assert_replays``: a recorded conversation as a regression test (``pytest``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReplayResult:
    """What ``python AGENT replay CASSETTE`` did: its exit code, its report (stdout) and its log (stderr)."""

    code: int
    report: str
    log: str

    @property
    def ok(self) -> bool:
        """Whether the run matched the recording (exit 0)."""
        return self.code == 0


def replay_cassette(cassette: str | Path, agent: str | Path, *, speed: str = "max", tolerance: float | None = None,
                    output: str | Path | None = None, env: Mapping[str, str] | None = None,
                    timeout: float = 300.0) -> ReplayResult:
    """Run ``python agent replay cassette`` (the agent's own program, through its CLI, as CI would) and return
    what it said. ``env`` is added to this process's environment (the agent's settings under test)."""
    args = [sys.executable, str(agent), "replay", str(cassette), "--speed", speed]
    if tolerance is not None:
        args += ["--tolerance", str(tolerance)]
    if output is not None:
        args += ["--output", str(output)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=Path(agent).resolve().parent)
    return ReplayResult(done.returncode, done.stdout, done.stderr)


def assert_replays(cassette: str | Path, agent: str | Path, *, speed: str = "max", tolerance: float | None = None,
                   output: str | Path | None = None, env: Mapping[str, str] | None = None,
                   timeout: float = 300.0) -> ReplayResult:
    """:func:`replay_cassette`, failing (``AssertionError``, with the replay's report) unless nothing changed."""
    result = replay_cassette(cassette, agent, speed=speed, tolerance=tolerance, output=output, env=env,
                             timeout=timeout)
    if not result.ok:
        tail = "\n".join(result.log.splitlines()[-15:])
        raise AssertionError(f"the replay of {cassette} differs from the recording (exit {result.code}):\n"
                             f"{result.report}\n{tail}")
    return result
