"""The ``agentsession`` command in a subprocess, with real plugin distributions installed: the stub plugin
(a mode, observers, a wake-up handler) and a broken one that fails to import."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentsession import mask

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "sk-cli-test-abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the fixture plugin distributions installed (put on PYTHONPATH, never in the venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(FIXTURES / "stub-plugin"), str(FIXTURES / "broken-plugin")],
        check=True, capture_output=True, timeout=300,
    )
    return target


def agentsession(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("AGENTSESSION_DISABLE_PLUGINS", "OPENAI_API_KEY")}
    environ.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "agentsession", *args], env=environ, capture_output=True,
                          text=True, timeout=120)


def row(out: str, entry_point: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [entry_point])


def entry(out: str, entry_point: str) -> str:
    """The PROVIDES text of ``entry_point``'s row, its continuation lines joined."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [entry_point])
    column = lines[0].index("PROVIDES")
    text = [lines[at][column:]]
    for line in lines[at + 1 :]:
        if line[:column].strip() or not line.strip():
            break
        text.append(line[column:])
    return " ".join(text)


def test_plugins_lists_every_plugin_and_the_broken_one_with_its_error(site: Path) -> None:
    done = agentsession(site, "plugins")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    header = out.splitlines()[0].split()
    assert header[:4] == ["ENTRY", "POINT", "DISTRIBUTION", "VERSION"]
    assert row(out, "stub")[:6] == ["stub", "agentsession-stub-plugin", "0.0.1", "loaded", "modes:", "stub;"]
    stub = entry(out, "stub")  # what it provides, wrapped over its lines
    assert "hooks: agent_state_changed, session_closed, session_started, transports, wake_up" in stub, stub
    assert row(out, "broken")[:4] == ["broken", "agentsession-broken-plugin", "0.0.1", "BROKEN"]
    assert row(out, "recorder")[:4] == ["recorder", "agentsession-recorder", "0.1.0", "loaded"]
    assert row(out, "(core)")[:7] == ["(core)", "agentsession", "0.1.0", "built-in", "modes:", "file,", "replay;"]
    words = " ".join(out.split())  # the notes below the table are wrapped too
    assert "No module named 'agentsession_missing_dependency'" in words
    assert "AGENTSESSION_DISABLE_PLUGINS=broken" in words
    assert max(len(line) for line in out.splitlines()) <= 100, out  # fits a 100-column terminal


def test_plugins_piped_into_head_ends_quietly(site: Path) -> None:
    """``agentsession plugins --json | head``: the reader closing the pipe early is no error and no traceback."""
    environ = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(f"{shlex.quote(sys.executable)} -m agentsession plugins --json | head -1", shell=True,
                          env=environ, capture_output=True, text=True, timeout=120)
    assert done.stdout == "[\n" and done.stderr == "", done.stderr


def test_plugins_json(site: Path) -> None:
    done = agentsession(site, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins: dict[str, dict[str, Any]] = {p["name"]: p for p in json.loads(done.stdout)}
    stub = plugins["stub"]
    assert stub["status"] == "loaded" and stub["transports"] == ["stub"] and stub["models"] == []
    assert stub["hooks"] == sorted(["agentsession_transports", "agentsession_session_started",
                                    "agentsession_agent_state_changed", "agentsession_wake_up",
                                    "agentsession_session_closed"])
    assert stub["value"] == "agentsession_stub_plugin" and stub["version"] == "0.0.1"
    broken = plugins["broken"]
    assert broken["status"] == "broken" and broken["distribution"] == "agentsession-broken-plugin"
    assert "ModuleNotFoundError" in broken["error"]
    assert plugins["recorder"]["hooks"] == ["agentsession_link_tap", "agentsession_metrics_collected",
                                            "agentsession_session_closed", "agentsession_session_started"]
    assert plugins["(core)"]["status"] == "built-in"


def test_blocked_plugins_are_listed_not_loaded(site: Path) -> None:
    done = agentsession(site, "plugins", "--json", AGENTSESSION_DISABLE_PLUGINS="broken,stub")
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["broken"]["status"] == "blocked" and plugins["stub"]["status"] == "blocked"
    assert plugins["stub"]["transports"] == []
    text = agentsession(site, "plugins", AGENTSESSION_DISABLE_PLUGINS="broken").stdout
    assert row(text, "broken")[3] == "blocked" and "BROKEN" not in text


def test_doctor_fails_while_a_plugin_is_broken_and_says_how_to_fix_it(site: Path) -> None:
    done = agentsession(site, "doctor", "--mode", "file")
    assert done.returncode == 1, done.stdout
    out = done.stdout
    fail = next(line for line in out.splitlines() if line.split()[:3] == ["FAIL", "plugin", "broken:"])
    assert "agentsession-broken-plugin" in fail and "No module named 'agentsession_missing_dependency'" in fail
    assert "fix:" in out and "AGENTSESSION_DISABLE_PLUGINS=broken" in out
    assert "problem(s) stop mode 'file'" in out


def test_doctor_checks_what_the_chosen_mode_needs(site: Path) -> None:
    ok = agentsession(site, "doctor", "--mode", "file", AGENTSESSION_DISABLE_PLUGINS="broken")
    assert ok.returncode == 0, ok.stdout
    assert "ok    plugin stub:" in ok.stdout and "modes file" not in ok.stdout
    assert "is blocked by AGENTSESSION_DISABLE_PLUGINS" in ok.stdout
    stub = agentsession(site, "doctor", "--mode", "stub", AGENTSESSION_DISABLE_PLUGINS="broken")
    assert stub.returncode == 0, stub.stdout
    unplugged = agentsession(site, "doctor", "--mode", "stub", AGENTSESSION_DISABLE_PLUGINS="broken",
                             STUB_DEVICE_UNPLUGGED="1")
    assert unplugged.returncode == 1, unplugged.stdout
    assert "FAIL  mode stub: the stub device is unplugged" in unplugged.stdout
    assert "fix: plug the stub device back in" in unplugged.stdout
    other = agentsession(site, "doctor", "--mode", "file", AGENTSESSION_DISABLE_PLUGINS="broken",
                         STUB_DEVICE_UNPLUGGED="1")
    assert other.returncode == 0 and "mode stub" not in other.stdout
    missing = agentsession(site, "doctor", "--mode", "teleport", AGENTSESSION_DISABLE_PLUGINS="broken")
    assert missing.returncode == 1
    assert "no installed plugin provides mode 'teleport'" in missing.stdout
    console = agentsession(site, "doctor", "--mode", "console", "--json", AGENTSESSION_DISABLE_PLUGINS="broken")
    report = json.loads(console.stdout)
    checks = [c for c in report["checks"] if c["label"] == "mode console"]
    assert checks and all(c["needed_by"] == ["console"] for c in checks if not c["ok"])
    failed = [c["label"] for c in report["checks"] if c["status"] == "FAIL"]
    assert (console.returncode == 1) == bool(failed) == (not report["ok"])
    assert set(failed) <= {"mode console"}  # only what the console plugin says it needs


def test_doctor_checks_only_what_the_mode_needs(site: Path) -> None:
    """The file mode needs no sound card nor browser: core checks nothing of a plugin's mode."""
    done = agentsession(site, "doctor", "--mode", "file", AGENTSESSION_DISABLE_PLUGINS="broken",
                        STUB_DEVICE_UNPLUGGED="1")
    assert done.returncode == 0, done.stdout
    out = done.stdout
    assert "ok    mode file: has what it needs" in out
    for other in ("PortAudio", "audio devices", "Chromium", "mode console", "mode stub", "mode playground"):
        assert other not in out, out
    every = agentsession(site, "doctor", AGENTSESSION_DISABLE_PLUGINS="broken", STUB_DEVICE_UNPLUGGED="1")
    assert "warn  mode stub: the stub device is unplugged" in every.stdout  # no mode: every mode's, as warnings


def test_doctor_never_prints_a_key(site: Path) -> None:
    done = agentsession(site, "doctor", AGENTSESSION_DISABLE_PLUGINS="broken", OPENAI_API_KEY=SECRET)
    assert SECRET not in done.stdout and SECRET not in done.stderr
    if "agentsession-openai" in done.stdout:
        assert f"OPENAI_API_KEY: set ({mask(SECRET)})" in done.stdout


def test_the_console_script_and_module_entry(site: Path) -> None:
    script = Path(sys.executable).with_name("agentsession")
    assert script.exists(), "pip install -e core installs the `agentsession` console script"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("agentsession ")
    usage = agentsession(site)
    assert usage.returncode == 2 and "plugins" in usage.stderr and "doctor" in usage.stderr


def test_report_of_a_missing_or_empty_file_is_an_error(site: Path, tmp_path: Path) -> None:
    missing = agentsession(site, "report", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n", encoding="utf-8")
    done = agentsession(site, "report", str(empty))
    assert done.returncode == 2 and "holds no recording" in done.stderr


def test_report_of_a_folder_reads_the_recordings_in_it(site: Path, tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("a", "b"):
        lines = [{"event": "session_started", "t": 0.0, "time": 1_700_000_000.0},
                 {"event": "metrics", "t": 2.0, "turn": 1, "trigger": "user", "e2e": 0.5000000000000004,
                  "ttfa": 0.3}]
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    done = agentsession(site, "report", str(folder))
    assert done.returncode == 0, done.stderr
    assert "over all 2 recordings" in done.stdout and "0.5000000000000004" not in done.stdout
    empty = tmp_path / "none"
    empty.mkdir()
    nothing = agentsession(site, "report", str(empty))
    assert nothing.returncode == 2 and "holds no recordings" in nothing.stderr
