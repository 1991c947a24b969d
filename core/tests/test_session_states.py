"""State sequences of DESIGN.md section 5, on the virtual clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentsession import Agent, AgentSession, AudioFrame, RealTimePipeline, function_tool
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport, virtual_clock
from core_helpers import GreetingAgent, QuietAgent, settle, started


@virtual_clock
async def test_greeting_in_on_enter() -> None:
    model = FakeRealtimeModel()
    session, transport, rec = await started(GreetingAgent(), model)
    await settle(5)
    assert model.said == ["Hello! How can I help you today?"]
    assert rec.agent_states() == ["idle", "thinking", "speaking", "idle"]
    assert rec.user_states() == ["listening", "idle"]
    speaking_at = [t for t, n, d in rec.events if n == "agent_state_changed" and d["state"].value == "speaking"][0]
    assert speaking_at == pytest.approx(0.2)  # the model's time to first audio
    # every frame the model sent was played, exactly
    assert transport.output.shape[0] / 24000 == pytest.approx(session.history.items[0].audio_duration, abs=1e-9)
    assert session.history.items[0].text == "Hello! How can I help you today?"
    await session.close()


@virtual_clock
async def test_user_turn_answered() -> None:
    model = FakeRealtimeModel([FakeResponse(text="It is sunny.", audio=1.0, delay=0.3)])
    session, transport, rec = await started(QuietAgent(), model)
    await settle(1)
    model.user_starts_speaking()
    await settle(2)
    model.user_stops_speaking("What's the weather?")
    await settle(3)
    assert rec.agent_states() == ["idle", "listening", "thinking", "speaking", "idle"]
    assert rec.user_states() == ["speaking", "idle", "listening", "idle"]
    times = {d["state"].value: t for t, n, d in rec.events if n == "agent_state_changed"}
    assert times["thinking"] == pytest.approx(3.0)
    assert times["speaking"] == pytest.approx(3.3)
    assert times["idle"] == pytest.approx(4.3, abs=0.021)
    (metrics,) = rec.of("metrics_collected")
    assert metrics["trigger"] == "user" and metrics["ttfa"] == pytest.approx(0.3)
    assert [(i.role, i.text) for i in session.history.items] == [("user", "What's the weather?"),
                                                                 ("assistant", "It is sunny.")]
    await session.close()


@virtual_clock
async def test_barge_in_interrupts_truncates_and_clears_playout() -> None:
    model = FakeRealtimeModel([FakeResponse(text="A very long answer " * 10, audio=4.0, delay=0.2)])
    session, transport, rec = await started(QuietAgent(), model, min_interruption_duration=0.5)
    model.user_starts_speaking()
    await settle(1)
    model.user_stops_speaking("Tell me a story")
    await settle(1.2)  # the agent has spoken for 1.0 s
    model.user_starts_speaking()
    await settle(0.6)  # longer than the false-interruption threshold
    assert rec.agent_states() == ["idle", "listening", "thinking", "speaking", "listening"]
    assert rec.user_states() == ["speaking", "idle", "listening", "speaking"]
    ((rid, heard),) = model.interrupts[0].items()
    assert heard == pytest.approx(1.5, abs=0.021)  # 1.0 s + 0.5 s threshold
    assert transport.output.shape[0] / 24000 == pytest.approx(heard, abs=0.021)
    reply = session.history.items[-1]
    assert reply.interrupted and reply.audio_duration == pytest.approx(heard)
    assert 0 < len(reply.text) < len("A very long answer " * 10)
    played_then = transport.output.shape[0]
    await settle(3)
    assert transport.output.shape[0] == played_then  # nothing of the cancelled response played later
    await session.close()


@virtual_clock
async def test_short_speech_is_a_false_interruption() -> None:
    model = FakeRealtimeModel([FakeResponse(text="Answer", audio=2.0, delay=0.2)])
    session, transport, rec = await started(QuietAgent(), model, min_interruption_duration=0.5)
    await session.reply(wait_for_playback=False)
    await settle(0.7)
    model.user_starts_speaking()
    await settle(0.2)
    model.user_stops_speaking(respond=False)
    await settle(3)
    assert model.interrupts == []
    assert len(rec.of("false_interruption")) == 1
    assert transport.output.shape[0] / 24000 == pytest.approx(2.0)
    assert rec.agent_states()[-2:] == ["speaking", "idle"]
    await session.close()


@virtual_clock
async def test_interrupt_mid_speech() -> None:
    model = FakeRealtimeModel([FakeResponse(text="Long", audio=3.0, delay=0.1)])
    session, transport, rec = await started(QuietAgent(), model)
    await session.reply(wait_for_playback=False)
    await settle(1.1)
    await session.interrupt()
    assert session.agent_state.value == "idle"
    assert [list(i.values()) for i in model.interrupts] == [[pytest.approx(1.0, abs=0.021)]]
    n = transport.output.shape[0]
    await settle(2)
    assert transport.output.shape[0] == n
    assert rec.agent_states() == ["idle", "thinking", "speaking", "idle"]
    await session.interrupt()  # nothing to interrupt: a no-op
    assert len(model.interrupts) == 1
    await session.close()


@virtual_clock
async def test_reply_wait_for_playback_returns_after_playout() -> None:
    model = FakeRealtimeModel([FakeResponse(text="Done", audio=1.5, delay=0.25)])
    session, transport, rec = await started(QuietAgent(), model)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await session.reply(instructions="Say done", wait_for_playback=True)
    assert loop.time() - t0 == pytest.approx(1.75, abs=0.021)
    assert session.agent_state.value == "idle"
    assert transport.output.shape[0] / 24000 == pytest.approx(1.5)
    assert model.replies == ["Say done"]
    await session.close()


class ToolAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You look things up.")
        self.release = asyncio.Event()
        self.calls: list[str] = []

    @function_tool
    async def lookup(self, city: str) -> dict[str, object]:
        """Look up the weather.

        Args:
            city: the city
        """
        self.calls.append(city)
        await self.release.wait()
        return {"city": city, "temp": 21}


@virtual_clock
async def test_tool_call_keeps_agent_thinking_while_it_runs() -> None:
    model = FakeRealtimeModel([
        FakeResponse(text="Let me check.", audio=0.5, tool_calls=[FakeToolCall("lookup", {"city": "Paris"})],
                     then=FakeResponse(text="21 degrees in Paris.", audio=1.0))
    ])
    agent = ToolAgent()
    session, transport, rec = await started(agent, model)
    model.user_starts_speaking()
    await settle(0.5)
    model.user_stops_speaking("Weather in Paris?")
    await settle(5)  # the tool is still running: five seconds of THINKING
    assert agent.calls == ["Paris"]
    assert session.agent_state.value == "thinking"
    agent.release.set()
    await settle(3)
    assert rec.agent_states() == ["idle", "listening", "thinking", "speaking", "thinking", "speaking", "idle"]
    (called,) = rec.of("function_tool_called")
    assert called["name"] == "lookup" and called["is_error"] is False and '"temp": 21' in called["result"]
    assert [r.call_id for r in model.tool_results[0]] == [called["call_id"]]
    kinds = [type(i).__name__ for i in session.history.items]
    assert kinds == ["ChatMessage", "ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
    await session.close()


@virtual_clock
async def test_bad_tool_arguments_go_back_to_the_model_as_an_error() -> None:
    model = FakeRealtimeModel([
        FakeResponse(audio=0.2, tool_calls=[FakeToolCall("lookup", {"town": "Paris"})], then=FakeResponse("Sorry"))
    ])
    agent = ToolAgent()
    session, _, rec = await started(agent, model)
    result = await session.run(user_input="Weather?")
    assert agent.calls == []
    assert result.function_outputs[0].is_error
    assert "city" in result.function_outputs[0].output
    assert result.text == "Sorry"
    await session.close()


@virtual_clock
async def test_run_returns_the_turn_for_assertions() -> None:
    model = FakeRealtimeModel([
        FakeResponse(audio=0.3, tool_calls=[FakeToolCall("lookup", {"city": "Oslo"})],
                     then=FakeResponse(text="It is 21 degrees in Oslo.")),
    ])
    agent = ToolAgent()
    agent.release.set()
    session, _, _ = await started(agent, model)
    result = await session.run(user_input="How warm is Oslo?")
    assert model.texts == ["How warm is Oslo?"]
    assert [c.name for c in result.function_calls] == ["lookup"]
    assert "21 degrees" in result.text
    await session.close()


@virtual_clock
async def test_audio_reaches_the_model_resampled() -> None:
    model = FakeRealtimeModel(sample_rate=16000)
    session, transport, _ = await started(QuietAgent(), model)
    from agentsession.testing import tone

    await transport.feed(tone(1.0, 48000).to_mono())
    await settle(0.1)
    assert model.received_audio == pytest.approx(1.0, abs=0.021)
    await session.close()
    assert np.all(np.isfinite(transport.output))


@virtual_clock
async def test_the_input_s_last_partial_frame_reaches_the_model_when_the_input_ends() -> None:
    """No audio is lost at the end of the input: what the converter held back (the resampler's delay, a last
    partial frame, padded to a whole one) goes to the model too."""
    from agentsession.testing import tone

    model = FakeRealtimeModel(sample_rate=24000)
    session, transport, _ = await started(QuietAgent(), model)
    transport.push_audio(tone(0.03, 16000))  # a frame and a half, resampled 16 -> 24 kHz
    transport.end_input()
    await settle(0.1)
    assert model.received_audio == pytest.approx(0.04)
    await session.close()


@pytest.mark.parametrize("order", ["input ends, then close", "close starts, then input ends",
                                   "closed, then input ends"])
@virtual_clock
async def test_the_input_s_remainder_never_reaches_a_closing_model(order: str) -> None:
    """The end-of-input flush and ``close()`` in every order: the remainder goes only while the session runs."""
    from agentsession.testing import tone

    class Recording(FakeRealtimeModel):
        after_close = 0.0

        def push_audio(self, frame: AudioFrame) -> None:
            if self.closed:
                self.after_close += frame.duration
            super().push_audio(frame)

    model = Recording(sample_rate=24000)
    session, transport, _ = await started(QuietAgent(), model)
    transport.push_audio(tone(0.03, 16000))
    await settle(0.1)
    if order == "input ends, then close":
        transport.end_input()
        await settle(0.1)
        await session.close()
        assert model.received_audio == pytest.approx(0.04)  # the remainder went, before the close
    elif order == "close starts, then input ends":
        closing = asyncio.ensure_future(session.close())
        await asyncio.sleep(0)
        transport.end_input()
        await closing
    else:
        await session.close()
        transport.end_input()
        await settle(0.1)
    assert model.after_close == 0.0
    assert model.received_audio <= 0.04


@virtual_clock
async def test_a_late_user_transcript_goes_before_the_answer_in_history() -> None:
    from agentsession import UserTranscript

    model = FakeRealtimeModel([FakeResponse(text="Paris is sunny.", audio=1.0, delay=0.2)])
    session, _, _ = await started(QuietAgent(), model)
    model.user_starts_speaking()
    await settle(1)
    model.user_stops_speaking()  # no transcript yet: the model transcribes while it answers
    await settle(0.5)
    model.channel.emit(UserTranscript("Weather in Paris?"))
    await settle(2)
    assert [(i.role, i.text) for i in session.history.items] == [("user", "Weather in Paris?"),
                                                                 ("assistant", "Paris is sunny.")]
    await session.close()


@virtual_clock
async def test_after_an_interrupt_the_next_answer_is_a_new_history_item() -> None:
    model = FakeRealtimeModel([FakeResponse(text="First, long", audio=3.0), FakeResponse(text="Second", audio=0.5)])
    session, _, _ = await started(QuietAgent(), model)
    await session.reply(wait_for_playback=False)
    await settle(1)
    await session.send_text("stop, something else")  # typed over the agent: interrupts it
    await settle(3)
    roles = [(i.role, i.text, i.interrupted) for i in session.history.items]
    assert roles[0][0] == "assistant" and roles[0][2] is True
    assert roles[1:] == [("user", "stop, something else", False), ("assistant", "Second", False)]
    assert session.agent_state.value == "idle"
    await session.close()


@virtual_clock
async def test_metrics_of_a_turn_whose_audio_queues_behind_the_previous_answer() -> None:
    model = FakeRealtimeModel([
        FakeResponse(text="Let me check.", audio=2.0, delay=0.1, tool_calls=[FakeToolCall("lookup", {"city": "Rome"})],
                     then=FakeResponse(text="It is 21.", audio=1.0, delay=0.1)),
    ])
    agent = ToolAgent()
    agent.release.set()
    session, _, rec = await started(agent, model)
    await session.send_text("Weather in Rome?")
    await settle(6)
    # the tool's answer arrived while "Let me check." was still playing: its audio played after it, and
    # the whole exchange is one turn
    (turn,) = rec.of("metrics_collected")
    assert (turn["trigger"], turn["interrupted"]) == ("text", False)
    assert turn["audio_duration"] == pytest.approx(3.0)
    assert session.history.items[-1].text == "It is 21." and not session.history.items[-1].interrupted
    await session.close()


@virtual_clock
async def test_back_to_back_typed_turns_each_cancel_the_previous_answer() -> None:
    model = FakeRealtimeModel([FakeResponse(text=f"answer {i}", audio=1.0, delay=0.3) for i in range(3)])
    session, transport, rec = await started(QuietAgent(), model)
    await session.send_text("one")
    await settle(0.5)
    await session.send_text("two")
    await session.send_text("three")  # before "two" was answered
    await settle(3)
    metrics = rec.of("metrics_collected")
    assert [m["interrupted"] for m in metrics] == [True, True, False]
    assert metrics[-1]["e2e"] == pytest.approx(0.3, abs=0.01)
    assert [(i.role, i.text) for i in session.history.items][-2:] == [("user", "three"), ("assistant", "answer 2")]
    assert rec.agent_states()[-3:] == ["thinking", "speaking", "idle"]
    await session.close()


@virtual_clock
async def test_states_start_with_starting_for_a_listener_subscribed_before_start() -> None:
    model = FakeRealtimeModel()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model))
    seen: list[str] = []
    session.on("agent_state_changed", lambda data: seen.append(f"{data['state']}"))
    await session.start(transport=transport)
    await session.close()
    assert seen == ["starting", "idle", "closing"]


def test_states_print_as_their_lowercase_value() -> None:
    """DESIGN section 5: ``f"{data['state']}"`` prints ``idle`` (Python 3.11 printed ``AgentState.IDLE``)."""
    from agentsession import AgentState, UserState

    assert f"{AgentState.IDLE}" == str(AgentState.IDLE) == "idle"
    assert f"{UserState.SPEAKING:>9}" == " speaking" and "agent " + str(AgentState.THINKING) == "agent thinking"
    assert AgentState.SPEAKING == "speaking" and repr(AgentState.IDLE) == "<AgentState.IDLE: 'idle'>"
