"""A session over OpenAIRealtime when the link stalls or drops: detected, reported, states re-derived, answered.

On core's virtual clock (real sockets on loopback), with the model's default bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from agentsession import Agent, AgentSession, AgentState, AudioFrame, RealTimePipeline, UserState
from agentsession.testing import FakeTransport, virtual_clock, wait_for_state
from agentsession_openai import OpenAIRealtime
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

RATE = 24000
TICK = 0.5


class Run:
    def __init__(self, server: FakeRealtimeServer, model: OpenAIRealtime, session: AgentSession,
                 transport: FakeTransport) -> None:
        self.server, self.model, self.session, self.transport = server, model, session, transport
        self.events: list[tuple[str, float, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        for name in ("reconnecting", "reconnected", "error"):
            session.on(name, lambda data, name=name: self._on(name, data))

    def _on(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, asyncio.get_running_loop().time(), data))
        self._changed.set()

    def names(self) -> list[str]:
        return [name for name, _, _ in self.events]

    async def until(self, name: str, timeout: float = 60.0) -> tuple[float, dict[str, Any]]:
        async def find() -> tuple[float, dict[str, Any]]:
            while True:
                found = next(((t, d) for n, t, d in self.events if n == name), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)


@asynccontextmanager
async def running(**model: Any) -> AsyncIterator[Run]:
    async with FakeRealtimeServer() as server:
        openai = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, **model)
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(Agent(instructions="You are a test agent."), RealTimePipeline(openai),
                               min_interruption_duration=0.2)
        run = Run(server, openai, session, transport)
        await session.start(transport=transport)
        try:
            yield run
        finally:
            await session.close()
            await transport.close()


def voice(seconds: float) -> AudioFrame:
    t = np.arange(int(seconds * RATE)) / RATE
    return AudioFrame((0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).reshape(-1, 1), RATE)


def silence(seconds: float) -> AudioFrame:
    return AudioFrame(np.zeros((int(seconds * RATE), 1), np.int16), RATE)


@virtual_clock
async def test_a_slow_loris_mid_answer_is_left_and_the_agent_is_not_stuck_speaking() -> None:
    async with running() as run:
        run.server.reply_audio, run.server.chunk_delay = 60.0, 0.1  # streamed in real time for a minute
        await run.session.say("Let me tell you a long story.")
        await wait_for_state(run.session, AgentState.SPEAKING)
        loop = asyncio.get_running_loop()
        run.server.trickle()
        trickled_at = loop.time()
        at, reconnecting = await run.until("reconnecting")
        assert run.model.stall_timeout <= at - trickled_at <= run.model.stall_timeout + TICK + 0.2
        assert reconnecting["attempt"] == 1 and "no progress of the response" in reconnecting["reason"]
        await wait_for_state(run.session, AgentState.IDLE, timeout=1.0)  # the cut answer's end is known
        _, reconnected = await run.until("reconnected")
        assert reconnected["audio_lost"] == 0.0 and reconnected["downtime"] > 0
        assert run.names() == ["error", "reconnecting", "reconnected"]  # the error: the answer was cut
        run.server.reply_audio, run.server.chunk_delay = 0.3, 0.002
        result = await run.session.run(user_input="Thanks!", timeout=10.0)
        assert result.text == "You said: Thanks!"


@virtual_clock
async def test_a_stall_while_the_user_speaks_resets_their_state_and_their_turn_is_answered_after_it() -> None:
    async with running(stall_timeout=5.0, input_transcription=None) as run:
        feeding = asyncio.ensure_future(run.transport.feed(voice(2.0)))
        await wait_for_state(run.session, UserState.SPEAKING)
        run.server.stall()  # the server heard the turn start, and nothing after
        await feeding
        await run.transport.feed(silence(0.5))
        assert run.session.user_state is UserState.SPEAKING  # nothing told it otherwise yet
        feeding = asyncio.ensure_future(run.transport.feed(silence(30.0)))
        await run.until("reconnecting")
        assert run.session.user_state is not UserState.SPEAKING  # re-derived: that link's word is void
        await run.until("reconnected")
        # the whole turn (kept from its start) reached the new connection, which answers it
        await wait_for_state(run.session, AgentState.SPEAKING, timeout=10.0)
        await wait_for_state(run.session, AgentState.IDLE, timeout=10.0)
        said = np.frombuffer(bytes(run.server.current.audio), np.int16)
        assert np.abs(said[: int(0.5 * RATE)]).max() > 5000  # it begins with the user's voice
        feeding.cancel()
