"""GeminiRealtime's provider link under faults: the core contract, against the local Live server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agentsession.testing import ProviderLinkContract
from agentsession_gemini import GeminiRealtime
from agentsession_gemini.fake import FakeLiveServer

KEY = "test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


class TestGeminiRealtimeLink(ProviderLinkContract):
    sample_rate = 16000
    secret = KEY
    max_reconnect_delay = 5.0

    def server(self) -> FakeLiveServer:
        return FakeLiveServer()

    def create_model(self, server: FakeLiveServer, **link: Any) -> GeminiRealtime:
        return GeminiRealtime(api_key=KEY, http_options=server.http_options(), max_reconnects=5, **link)

    async def ask_long_answer(self, model: Any, server: FakeLiveServer, response_id: str) -> None:
        server.reply_chunks, server.chunk_delay = 2500, 0.04  # 100 s of answer, in real time
        await model.send_text("Tell me a long story.", response_id=response_id)

    async def ask_answer(self, model: Any, server: FakeLiveServer, response_id: str) -> None:
        server.reply_chunks, server.chunk_delay = 3, 0.0
        await model.send_text("Hello.", response_id=response_id)

    def stall(self, server: FakeLiveServer) -> None:
        server.stall()

    def stall_new(self, server: FakeLiveServer) -> None:
        server.stall_new = True

    def trickle(self, server: FakeLiveServer) -> None:
        server.trickle()

    async def drop(self, server: FakeLiveServer, reason: str = "") -> None:
        if reason:
            await server.close(reason)
        else:
            server.drop()

    def refuse(self, server: FakeLiveServer, n: int) -> None:
        server.refuse = n

    def hang(self, server: FakeLiveServer) -> None:
        server.hang()

    async def echo_secret(self, server: FakeLiveServer) -> None:
        # the Live API says what went wrong in its close frames
        await server.close(f"API key not valid: {server.current.headers['x-goog-api-key']}")

    async def send_raw(self, server: FakeLiveServer, data: str) -> None:
        await server.send_raw(data)

    def connections(self, server: FakeLiveServer) -> int:
        return len(server.connections)

    async def wait_connections(self, server: FakeLiveServer, n: int) -> None:
        await server.wait_connections(n)

    def audio_received(self, server: FakeLiveServer) -> np.ndarray:
        return np.frombuffer(bytes(server.current.audio), np.int16)

    async def wait_audio(self, server: FakeLiveServer, samples: int) -> None:
        await server.wait_audio(server.current, 2 * samples, timeout=60.0)
