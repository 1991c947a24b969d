"""The conversation engine: speech handles, response ids, segment-exact playout, tool groups, hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from agentsession import (
    Agent,
    AgentSession,
    AgentSessionError,
    ChatMessage,
    ModelOptions,
    RealTimePipeline,
    function_tool,
    hookimpl,
)
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport, virtual_clock
from core_helpers import TRANSPORTS, QuietAgent, settle, started


def assistant_items(session: AgentSession) -> list[ChatMessage]:
    return [i for i in session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]


class Lookup(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You look things up.")
        self.running = 0
        self.most_at_once = 0

    async def _work(self, seconds: float) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1

    @function_tool
    async def weather(self, city: str) -> dict[str, object]:
        """The weather.

        Args:
            city: the city
        """
        await self._work(1.0)
        return {"city": city, "temp": 21}

    @function_tool
    async def time_in(self, city: str) -> str:
        """The time.

        Args:
            city: the city
        """
        await self._work(1.0)
        return "12:00"

    @function_tool
    async def forecast(self, city: str) -> str:
        """The forecast, at once.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    @function_tool
    async def broken(self) -> str:
        """Always fails."""
        raise RuntimeError("the service is down")

    @function_tool(timeout=0.5)
    async def slow(self) -> str:
        """Never answers in time."""
        await asyncio.sleep(10)
        return "late"


@pytest.mark.parametrize("transport_type", TRANSPORTS)
@virtual_clock
async def test_interrupting_an_answer_queued_behind_another_truncates_it_at_its_own_position(
        transport_type: type[FakeTransport]) -> None:
    first = FakeResponse(text="Let me check.", audio=1.0, delay=0.2,
                         tool_calls=[FakeToolCall("forecast", {"city": "Rome"})],
                         then=FakeResponse(text="It is twenty one degrees in Rome today, sunny and warm.",
                                           audio=3.0, delay=0.1))
    model = FakeRealtimeModel([first])
    agent = Lookup()
    session, transport, rec = await started(agent, model, min_interruption_duration=0.5, transport=transport_type())
    t0 = asyncio.get_running_loop().time()
    await session.send_text("Weather in Rome?")
    # the first answer plays 0.2..1.2 s; its tool call comes at ~0.45 s and the follow-up's audio right
    # after, queued behind it; the user talks 0.7 s into the follow-up, confirmed 0.5 s later
    await settle(0.8)
    assert len(model.tool_results) == 1 and rec.agent_states()[-1] == "speaking"
    await settle(0.4)
    started_second = asyncio.get_running_loop().time()
    await settle(0.7)
    model.user_starts_speaking()
    await settle(0.6)
    assert len(model.interrupts) == 1
    (cut,) = model.interrupts[0].items()
    rid, heard = cut
    first_item, second_item = assistant_items(session)
    assert rid.endswith("_2")  # the follow-up, not "Let me check."
    expected = asyncio.get_running_loop().time() - 0.1 - started_second  # (minus the 0.1 s settled past)
    assert heard == pytest.approx(expected, abs=0.021) and 1.1 < heard < 1.3, (heard, t0)
    assert (first_item.text, first_item.interrupted) == ("Let me check.", False)
    assert first_item.audio_duration == pytest.approx(1.0)
    assert second_item.interrupted and second_item.audio_duration == pytest.approx(heard)
    assert 0 < len(second_item.text) < len("It is twenty one degrees in Rome today, sunny and warm.")
    assert transport.output.shape[0] / 24000 == pytest.approx(1.0 + heard, abs=0.021)
    (metrics,) = rec.of("metrics_collected")
    assert metrics["interrupted"] and metrics["audio_duration"] == pytest.approx(1.0 + heard, abs=0.021)
    await session.close()


@virtual_clock
async def test_an_answer_queued_and_never_started_is_dropped_from_history() -> None:
    model = FakeRealtimeModel([FakeResponse(text="One two three four five six seven eight.", audio=2.0, delay=0.1)])
    session, _, _ = await started(QuietAgent(), model)
    first = await session.reply(wait_for_playback=False)
    second = await session.say("And another thing.")
    await settle(1.0)  # the first plays; the second is generated and queued behind it
    assert [i.text for i in assistant_items(session)] == ["One two three four five six seven eight.",
                                                          "And another thing."]
    await session.interrupt()
    assert first.interrupted and second.interrupted and first.done() and second.done()
    [cut] = model.interrupts
    assert cut[f"{first.id}_1"] == pytest.approx(0.9, abs=0.021)
    assert cut[f"{second.id}_1"] == 0.0  # generated, never heard
    [(text, interrupted)] = [(i.text, i.interrupted) for i in assistant_items(session)]
    assert interrupted and text.startswith("One two") and not text.endswith("eight.")
    await session.close()


@pytest.mark.parametrize("calls", [["weather", "time_in"], ["weather", "time_in", "weather"]])
@virtual_clock
async def test_parallel_tool_calls_of_one_response_are_one_turn(calls: list[str]) -> None:
    model = FakeRealtimeModel([
        FakeResponse(text="Checking.", audio=0.5,
                     tool_calls=[FakeToolCall(name, {"city": "Oslo"}) for name in calls],
                     then=FakeResponse(text="Done.", audio=0.5)),
    ])
    agent = Lookup()
    session, _, rec = await started(agent, model)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await session.run(user_input="Weather and time in Oslo?")
    assert agent.most_at_once == len(calls)  # all ran at once
    assert loop.time() - t0 < 3.0  # not one second per call one after another
    assert [[r.name for r in group] for group in model.tool_results] == [calls]  # handed back together
    assert len(model.tool_results) == 1 and model.texts == ["Weather and time in Oslo?"]
    assert result.text == "Checking. Done."
    assert len(rec.of("metrics_collected")) == 1
    assert len(rec.of("function_tool_called")) == len(calls)
    await session.close()


@virtual_clock
async def test_a_failing_and_a_timing_out_tool_in_one_group() -> None:
    model = FakeRealtimeModel([
        FakeResponse(text="Trying.", audio=0.3, tool_calls=[FakeToolCall("broken"), FakeToolCall("slow")],
                     then=FakeResponse(text="Both failed.", audio=0.3)),
    ])
    session, _, rec = await started(Lookup(), model)
    result = await session.run(user_input="Try both")
    [group] = model.tool_results
    assert [(r.name, r.is_error) for r in group] == [("broken", True), ("slow", True)]
    assert "the service is down" in group[0].output and "timed out" in group[1].output
    assert result.text == "Trying. Both failed."
    assert [e["code"] for e in rec.of("error")] == ["tool_error", "tool_error"]
    assert len(rec.of("metrics_collected")) == 1
    await session.close()


@pytest.mark.parametrize("transport_type", TRANSPORTS)
@virtual_clock
async def test_speech_handles_await_playout_and_report_interruption(transport_type: type[FakeTransport]) -> None:
    model = FakeRealtimeModel()
    session, _, _ = await started(QuietAgent(), model, transport=transport_type())
    loop = asyncio.get_running_loop()
    handle = await session.say("Hello there, how are you?")  # 0.06 s a character
    assert session.current_speech is handle and not handle.done()
    t0 = loop.time()
    assert await handle is handle
    assert handle.done() and not handle.interrupted
    assert loop.time() - t0 == pytest.approx(0.2 + 0.06 * 25, abs=0.03)
    assert session.current_speech is None
    await session.close()


@pytest.mark.parametrize("transport_type", TRANSPORTS)
@virtual_clock
async def test_reply_waits_for_playback_by_default_and_is_not_barged_in_on(transport_type: type[FakeTransport]) -> None:
    model = FakeRealtimeModel([FakeResponse(text="Listen to this.", audio=2.0, delay=0.2)])
    session, transport, _ = await started(QuietAgent(), model, min_interruption_duration=0.2,
                                          transport=transport_type())

    async def user_talks_over_it() -> None:
        await asyncio.sleep(1.0)
        model.user_starts_speaking()

    talker = asyncio.ensure_future(user_talks_over_it())
    handle = await session.reply("Tell the user something")
    await talker
    assert handle.done() and not handle.interrupted
    assert transport.output.shape[0] / 24000 == pytest.approx(2.0)
    assert model.interrupts == []
    await session.close()


@virtual_clock
async def test_allow_interruptions_false_survives_speech_and_interrupt_but_not_force() -> None:
    model = FakeRealtimeModel()
    session, _, _ = await started(QuietAgent(), model, min_interruption_duration=0.2)
    handle = await session.say("This is important, please listen carefully.", allow_interruptions=False)
    await settle(0.5)
    model.user_starts_speaking()
    await settle(0.5)
    await session.interrupt()
    with pytest.raises(RuntimeError, match="does not allow interruptions"):  # as VideoSDK's UtteranceHandle
        handle.interrupt()
    assert not handle.done() and model.interrupts == []
    await session.interrupt(force=True)
    assert handle.done() and handle.interrupted and len(model.interrupts) == 1
    await session.close()


@virtual_clock
async def test_events_of_a_cancelled_response_are_dropped() -> None:
    model = FakeRealtimeModel([FakeResponse(text="Long answer.", audio=3.0, delay=0.1)])
    session, transport, _ = await started(QuietAgent(), model)
    handle = await session.reply(wait_for_playback=False)
    await settle(0.5)
    await session.interrupt()
    rid = f"{handle.id}_1"
    # a model that is slow to stop: more of the cancelled response arrives
    from agentsession import AgentAudio, AgentTranscript, ResponseDone
    from agentsession.testing import tone

    n = transport.output.shape[0]
    model.channel.emit(AgentAudio(tone(1.0), response_id=rid))
    model.channel.emit(AgentTranscript("late words", response_id=rid))
    model.channel.emit(ResponseDone(response_id=rid))
    await settle(2)
    assert transport.output.shape[0] == n
    assert "late words" not in [i.text for i in assistant_items(session)]
    await session.close()


class Wrapper:
    """A ``wrapper=True`` hookimpl around a notify hook."""

    name = "wrapper"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def agentsession_agent_state_changed(self, session: AgentSession, old: Any, new: Any) -> Generator[None]:
        self.seen.append(f"before {new}")
        yield
        self.seen.append(f"after {new}")


class StateObserver:
    name = "observer"

    def __init__(self, wrapper: Wrapper) -> None:
        self.wrapper = wrapper

    @hookimpl
    def agentsession_agent_state_changed(self, session: AgentSession, old: Any, new: Any) -> None:
        self.wrapper.seen.append(f"observed {new}")


@virtual_clock
async def test_a_wrapper_hookimpl_runs_around_a_notify_hook() -> None:
    wrapper = Wrapper()
    model = FakeRealtimeModel()
    session, _, _ = await started(QuietAgent(), model, plugins=[StateObserver(wrapper), wrapper])
    await session.close()
    assert wrapper.seen[:3] == ["before idle", "observed idle", "after idle"]


class SyncWaker:
    name = "sync-waker"

    def __init__(self, answer: object = True) -> None:
        self.answer = answer
        self.calls = 0

    @hookimpl
    def agentsession_wake_up(self, session: AgentSession, idle_s: float) -> object:
        self.calls += 1
        if self.answer:
            asyncio.get_running_loop().create_task(session.say("Sync here."))
        return self.answer


class AsyncWaker:
    name = "async-waker"

    def __init__(self, answer: object = None) -> None:
        self.answer = answer
        self.calls = 0

    @hookimpl
    async def agentsession_wake_up(self, session: AgentSession, idle_s: float) -> object:
        self.calls += 1
        if self.answer is not False:
            await session.say("Async here.")
        return self.answer


@pytest.mark.parametrize(("first", "expected"), [("async", ["Async here."]), ("sync", ["Sync here."])])
@virtual_clock
async def test_two_wake_up_plugins_exactly_one_speaks(first: str, expected: list[str]) -> None:
    sync, asyn = SyncWaker(), AsyncWaker()  # the async one resolves to None: it spoke, so it handled it
    plugins: list[object] = [sync, asyn] if first == "async" else [asyn, sync]  # pluggy: last registered first
    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model, wake_up=2.0, plugins=plugins)
    await settle(5)
    assert model.said == expected
    assert len(rec.of("wake_up")) == 1
    await session.close()


@virtual_clock
async def test_an_async_wake_up_that_resolves_false_lets_the_next_one_try() -> None:
    sync, asyn = SyncWaker(), AsyncWaker(answer=False)
    model = FakeRealtimeModel()
    session, _, _ = await started(QuietAgent(), model, wake_up=2.0, plugins=[sync, asyn])
    await settle(3)
    assert (asyn.calls, sync.calls) == (1, 1) and model.said == ["Sync here."]
    await session.close()


@virtual_clock
async def test_on_wake_up_wins_over_plugins() -> None:
    sync = SyncWaker()
    model = FakeRealtimeModel()

    async def nudge() -> None:
        await session.say("Still there?")

    session, _, _ = await started(QuietAgent(), model, wake_up=2.0, plugins=[sync], on_wake_up=nudge)
    await settle(3)
    assert model.said == ["Still there?"] and sync.calls == 0
    await session.close()


class SlowToConnect(FakeRealtimeModel):
    def __init__(self) -> None:
        super().__init__()
        self.connecting = asyncio.Event()

    async def start(self, options: ModelOptions) -> None:
        self.connecting.set()
        await asyncio.sleep(10)
        await super().start(options)


@virtual_clock
async def test_close_while_start_is_connecting_leaves_nothing_running() -> None:
    before = set(asyncio.all_tasks())
    model = SlowToConnect()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model))
    starting = asyncio.ensure_future(session.start(transport=transport))
    await model.connecting.wait()
    await session.close()
    with pytest.raises(AgentSessionError, match="closed while it was starting"):
        await starting
    assert model.closed and session.closed
    with pytest.raises(AgentSessionError):
        await session.start(transport=transport)
    await transport.close()
    assert {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()} == set()


@virtual_clock
async def test_a_link_drop_while_the_user_speaks_resets_the_states_and_is_reported() -> None:
    from agentsession import Reconnected, Reconnecting

    model = FakeRealtimeModel()
    session, _, rec = await started(QuietAgent(), model)
    model.user_starts_speaking()
    await settle(0.5)
    assert session.user_state.value == "speaking"
    model.channel.emit(Reconnecting(1, "connection lost"))
    await settle(0.1)
    assert (session.user_state.value, session.agent_state.value) == ("idle", "idle")
    model.channel.emit(Reconnected(1.5, audio_lost=0.0))
    await settle(0.1)
    assert [(d["attempt"], d["reason"]) for d in rec.of("reconnecting")] == [(1, "connection lost")]
    assert [(d["downtime"], d["audio_lost"]) for d in rec.of("reconnected")] == [(1.5, 0.0)]
    await session.close()


def test_chat_role_is_videosdk_s_enum_and_plain_strings_still_work() -> None:
    from agentsession import ChatContext, ChatRole

    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "hi")
    ctx.add_message("assistant", "hello")
    assert [m.role for m in ctx.items] == ["user", "assistant"]  # type: ignore[union-attr]
    assert ChatContext.from_json(ctx.to_json()).items[0].role == ChatRole.USER  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="invalid role"):
        ctx.add_message("robot", "beep")  # type: ignore[arg-type]


class SilentAboutTheUser(FakeRealtimeModel):
    """A model like Gemini Live: it hears the user but sends no "user started speaking"."""

    reports_user_speech = False


@virtual_clock
async def test_with_a_model_that_reports_no_speech_the_session_vad_drives_states_and_wake_up() -> None:
    import numpy as np

    from agentsession import AudioFrame, EnergyVAD
    from agentsession.testing import tone

    model = SilentAboutTheUser()
    woken: list[float] = []
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model), wake_up=2.0, vad=EnergyVAD())
    session.on_wake_up = lambda: woken.append(asyncio.get_running_loop().time())
    states: list[tuple[float, str]] = []
    session.on("user_state_changed", lambda d: states.append((round(asyncio.get_running_loop().time(), 2),
                                                              f"{d['state']}")))
    await session.start(transport=transport)
    t0 = asyncio.get_running_loop().time()
    silence = np.zeros((int(0.5 * 16000), 1), np.int16)
    speech = tone(4.0, 16000, 300)  # a four-second sentence: longer than the wake-up delay
    feeding = asyncio.ensure_future(transport.feed(AudioFrame(np.concatenate([silence, speech.data, silence, silence]), 16000)))
    await settle(3.0)
    assert session.user_state.value == "speaking"  # during the utterance, not after it
    await feeding
    await settle(1.0)
    (start, _), (stop, _) = [s for s in states if s[1] in ("speaking", "idle")][:2]
    assert start - t0 == pytest.approx(0.5, abs=0.25) and stop - t0 == pytest.approx(4.5, abs=0.7)
    assert not [w for w in woken if w < stop]  # never while the user talked
    assert session.agent_state.value == "thinking"  # the turn is over: the model's answer is awaited
    await settle(10.0)
    assert session.agent_state.value == "idle"  # no answer came: the turn is dropped, the wake-up may follow
    await session.close()
    await transport.close()


def test_the_best_installed_vad_is_the_highest_ranked() -> None:
    from agentsession import VAD
    from agentsession._manager import best_vad, create_manager

    class Better:
        name = "better-vad"

        @hookimpl
        def agentsession_vads(self) -> dict[str, tuple[int, Any]]:
            return {"better": (1000, lambda: "the better one")}

    assert best_vad(create_manager([Better()])) == "the better one"
    assert isinstance(best_vad(create_manager([])), VAD)  # EnergyVAD, or a better one installed


@virtual_clock
async def test_typed_lines_queue_as_turns() -> None:
    """console --text with lines piped in: each is answered in turn, none cuts the answer before it off."""
    model = FakeRealtimeModel([FakeResponse(text="first answer", audio=1.0), FakeResponse(text="second answer",
                                                                                          audio=1.0)])
    session, transport, rec = await started(QuietAgent(), model)
    transport.type_text("hello agent")
    transport.type_text("and another thing")
    await settle(4)
    assert model.texts == ["hello agent", "and another thing"] and model.interrupts == []
    assert [i.text for i in assistant_items(session)] == ["first answer", "second answer"]
    assert [m["interrupted"] for m in rec.of("metrics_collected")] == [False, False]
    await session.close()
