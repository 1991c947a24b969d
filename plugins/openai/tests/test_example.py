"""examples/assistant.py run by the CLI in a subprocess: file transport, OpenAIRealtime, the fake server."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession import AudioFrame
from agentsession.testing import tone
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "assistant.py"


def write_wav(path: Path, frame: AudioFrame) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(frame.sample_rate)
        out.writeframes(frame.to_bytes())


async def run_example(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), *args, env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


async def test_without_a_key_the_example_fails_naming_the_variable(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", AudioFrame.silence(0.2, 16000))
    code, out, err = await run_example(clean_env(), "file", "--input", str(tmp_path / "in.wav"))
    assert code != 0
    assert "OPENAI_API_KEY" in err


async def test_example_end_to_end_against_the_fake_server(realtime_server: FakeRealtimeServer, tmp_path: Path) -> None:
    realtime_server.transcript = "what is the weather in Paris, use get_weather"
    realtime_server.tool_arguments["get_weather"] = {"city": "Paris"}
    realtime_server.reply_audio = 0.4
    # 1.6 s of silence first: the greeting is over before the user speaks, even on a loaded machine
    user = np.concatenate([AudioFrame.silence(1.6, 16000).data, tone(0.6, 16000).data,
                           AudioFrame.silence(0.5, 16000).data])
    write_wav(tmp_path / "in.wav", AudioFrame(user, 16000))
    env = {**clean_env(), "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": realtime_server.base_url}
    code, out, err = await run_example(env, "file", "--input", str(tmp_path / "in.wav"),
                                       "--output", str(tmp_path / "out.wav"))
    assert code == 0, err
    agent = [line.removeprefix("agent: ") for line in out.splitlines() if line.startswith("agent: ")]
    assert agent == ["idle -> starting", "starting -> idle",  # start() announces STARTING: a real change
                     "idle -> thinking", "thinking -> speaking", "speaking -> idle",  # the greeting
                     "idle -> listening", "listening -> thinking", "thinking -> speaking", "speaking -> idle",
                     "idle -> closing"]
    assert 'tool: get_weather({"city": "Paris"})' in out
    assert 'agent said: The answer is {"city": "Paris", "temp": 21' in out
    with wave.open(str(tmp_path / "out.wav"), "rb") as wav:
        assert wav.getframerate() == 24000
        audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float64)
    blocks = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    loud = blocks[np.sqrt(np.mean(blocks**2, axis=1)) > 1000]
    assert len(loud) * 0.02 == pytest.approx(2 * realtime_server.reply_audio, abs=0.05)  # greeting + answer
    spectrum = np.abs(np.fft.rfft(loud.ravel()))
    assert np.argmax(spectrum) * 24000 / len(loud.ravel()) == pytest.approx(330, abs=5)  # the fake's tone
