"""OpenAIRealtime's provider link under faults: the core contract, against the fake Realtime server."""

from __future__ import annotations

from typing import Any

import numpy as np

from agentsession.testing import ProviderLinkContract
from agentsession_openai import OpenAIRealtime
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer


class TestOpenAIRealtimeLink(ProviderLinkContract):
    sample_rate = 24000
    secret = API_KEY
    max_reconnect_delay = 8.0

    def server(self) -> FakeRealtimeServer:
        return FakeRealtimeServer()

    def create_model(self, server: FakeRealtimeServer, **link: Any) -> OpenAIRealtime:
        return OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, input_transcription=None, **link)

    async def ask_long_answer(self, model: Any, server: FakeRealtimeServer, response_id: str) -> None:
        server.reply_audio, server.chunk_delay = 90.0, 0.1  # streamed in real time for a minute and a half
        await model.say("A long story.", response_id=response_id)

    async def ask_answer(self, model: Any, server: FakeRealtimeServer, response_id: str) -> None:
        server.reply_audio, server.chunk_delay = 0.3, 0.002
        await model.say("Hello.", response_id=response_id)

    def stall(self, server: FakeRealtimeServer) -> None:
        server.stall()

    def stall_new(self, server: FakeRealtimeServer) -> None:
        server.stall_new = True

    def trickle(self, server: FakeRealtimeServer) -> None:
        server.trickle()

    async def drop(self, server: FakeRealtimeServer, reason: str = "") -> None:
        if reason:
            await server.close(reason)
        else:
            await server.drop()

    def refuse(self, server: FakeRealtimeServer, n: int) -> None:
        server.refuse = n

    def hang(self, server: FakeRealtimeServer) -> None:
        server.hang()

    async def echo_secret(self, server: FakeRealtimeServer) -> None:
        await server.echo_key()

    async def send_raw(self, server: FakeRealtimeServer, data: str) -> None:
        await server.send_raw(data)

    def connections(self, server: FakeRealtimeServer) -> int:
        return len(server.connections)

    async def wait_connections(self, server: FakeRealtimeServer, n: int) -> None:
        while len(server.connections) < n:
            server.connected.clear()
            await server.connected.wait()

    def audio_received(self, server: FakeRealtimeServer) -> np.ndarray:
        return np.frombuffer(bytes(server.current.audio), np.int16)

    async def wait_audio(self, server: FakeRealtimeServer, samples: int) -> None:
        conn = server.current
        await server.wait_for("input_audio_buffer.append",
                              count=server.count("input_audio_buffer.append") - len(conn.of_type(
                                  "input_audio_buffer.append")) + -(-samples // (self.sample_rate // 10)),
                              timeout=60.0)
