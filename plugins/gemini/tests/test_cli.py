"""End to end: the example agent through the CLI's file mode, talking to the local Live server.

The SDK takes the server's address from ``GOOGLE_GEMINI_BASE_URL`` and trusts its certificate through
``SSL_CERT_FILE``, so the example runs unchanged in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from pathlib import Path

import numpy as np

from agentsession.testing import tone
from agentsession_gemini import plugin
from agentsession_gemini.fake import FakeLiveServer

EXAMPLE = Path(__file__).parents[1] / "examples" / "gemini_agent.py"
KEY = "cli-test-key-abcdefghijkl"


def test_plugin_provides_the_model_without_importing_the_sdk_first() -> None:
    import subprocess
    import sys

    from agentsession_gemini import GeminiRealtime

    model = plugin.agentsession_models()["gemini-live"](api_key="test-key")
    assert isinstance(model, GeminiRealtime)
    check = "import sys, agentsession_gemini.plugin; assert 'google.genai' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)


async def test_example_agent_in_file_mode(tmp_path: Path) -> None:
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    silence = np.zeros((16000, 1), np.int16)  # the user speaks after the greeting, then is quiet
    audio = np.concatenate([silence, tone(0.5, 16000).data, silence[:8000]])
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(audio.tobytes())
    async with FakeLiveServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "SSL_CERT"))}
        env.update(GOOGLE_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=server.base_url, SSL_CERT_FILE=str(server.cert_path))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "file", "--input", str(source), "--output", str(out),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = stdout.decode()
    assert proc.returncode == 0, text
    assert KEY not in text
    assert text.count("agent said: word0 word1 word2 word3 word4") == 2, text  # the greeting and the answer
    assert "user said: hello gemini" in text, text
    assert "error:" not in text, text
    (conn,) = server.connections
    greeting = next(m.client_content for m in conn.messages if m.client_content is not None)
    assert greeting is not None and greeting.turns is not None and greeting.turns[0].parts is not None
    assert "Hello! How can I help you today?" in (greeting.turns[0].parts[0].text or "")
    with wave.open(str(out), "rb") as w:
        played = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        rate = w.getframerate()
    loud = np.count_nonzero(np.abs(played) > 3000) / rate
    assert loud > 0.3, text  # both answers' audio (2 x 0.2 s of tone) reached the output file
