"""OpenAIRealtime inside a real AgentSession (FakeTransport) against the fake server, on the virtual clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from agentsession import (
    TTS,
    Agent,
    AgentSession,
    AgentState,
    AudioFrame,
    ChatMessage,
    Pipeline,
    RealTimePipeline,
    function_tool,
)
from agentsession.testing import FakeTransport, tone, virtual_clock, wait_for_state
from agentsession_openai import OpenAIRealtime
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

TIMEOUT = 5.0
GREETING = "Hello! How can I help you today?"


class WeatherAgent(Agent):
    def __init__(self, greet: bool = False) -> None:
        super().__init__(instructions="You are a weather assistant.")
        self.greet = greet

    async def on_enter(self) -> None:
        if self.greet:
            await self.session.say(GREETING)

    @function_tool
    async def get_weather(self, city: str) -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: the city's name
        """
        return {"city": city, "temp": 21}


class Run:
    def __init__(self, server: FakeRealtimeServer, model: OpenAIRealtime, session: AgentSession,
                 transport: FakeTransport) -> None:
        self.server, self.model, self.session, self.transport = server, model, session, transport
        self.errors: list[dict[str, Any]] = []
        self.states: list[AgentState] = []
        session.on("error", self.errors.append)
        session.on("agent_state_changed", lambda d: self.states.append(d["state"]))

    async def state(self, state: AgentState) -> None:
        await wait_for_state(self.session, state)


def spy_interrupts(model: OpenAIRealtime) -> list[dict[str, float | None]]:
    """What the session passes to each ``model.interrupt`` call, recorded (and passed on)."""
    calls: list[dict[str, float | None]] = []
    interrupt = model.interrupt

    async def spy(heard: Mapping[str, float | None]) -> None:
        calls.append(dict(heard))
        await interrupt(heard)

    model.interrupt = spy  # type: ignore[method-assign]
    return calls


@asynccontextmanager
async def running(greet: bool = False, **options: Any) -> AsyncIterator[Run]:
    async with FakeRealtimeServer() as server:
        model = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, reconnect_delay=0.01, **options)
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(WeatherAgent(greet=greet), RealTimePipeline(model), min_interruption_duration=0.2)
        r = Run(server, model, session, transport)
        await session.start(transport=transport)
        try:
            yield r
        finally:
            await session.close()
            await transport.close()
        assert server.protocol_errors == []


@virtual_clock
async def test_barge_in_cancels_and_truncates_at_what_was_heard() -> None:
    async with running(greet=True, turn_detection={
            "type": "server_vad", "create_response": False, "interrupt_response": False}) as run:
        server = run.server
        server.reply_audio, server.chunk_delay = 3.0, 0.05  # 3 s of speech, streamed at twice real time
        heard_args = spy_interrupts(run.model)
        await run.state(AgentState.SPEAKING)
        await asyncio.sleep(0.6)  # the user hears some of the greeting, then talks over it
        feeding = asyncio.ensure_future(run.transport.feed(tone(0.8, 24000)))
        await server.wait_for("conversation.item.truncate")
        await server.wait_for("response.cancel")
        await feeding

        conn = server.current
        (heard,) = heard_args
        ((greeting_id, played),) = heard.items()  # the greeting, named by its response id
        assert greeting_id == conn.of_type("response.create")[0].response.metadata["agentsession_response_id"]
        # 0.6 s, the barge-in confirmation (min_interruption_duration), and at most 100 ms of VAD and playout latency
        assert played is not None and 0.6 + 0.2 <= played <= 0.6 + 0.2 + 0.1
        ((item_id, audio_end_ms),) = conn.truncations
        assert audio_end_ms == int(played * 1000 + 1e-6)  # the millisecond the user heard up to
        assert conn.of_type("response.cancel")[0].response_id == conn.response_id
        await asyncio.sleep(0.2)  # let the cancelled response's in-flight deltas and response.done arrive
        heard = len(run.transport.output) / 24000
        assert heard == pytest.approx(played, abs=1e-6), "audio of the cancelled response was played"
        greeting = next(i for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant")
        assert greeting.interrupted


@virtual_clock
async def test_interrupting_an_answer_queued_behind_another_cuts_only_it_at_its_own_position() -> None:
    async with running() as run:
        """Issue 11's case over the wire: "Let me check." (1.0 s) with a tool call, then the tool's follow-up
        (3.0 s), generated at once and queued behind it; the user talks 0.7 s into the follow-up. Only the
        follow-up's item is truncated, at what was heard of it (not counted from the start of the first)."""
        server = run.server
        server.preamble, server.preamble_audio = "Let me check.", 1.0
        server.reply_audio = 3.0  # chunk_delay is tiny: both answers arrive long before they are played
        server.tool_arguments["get_weather"] = {"city": "Paris"}
        heard_args = spy_interrupts(run.model)
        into_follow_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        played = 0.0

        def on_audio(data: dict[str, Any]) -> None:
            nonlocal played
            played += data["frame"].duration
            if played >= 1.0 + 0.7 - 1e-6 and not into_follow_up.done():
                into_follow_up.set_result(None)

        run.session.on("agent_audio", on_audio)
        await run.session.send_text("Weather in Paris? Use get_weather.")
        await asyncio.wait_for(into_follow_up, TIMEOUT)
        await run.transport.feed(tone(0.8, 24000))  # the user talks over the follow-up
        await server.wait_for("conversation.item.truncate")

        conn = server.current
        first_rid, follow_rid = [c.response.metadata["agentsession_response_id"] for c in conn.of_type("response.create")]
        first_item, follow_item = list(conn.audio_sent_ms)
        (heard,) = heard_args
        follow_heard = heard[follow_rid]
        # 0.7 s, the barge-in confirmation (min_interruption_duration) and at most 100 ms of VAD and playout latency
        assert follow_heard is not None and 0.7 <= follow_heard <= 0.7 + 0.2 + 0.1
        assert heard.get(first_rid, 1.0) == pytest.approx(1.0, abs=0.021)  # heard whole (if named at all)
        assert conn.truncations == [(follow_item, int(follow_heard * 1000 + 1e-6))]  # the first is untouched
        assert first_item not in dict(conn.truncations)
        said = [i for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
        assert [m.interrupted for m in said] == [False, True]


@virtual_clock
async def test_barge_in_keeps_the_heard_text_in_history() -> None:
    async with running(greet=True) as run:
        run.server.reply_audio, run.server.chunk_delay = 3.0, 0.05
        await run.state(AgentState.SPEAKING)
        await asyncio.sleep(0.6)
        await run.session.interrupt()
        await run.server.wait_for("response.cancel")
        await asyncio.sleep(0.1)
        greeting = next(i for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant")
        assert greeting.interrupted and greeting.text.startswith("Hello!")


@virtual_clock
async def test_tool_call_through_the_session() -> None:
    async with running() as run:
        run.server.tool_arguments["get_weather"] = {"city": "Paris"}
        result = await run.session.run(user_input="Weather in Paris? Use get_weather.", timeout=TIMEOUT)
        assert [c.name for c in result.function_calls] == ["get_weather"]
        assert '"temp": 21' in result.function_outputs[0].output
        assert "The answer is" in result.text
        assert not run.errors


@virtual_clock
async def test_user_speech_gives_a_turn_with_transcript_and_answer() -> None:
    async with running() as run:
        transcripts: list[dict[str, Any]] = []
        run.session.on("user_transcript", transcripts.append)
        audio = np.concatenate([tone(0.5, 24000).data, AudioFrame.silence(0.5, 24000).data])
        await run.transport.feed(AudioFrame(audio, 24000), realtime=False)
        await run.state(AgentState.SPEAKING)
        await run.state(AgentState.IDLE)
        assert transcripts == [{"text": "hello there", "final": True}]
        states = [s for s in run.states if s is not AgentState.STARTING]  # STARTING: emitted by start() or not
        assert states[:4] == [AgentState.IDLE, AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING]
        said = [i.text for i in run.session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
        assert said == ["You said: hello there"]
        assert len(run.transport.output) / 24000 == pytest.approx(run.server.reply_audio, abs=0.021)


@virtual_clock
async def test_drop_mid_response_is_reported_then_context_is_restored() -> None:
    async with running() as run:
        server = run.server
        server.tool_arguments["get_weather"] = {"city": "Oslo"}
        await run.session.run(user_input="Weather in Oslo? Use get_weather.", timeout=TIMEOUT)
        first = server.current
        server.reply_audio, server.chunk_delay = 3.0, 0.05
        await run.session.say("Let me tell you a long story.")
        await run.state(AgentState.SPEAKING)
        await server.drop()
        await server.wait_for("conversation.item.create", count=len(first.of_type("conversation.item.create")) + 4)
        await run.state(AgentState.IDLE)
        assert [e["code"] for e in run.errors] == ["connection_lost"] and run.errors[0]["recoverable"]
        second = server.current
        assert second is not first
        assert second.session["instructions"] == "You are a weather assistant."
        assert [t["name"] for t in second.session["tools"]] == ["get_weather"]
        replayed = [(e.item.type, getattr(e.item, "role", None)) for e in second.of_type("conversation.item.create")]
        assert replayed[:4] == [("message", "user"), ("function_call", None), ("function_call_output", None),
                                ("message", "assistant")]
        call = second.of_type("conversation.item.create")[1].item
        assert call.name == "get_weather" and call.arguments == '{"city": "Oslo"}'
        server.reply_audio, server.chunk_delay = 0.3, 0.002
        result = await run.session.run(user_input="Thanks!", timeout=TIMEOUT)
        assert result.text == "You said: Thanks!"
        assert run.model.reconnects == 1


@virtual_clock
async def test_reconnect_gives_up_with_a_fatal_error_and_the_session_closes() -> None:
    async with running(max_reconnect_attempts=2) as run:
        closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        run.session.on("closed", lambda d: closed.done() or closed.set_result(d["reason"]))
        run.server.refuse = 10
        await run.server.drop()
        assert await asyncio.wait_for(closed, TIMEOUT) == "error"
        assert run.errors[-1]["code"] == "reconnect_failed" and not run.errors[-1]["recoverable"]
        assert run.server.refuse == 8  # exactly max_reconnect_attempts tries


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, from before the session connects."""
    caplog.set_level(logging.DEBUG)
    return caplog


@virtual_clock
async def test_the_key_never_reaches_a_log_even_at_debug(debug_logs: pytest.LogCaptureFixture) -> None:
    async with running() as run:
        run.server.tool_arguments["get_weather"] = {"city": "Oslo"}
        await run.session.run(user_input="Weather in Oslo? Use get_weather.", timeout=TIMEOUT)
        await run.server.send_error("rate_limit_exceeded", "slow down")
        await run.server.drop()
        await run.server.wait_for("session.update", count=2)  # reconnected: the handshake was logged again
        await run.session.run(user_input="Thanks!", timeout=TIMEOUT)
        records = debug_logs.records
        loggers = {r.name.split(".")[0] for r in records}
        assert {"websockets", "openai", "agentsession"} <= loggers, loggers  # the handshake and the SDK were heard
        assert any("Authorization: Bearer" in r.getMessage() for r in records)  # websockets logs the header...
        text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
        assert API_KEY not in text  # ...masked


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


@virtual_clock
async def test_handoff_changes_instructions_and_tools_in_place() -> None:
    async with FakeRealtimeServer() as realtime_server:
        model = OpenAIRealtime(api_key=API_KEY, base_url=realtime_server.base_url)
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(FrontDesk(), RealTimePipeline(model))
        changed: asyncio.Future[Agent] = asyncio.get_running_loop().create_future()
        session.on("agent_changed", lambda d: changed.done() or changed.set_result(d["agent"]))
        await session.start(transport=transport)
        try:
            result = await session.run(user_input="Please transfer me.", timeout=TIMEOUT)
            assert [c.name for c in result.function_calls] == ["transfer"]
            assert isinstance(await asyncio.wait_for(changed, TIMEOUT), Pirate) and isinstance(session.agent, Pirate)
            conn = realtime_server.current
            update = conn.of_type("session.update")[-1]
            assert update.session.instructions == "You are a pirate."
            assert [t.name for t in update.session.tools] == ["plunder"]
            assert len(realtime_server.connections) == 1  # same conversation, changed in place
            result = await session.run(user_input="Now plunder.", timeout=TIMEOUT)
            assert [c.name for c in result.function_calls] == ["plunder"]
        finally:
            await session.close()
            await transport.close()


class SteadyTTS(TTS):
    """A TTS that speaks 10 ms of a steady level per character (so its audio is told from the model's)."""

    sample_rate = 24000

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.texts.append(text)
        samples = np.full((240 * len(text), 1), 1234, dtype=np.int16)
        yield AudioFrame(samples, 24000)


@virtual_clock
async def test_hybrid_mode_the_model_answers_in_text_and_the_tts_speaks() -> None:
    """VideoSDK's hybrid mode: ``Pipeline(llm=OpenAIRealtime(), tts=...)`` asks the model for text only."""
    async with FakeRealtimeServer() as server:
        model = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, reconnect_delay=0.01)
        tts = SteadyTTS()
        transport = FakeTransport()
        await transport.start()
        session = AgentSession(WeatherAgent(), Pipeline(llm=model, tts=tts))
        said: list[str] = []
        session.on("agent_transcript", lambda d: d["final"] and said.append(d["text"]))
        await session.start(transport=transport)
        handle = await session.say(GREETING)
        await handle
        updates = server.current.of_type("session.update")
        assert updates and all(u.session.output_modalities == ["text"] for u in updates)
        assert tts.texts and said and said[-1] == " ".join(tts.texts)  # sentence by sentence, all of it
        assert np.all(transport.output[np.abs(transport.output) > 0] == 1234)  # the TTS's voice, not the model's
        spoken = 240 * sum(map(len, tts.texts))  # all of the TTS's audio, padded to whole 20 ms frames
        assert spoken <= len(transport.output) < spoken + 480
        await session.close()
        await transport.close()
        assert server.protocol_errors == []
