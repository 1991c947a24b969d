"""End to end: the Google cascade example through the CLI's file mode, against the local Gemini API server.

The SDK takes the server's address from ``GOOGLE_GEMINI_BASE_URL``, so the example runs unchanged in a
subprocess; the user's turn is real speech rendered by espeak-ng.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession_gemini.fake_http import FakeGeminiHTTP

EXAMPLE = Path(__file__).parents[1] / "examples" / "google_cascade_agent.py"
KEY = "cascade-cli-key-abcdefghijkl"


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), "What is the weather in Paris?"], check=True)
    return path


async def test_google_cascade_in_file_mode(tmp_path: Path, speech: Path) -> None:
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    with wave.open(str(speech)) as w:
        rate = w.getframerate()
        voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    lead, tail = np.zeros(int(2.5 * rate), np.int16), np.zeros(int(1.5 * rate), np.int16)  # after the greeting
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([lead, voice, tail]).tobytes())
    async with FakeGeminiHTTP(KEY) as server:
        server.tool_arguments["get_weather"] = {"city": "Paris"}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_"))}
        env.update(GOOGLE_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=server.base_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "file", "--input", str(source), "--output", str(out),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = stdout.decode()
    assert proc.returncode == 0, text
    assert KEY not in text and "error:" not in text, text
    assert server.protocol_errors == []
    assert "user said: what is the weather in paris" in text, text
    assert "tool: get_weather" in text, text
    found = json.dumps({"city": "Paris", "temp": 21, "unit": "c"}, sort_keys=True)
    assert f"agent said: Here is what I found: {found}" in text, text
    kinds = [r.kind for r in server.requests]
    # the greeting spoken; the turn transcribed, a tool call, its answer, each sentence of it spoken
    assert kinds[:4] == ["speech", "transcription", "chat", "chat"] and set(kinds[4:]) == {"speech"}, kinds
    assert {r.model for r in server.of_kind("chat")} == {"gemini-2.5-flash-lite"}
    voices = {r.generation.speech_config.voice_config.prebuilt_voice_config.voice_name  # type: ignore[union-attr]
              for r in server.of_kind("speech")}
    assert voices == {"Kore"}
    with wave.open(str(out), "rb") as w:
        played = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        out_rate = w.getframerate()
    said = sum(len(" ".join(p.text or "" for c in r.contents for p in c.parts or [])) for r in server.of_kind("speech"))
    loud = np.count_nonzero(np.abs(played) > 3000) / out_rate
    assert loud == pytest.approx(0.02 * said, rel=0.2), text  # all the speech generated reached the output file
