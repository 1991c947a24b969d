"""GeminiRealtime inside a real AgentSession (FakeTransport, real clock) against the local Live server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from agentsession import (
    Agent,
    AgentSession,
    AgentState,
    AudioFrame,
    ChatMessage,
    EnergyVAD,
    RealTimePipeline,
    function_tool,
)
from agentsession.testing import FakeTransport, tone, virtual_clock, wait_for_state
from agentsession_gemini import GeminiRealtime
from agentsession_gemini.fake import FakeLiveServer

TIMEOUT = 5.0


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a weather assistant.")

    @function_tool
    async def get_weather(self, city: str = "Paris") -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: the city's name
        """
        return {"city": city, "temp": 21}


class Run:
    def __init__(self, server: FakeLiveServer, session: AgentSession, transport: FakeTransport) -> None:
        self.server, self.session, self.transport = server, session, transport
        self.errors: list[dict[str, Any]] = []
        self.states: list[AgentState] = []
        self.reconnecting: list[dict[str, Any]] = []
        session.on("error", self.errors.append)
        session.on("reconnecting", self.reconnecting.append)
        session.on("agent_state_changed", lambda d: self.states.append(d["state"]))

    async def state(self, state: AgentState) -> None:
        await wait_for_state(self.session, state)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "SSL_CERT_FILE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def running() -> AsyncIterator[Run]:
    async with FakeLiveServer() as server:
        model = GeminiRealtime(api_key="session-test-key-123456", http_options=server.http_options(),
                               reconnect_delay=0.01, max_reconnects=2)
        transport = FakeTransport()
        await transport.start()
        # Gemini reports no user speech: the session runs a VAD of its own; the tests speak in tones, which
        # are speech to EnergyVAD (a neural VAD rightly hears none)
        session = AgentSession(WeatherAgent(), RealTimePipeline(model), min_interruption_duration=0.2,
                               vad=EnergyVAD())
        r = Run(server, session, transport)
        await session.start(transport=transport)
        try:
            yield r
        finally:
            await session.close()
            await transport.close()


@virtual_clock
async def test_user_speech_gives_a_turn_with_transcript_and_answer() -> None:
    async with running() as run:
        transcripts: list[dict[str, Any]] = []
        run.session.on("user_transcript", lambda d: d["final"] and transcripts.append(d))
        audio = np.concatenate([tone(0.5, 24000).data, AudioFrame.silence(1.0, 24000).data])
        await run.transport.feed(AudioFrame(audio, 24000), realtime=False)
        await run.state(AgentState.SPEAKING)
        await run.state(AgentState.IDLE)
        assert transcripts == [{"text": "hello gemini", "final": True}]
        states = [s for s in run.states if s is not AgentState.STARTING]  # STARTING: emitted by start() or not
        assert states[:4] == [AgentState.IDLE, AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING]
        said = [i.text for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
        assert said == ["word0 word1 word2 word3 word4 "]
        assert len(run.transport.output) / 24000 == pytest.approx(5 * 0.04, abs=0.021)
        assert not run.errors


@virtual_clock
async def test_server_interrupted_clears_playout() -> None:
    async with running() as run:
        run.server.reply_chunks, run.server.chunk_seconds, run.server.chunk_delay = 20, 0.1, 0.02  # 2 s of speech
        await run.session.say("Let me tell you a long story.")
        await run.state(AgentState.SPEAKING)
        await asyncio.sleep(0.3)
        await run.transport.feed(tone(0.1, 24000), realtime=False)  # the user talks over it
        await run.state(AgentState.LISTENING)
        heard = len(run.transport.output) / 24000
        await asyncio.sleep(0.2)
        assert len(run.transport.output) / 24000 == pytest.approx(heard, abs=1e-6), "playout went on"
        assert heard < 1.0
        story = next(i for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant")
        assert story.interrupted


@virtual_clock
async def test_tool_call_through_the_session() -> None:
    async with running() as run:
        called: list[dict[str, Any]] = []
        run.session.on("function_tool_called", called.append)
        result = await run.session.run(user_input="Weather? Use the tool.", timeout=TIMEOUT)
        assert [c.name for c in result.function_calls] == ["get_weather"]
        assert '"temp": 21' in result.function_outputs[0].output
        assert result.text == "word0 word1 word2 word3 word4 "
        message = await run.server.wait_message(lambda m: m.tool_response is not None)
        assert message.tool_response is not None and message.tool_response.function_responses is not None
        assert message.tool_response.function_responses[0].response == {"city": "Paris", "temp": 21}
        assert called[0]["result"] == '{"city": "Paris", "temp": 21}'
        assert not run.errors


@virtual_clock
async def test_go_away_mid_conversation_keeps_the_session_going() -> None:
    async with running() as run:
        await run.session.run(user_input="Hello", timeout=TIMEOUT)
        await run.server.go_away()
        second = await run.server.wait_connections(2)
        assert second.setup.session_resumption is not None and second.setup.session_resumption.handle
        result = await run.session.run(user_input="Still there?", timeout=TIMEOUT)
        assert result.text == "word0 word1 word2 word3 word4 "
        assert not run.errors


@virtual_clock
async def test_reconnect_gives_up_with_a_fatal_error_and_the_session_closes() -> None:
    async with running() as run:
        closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        run.session.on("closed", lambda d: closed.done() or closed.set_result(d["reason"]))
        run.server.refuse = 10
        run.server.drop()
        assert await asyncio.wait_for(closed, TIMEOUT) == "error"
        assert [e.get("code") for e in run.errors] == ["reconnect_failed"]
        assert [e["attempt"] for e in run.reconnecting] == [1, 2]  # the drop, then the first refused attempt
        assert not run.errors[-1]["recoverable"]
        assert run.server.refuse == 8  # exactly max_reconnects attempts


class Pirate(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a pirate.", inherit_context=True)

    @function_tool
    async def plunder(self) -> str:
        """Take the treasure."""
        return "gold"


class FrontDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the front desk.")

    @function_tool
    async def transfer(self) -> Agent:
        """Hand the caller over to the pirate."""
        return Pirate()


async def test_handoff_reconnects_with_the_new_agent_and_keeps_the_conversation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "SSL_CERT_FILE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    async with FakeLiveServer() as server:
        model = GeminiRealtime(api_key="session-test-key-123456", http_options=server.http_options(),
                               reconnect_delay=0.01)
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(FrontDesk(), RealTimePipeline(model))
        changed: asyncio.Future[Agent] = asyncio.get_running_loop().create_future()
        session.on("agent_changed", lambda d: changed.done() or changed.set_result(d["agent"]))
        await session.start(transport=transport)
        try:
            result = await session.run(user_input="Transfer me, use the tool.", timeout=TIMEOUT)
            assert [c.name for c in result.function_calls] == ["transfer"]
            assert isinstance(await asyncio.wait_for(changed, TIMEOUT), Pirate) and isinstance(session.agent, Pirate)
            # as VideoSDK: the result is handed over without asking for an answer; the new agent speaks first
            await server.wait_message(lambda m: m.tool_response is not None)
            await server.wait_connections(2)
            first, second = server.connections
            setup = second.setup
            assert setup.system_instruction is not None and setup.system_instruction.parts is not None
            assert setup.system_instruction.parts[0].text == "You are a pirate."
            assert setup.tools is not None and setup.tools[0].function_declarations is not None
            assert [d.name for d in setup.tools[0].function_declarations] == ["plunder"]
            # the call was answered before the new agent's connection: it resumes the conversation (its handle)
            assert setup.session_resumption is not None and setup.session_resumption.handle == "handle-1"
            (response,) = [m.tool_response for m in first.messages if m.tool_response]
            assert [r.scheduling for r in response.function_responses or ()] == ["SILENT"]  # no answer asked for
            assert not any(m.client_content and any((p.text or "").startswith("(Function results")
                                                    for t in m.client_content.turns or () for p in t.parts or ())
                           for m in first.messages + second.messages)
            assert server.protocol_errors == []
        finally:
            await session.close()
            await transport.close()


@virtual_clock
async def test_a_slow_loris_mid_answer_is_left_and_the_agent_is_not_stuck_speaking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the virtual clock, with the default bounds: detected after stall_timeout, reported, states re-derived."""
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "SSL_CERT_FILE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    async with FakeLiveServer(reply_chunks=2000, chunk_delay=0.04) as server:  # an 80 s answer in real time
        model = GeminiRealtime(api_key="session-test-key-123456", http_options=server.http_options())
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(WeatherAgent(), RealTimePipeline(model), min_interruption_duration=0.2)
        seen: list[tuple[str, float, dict[str, Any]]] = []
        changed = asyncio.Event()

        def record(name: str) -> Any:
            def on(data: dict[str, Any]) -> None:
                seen.append((name, asyncio.get_running_loop().time(), data))
                changed.set()
            return on

        for name in ("reconnecting", "reconnected", "error"):
            session.on(name, record(name))

        async def until(name: str) -> tuple[float, dict[str, Any]]:
            while not any(n == name for n, _, _ in seen):
                changed.clear()
                await asyncio.wait_for(changed.wait(), 60.0)
            return next((t, d) for n, t, d in seen if n == name)

        await session.start(transport=transport)
        try:
            await session.say("Let me tell you a long story.")
            await wait_for_state(session, AgentState.SPEAKING)
            loop = asyncio.get_running_loop()
            server.trickle()
            trickled_at = loop.time()
            at, reconnecting = await until("reconnecting")
            assert model.stall_timeout <= at - trickled_at <= model.stall_timeout + 0.7
            assert "no progress of the response" in reconnecting["reason"]
            await wait_for_state(session, AgentState.IDLE, timeout=1.0)
            _, reconnected = await until("reconnected")
            assert reconnected["audio_lost"] == 0.0
            assert [n for n, _, _ in seen] == ["error", "reconnecting", "reconnected"]  # the error: the cut answer
            server.reply_chunks, server.chunk_delay = 5, 0.0
            result = await session.run(user_input="Still there?", timeout=10.0)
            assert result.text == "word0 word1 word2 word3 word4 "
        finally:
            await session.close()
            await transport.close()
