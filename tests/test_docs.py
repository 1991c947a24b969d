"""The plugin guide's snippets work: ``docs/writing-a-plugin.md`` is split into its fenced blocks and run.

Python blocks starting ``# file: NAME`` are saved as NAME in a temporary folder; ``# excerpt: FILE`` blocks
must still be lines of the recorder's FILE; the other Python blocks run as scripts in that folder; the
saved ``test_*.py`` files run under pytest; TOML blocks must parse and declare an ``agentsession`` entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
RECORDER = ROOT / "plugins" / "recorder" / "src" / "agentsession_recorder"
BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w+)\n(.*?)^```$", GUIDE.read_text(), re.S | re.M)]


def _python(prefix: str) -> list[tuple[str, str]]:
    out = []
    for lang, code in BLOCKS:
        first = code.splitlines()[0] if code.strip() else ""
        if lang == "python" and first.startswith(prefix):
            out.append((first.removeprefix(prefix).strip(), code))
    return out


FILES = _python("# file:")
EXCERPTS = _python("# excerpt:")
SCRIPTS = [code for lang, code in BLOCKS if lang == "python" and not code.startswith(("# file:", "# excerpt:"))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("guide")
    for name, code in FILES:
        (folder / name).write_text(code, encoding="utf-8")
    return folder


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTSESSION_DISABLE_PLUGINS"}
    env.update(PYTHONPATH=str(folder), AGENTSESSION_RECORDER_DIR=str(folder / "recordings"))
    return env


def test_the_guide_has_the_expected_snippets() -> None:
    names = [name for name, _ in FILES]
    assert {"loopback.py", "hello_plugin.py", "test_loopback.py", "test_my_model.py"} <= set(names)
    assert len(SCRIPTS) >= 3 and len(EXCERPTS) >= 3
    assert any(lang == "toml" for lang, _ in BLOCKS)


@pytest.mark.parametrize("index", range(len(SCRIPTS)))
def test_script_snippets_run(folder: Path, index: int) -> None:
    script = folder / f"snippet_{index}.py"
    script.write_text(SCRIPTS[index], encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=folder, env=_env(folder), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"snippet {index} failed:\n{SCRIPTS[index]}\n{done.stderr}"


def test_contract_snippets_pass(folder: Path) -> None:
    tests = [str(folder / name) for name, _ in FILES if name.startswith("test_")]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=folder,
                          env=_env(folder), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b1[2-9] passed\b", done.stdout), done.stdout  # 6 transport + 6 model contract tests


@pytest.mark.parametrize("name,code", EXCERPTS)
def test_excerpts_are_from_the_recorder(name: str, code: str) -> None:
    source = {line.strip() for line in (RECORDER / name).read_text().splitlines()}
    for line in code.splitlines()[1:]:
        assert not line.strip() or line.strip() in source, f"{name} no longer has: {line.strip()}"


def test_toml_snippets_declare_an_entry_point() -> None:
    for lang, code in BLOCKS:
        if lang == "toml":
            project = tomllib.loads(code)["project"]
            assert project["entry-points"]["agentsession"], "an entry point in group 'agentsession'"
            assert "agentsession" in project["dependencies"]
