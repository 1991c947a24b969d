"""``agentsession fakes`` (issue 22, item 7): the installed plugins' scripted servers on loopback, and the
examples run offline against them through the CLI's file mode, configured only by the env lines it prints."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession.plugin import FakeService, example_arguments

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "videosdk_style"
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


def speech(path: Path, text: str) -> Path:
    """2 s of silence, ``text`` spoken by espeak-ng, 3 s of silence (the answers fit in it)."""
    spoken = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(spoken), text], check=True, timeout=30)
    with wave.open(str(spoken), "rb") as w:
        rate = w.getframerate()
        voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    audio = np.concatenate([np.zeros(2 * rate, "<i2"), voice, np.zeros(3 * rate, "<i2")])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.tobytes())
    return path


def clean_env() -> dict[str, str]:
    drop = ("OPENAI_", "GOOGLE_", "GEMINI_", "SSL_CERT", "AGENTSESSION_RECORD")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_list_shows_every_installed_fake_and_its_knobs() -> None:
    done = subprocess.run([sys.executable, "-m", "agentsession", "fakes", "--list"], capture_output=True, text=True,
                          timeout=60, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert "openai: OpenAI Realtime" in done.stdout and "gemini: Gemini Live" in done.stdout
    for knob in ("openai.heard=", "openai.tool_arguments={}", "openai.reply_audio=", "gemini.heard="):
        assert f"--set {knob}" in done.stdout, done.stdout
    bad = subprocess.run([sys.executable, "-m", "agentsession", "fakes", "--set", "openai.hearing=x", "--list"],
                         capture_output=True, text=True, timeout=60, env=clean_env())
    assert bad.returncode == 2 and "unknown knob 'hearing' (did you mean 'heard'?)" in bad.stderr


WITHOUT_PYTEST = """
import runpy, sys
sys.modules["pytest"] = sys.modules["pytest_asyncio"] = None  # a plain install: no test tools
import agentsession.testing as kit
try:
    kit.STTStreamContract
except ModuleNotFoundError as exc:
    print("contract:", exc, file=sys.stderr)
sys.argv = ["agentsession", "fakes", "--list"]
runpy.run_module("agentsession", run_name="__main__")
"""


def test_the_fakes_need_no_test_tools() -> None:
    """``pip install agentsession agentsession-openai agentsession-gemini`` brings no pytest: the fakes, which use
    the test kit's fault helpers, must not need it; only the contract suites do, and say so."""
    done = subprocess.run([sys.executable, "-c", WITHOUT_PYTEST], capture_output=True, text=True, timeout=60,
                          env=clean_env())
    assert done.returncode == 0, done.stderr
    assert "openai: OpenAI Realtime" in done.stdout and "gemini: Gemini Live" in done.stdout
    assert ("contract: agentsession.testing.STTStreamContract is a pytest suite: pip install "
            "'agentsession[testing]'") in done.stderr


def test_example_arguments_fit_the_schema() -> None:
    schema = {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer"},
        "note": {"anyOf": [{"type": "null"}, {"type": "string"}]}, "tags": {"type": "array", "items": {"type": "STRING"}},
        "loud": {"type": "boolean", "default": False}}}
    assert example_arguments(schema) == {"city": "Paris", "unit": "c", "days": 1, "note": "example note",
                                         "tags": ["example tags"], "loud": False}


def test_a_knob_keeps_its_type() -> None:
    class Service(FakeService):
        knobs = {"seconds": "how long", "words": "what", "table": "by name"}

        def __init__(self) -> None:
            self.seconds, self.words, self.table = 1.0, "hi", {}

    service = Service()
    service.set("seconds", "2")
    service.set("words", "2")
    service.set("table", '{"get_weather": {"city": "Rome"}}')
    assert service.values() == {"seconds": 2.0, "words": "2", "table": {"get_weather": {"city": "Rome"}}}
    with pytest.raises(ValueError, match="knob 'seconds' takes a float"):
        service.set("seconds", "soon")


async def test_examples_run_offline_against_the_fakes(tmp_path: Path) -> None:
    fakes = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentsession", "fakes",
        "--set", "openai.heard=What is the weather in Paris? get_weather",
        "--set", "gemini.heard=I would like to book a flight to Rome, transfer_to_booking",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env())
    assert fakes.stdout is not None and fakes.stderr is not None
    try:
        env = clean_env()
        async with asyncio.timeout(TIMEOUT):
            while (line := (await fakes.stdout.readline()).decode()).strip() != "serving":
                assert line, (await fakes.stderr.read()).decode()
                found = re.match(r"export (\w+)=(.*)$", line.strip())
                if found:
                    env[found.group(1)] = shlex.split(found.group(2))[0]
        assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:") and env["OPENAI_API_KEY"]
        assert env["GOOGLE_GEMINI_BASE_URL"].startswith("https://127.0.0.1:") and env["SSL_CERT_FILE"].endswith(".pem")

        async def example(name: str, text: str) -> tuple[int, str, str]:
            said = speech(tmp_path / f"{name}-in.wav", text)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / f"{name}.py"), "file", "--input", str(said), "--output",
                str(tmp_path / f"{name}-out.wav"), env=env, cwd=str(EXAMPLES),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
            return proc.returncode or 0, out.decode(), err.decode()

        runs = dict(zip(["realtime_tools", "custom_flow", "multi_agent_switch_gemini"], await asyncio.gather(
            example("realtime_tools", "What is the weather in Paris"),  # OpenAI Realtime, a tool with example args
            example("custom_flow", "What is the weather in Paris"),  # the cascade: transcription, chat, speech
            example("multi_agent_switch_gemini", "I would like to book a flight to Rome"),  # Gemini Live
        ), strict=True))
        for name, (code, out, err) in runs.items():
            assert code == 0 and "Traceback" not in err and " ERROR " not in err, f"{name}\n{out}\n{err}"
        assert "### Getting weather for Paris" in runs["realtime_tools"][1]  # called with its schema's example
        assert "Turn 1 started: What is the weather in Paris? get_weather" in runs["custom_flow"][1]
        assert "Transferring to the booking specialist" in runs["multi_agent_switch_gemini"][1]
        fakes.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(fakes.wait(), TIMEOUT) == 0
        assert "Traceback" not in (await fakes.stderr.read()).decode()
    finally:
        if fakes.returncode is None:
            fakes.kill()
            await fakes.wait()
