"""The README's Python snippets run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_snippets_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README lost its examples"
    for block in blocks:
        namespace: dict[str, object] = {"__name__": "readme"}
        exec(compile(block, str(README), "exec"), namespace)
        for name, value in namespace.items():
            if name.startswith("test_") and callable(value):
                value()


def test_the_readme_agent_runs_in_file_mode(tmp_path: Path) -> None:
    """"Writing an agent" as a user would run it: saved as agent.py, through the CLI's file mode."""
    import subprocess
    import sys

    [agent] = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "WorkerJob(" in b]
    (tmp_path / "agent.py").write_text(agent)
    hello = README.parent / "examples" / "hello.wav"
    done = subprocess.run([sys.executable, str(tmp_path / "agent.py"), "file", "--input", str(hello), "--speed", "max"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "agent: Hello! How can I help?" in lines and "user: What time is it?" in lines
    assert any(re.fullmatch(r"tool get_time\(\{\}\) -> It is \d\d:\d\d UTC\.", line) for line in lines), lines
    assert any(line.startswith("turn 2 (user): ") for line in lines)  # the call and its answer: one turn
    assert "agent idle -> listening" in lines and "ended: input done" in lines
    assert "closing the session" in lines  # on_exit
