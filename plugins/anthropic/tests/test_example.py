"""examples/claude_agent.py as a user runs it: the CLI's file mode, an espeak-ng recording in, the agent's audio out,
OpenAI's and Anthropic's fake servers reached through the SDKs' own base-URL variables."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession_anthropic.fake import API_KEY, FakeAnthropic
from agentsession_openai.fake.http import API_KEY as OPENAI_KEY
from agentsession_openai.fake.http import FakeOpenAIHTTP

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "claude_agent.py"

STREAMING_STT_REFUSED = "unexpected request GET /v1/realtime?intent=transcription"

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


def speech(path: Path, text: str, lead: float, tail: float) -> None:
    """``lead`` seconds of silence, ``text`` said by espeak-ng, ``tail`` seconds of silence."""
    spoken = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(spoken), text], check=True, timeout=30)
    with wave.open(str(spoken), "rb") as w:
        rate = w.getframerate()
        voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    audio = np.concatenate([np.zeros(int(lead * rate), "<i2"), voice, np.zeros(int(tail * rate), "<i2")])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.tobytes())


def loud_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    n = int(rate * 0.02)
    blocks = audio[: len(audio) // n * n].reshape(-1, n)
    return float(np.count_nonzero(np.sqrt(np.mean(blocks**2, axis=1)) > 1000) * 0.02)


async def test_a_spoken_question_is_answered_by_claude_with_a_tool(tmp_path: Path) -> None:
    speech(tmp_path / "in.wav", "What is the weather in Paris", lead=2.0, tail=0.3)
    async with FakeOpenAIHTTP() as openai_server, FakeAnthropic() as anthropic_server:
        openai_server.transcript = "What is the weather in Paris? Use get_weather."
        anthropic_server.tool_arguments["get_weather"] = {"city": "Paris"}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
        env.update(OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=openai_server.base_url,
                   ANTHROPIC_API_KEY=API_KEY, ANTHROPIC_BASE_URL=anthropic_server.base_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "file", "--input", str(tmp_path / "in.wav"),
            "--output", str(tmp_path / "out.wav"), env=env, cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    printed = out.decode().splitlines()
    assert "user said: What is the weather in Paris? Use get_weather." in printed
    assert 'tool: get_weather({"city": "Paris"})' in printed
    assert 'agent said: The answer is {"city": "Paris", "temp": 21, "sky": "sunny"}. Anything else?' in printed
    assert anthropic_server.protocol_errors == []
    # the HTTP fake has no streaming transcription: OpenAISTT falls back to one request per utterance
    assert [e for e in openai_server.protocol_errors if e != STREAMING_STT_REFUSED] == []
    assert "Traceback" not in err.decode()
    first, second = anthropic_server.requests
    assert first["model"] == "claude-haiku-4-5" and first["max_tokens"] == 300
    assert first["system"][0]["text"].startswith("You are a friendly weather assistant")
    assert [b["type"] for b in second["messages"][-1]["content"]] == ["tool_result"]
    spoken = [r["input"] for r in openai_server.speech_requests]
    assert spoken == ["Hello! Ask me about the weather.", "Let me check.",
                      'The answer is {"city": "Paris", "temp": 21, "sky": "sunny"}.', "Anything else?"]
    # the fake speaks 0.02 s of tone per character: all of it reached the output
    assert loud_seconds(tmp_path / "out.wav") == pytest.approx(0.02 * sum(map(len, spoken)), abs=0.2)
