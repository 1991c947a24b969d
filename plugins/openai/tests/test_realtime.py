"""OpenAIRealtime against the local fake Realtime server, through the real SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from openai.types.beta.realtime.session import InputAudioTranscription, TurnDetection

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    Error,
    ModelError,
    ModelOptions,
    PipelineEvent,
    RealtimeModel,
    ResponseDone,
    ToolCall,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    function_tool,
)
from agentsession.testing import RealtimeModelContract, read_events, tone
from agentsession_openai import OpenAIRealtime, OpenAIRealtimeConfig
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

TIMEOUT = 5.0
USAGE = {"input_tokens": 12, "output_tokens": 34, "total_tokens": 46}


@function_tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: the city's name
    """
    return {"city": city, "temp": 21}


@function_tool
def get_time() -> str:
    """The current time."""
    return "12:00"


def make_model(server: FakeRealtimeServer, **kwargs: Any) -> OpenAIRealtime:
    kwargs.setdefault("reconnect_delay", 0.01)
    return OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, **kwargs)


async def started(server: FakeRealtimeServer, ctx: ChatContext | None = None, **kwargs: Any) -> OpenAIRealtime:
    model = make_model(server, **kwargs)
    await model.start(ModelOptions("You are a test agent.", [get_weather, get_time], ctx or ChatContext()))
    return model


def done(rid: str | None = None) -> Callable[[PipelineEvent], bool]:
    """``read_events``' stop condition: the ``ResponseDone`` of ``rid`` (of any response if ``None``)."""
    return lambda e: isinstance(e, ResponseDone) and (rid is None or e.response_id == rid)


def audio_seconds(events: list[PipelineEvent]) -> float:
    return sum(e.frame.duration for e in events if isinstance(e, AgentAudio))


def response_ids(events: list[PipelineEvent]) -> set[str]:
    return {e.response_id for e in events if isinstance(e, AgentAudio | AgentTranscript | ToolCall | ResponseDone)}


class Recorder:
    """Every event of a model as it is emitted (a sink, so what came after a call is exactly known)."""

    def __init__(self, model: RealtimeModel) -> None:
        self.events: list[PipelineEvent] = []
        self._changed = asyncio.Event()
        model.channel.attach(self._sink)

    def _sink(self, event: PipelineEvent | None) -> None:
        if event is not None:
            self.events.append(event)
            self._changed.set()

    async def until(self, accept: Callable[[PipelineEvent], bool], since: int = 0) -> PipelineEvent:
        async def find() -> PipelineEvent:
            while True:
                found = next((e for e in self.events[since:] if accept(e)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), TIMEOUT)


class TestContract(RealtimeModelContract):
    timeout = TIMEOUT

    @pytest.fixture(autouse=True)
    def _server(self, realtime_server: FakeRealtimeServer) -> None:
        self.server = realtime_server

    async def create_model(self) -> RealtimeModel:
        self.server.chunk_delay = 0.02  # slow enough that interrupt() meets a live response
        return make_model(self.server)


async def test_session_config_and_greeting(realtime_server: FakeRealtimeServer) -> None:
    model = await started(realtime_server)
    try:
        conn = realtime_server.current
        assert conn.path == "/v1/realtime?model=gpt-realtime"
        session = conn.session
        assert session["instructions"] == "You are a test agent."
        assert [t["name"] for t in session["tools"]] == ["get_weather", "get_time"]
        assert session["tools"][0]["type"] == "function" and session["tool_choice"] == "auto"
        detection = session["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "create_response": True, "interrupt_response": False}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["output_modalities"] == ["audio"]

        await model.say("Hello! How can I help you today?", response_id="greeting")
        events = await read_events(model, done())
        create = conn.of_type("response.create")[-1]
        assert "Hello! How can I help you today?" in create.response.instructions
        assert create.response.tool_choice == "none"
        assert create.response.metadata == {"agentsession_response_id": "greeting"}
        assert audio_seconds(events) == pytest.approx(realtime_server.reply_audio)
        finals = [e.text for e in events if isinstance(e, AgentTranscript) and e.final]
        assert finals == ["Hello! How can I help you today?"]
        assert response_ids(events) == {"greeting"}
        assert events[-1] == ResponseDone(interrupted=False, usage=USAGE, response_id="greeting")
    finally:
        await model.close()


async def test_user_turn_with_audio_both_ways(realtime_server: FakeRealtimeServer) -> None:
    model = await started(realtime_server)
    try:
        speech = tone(0.5, 24000)
        silence = AudioFrame.silence(0.5, 24000)
        audio = np.concatenate([speech.data, silence.data])
        for i in range(0, len(audio), 480):  # 20 ms frames, as the session pushes them
            model.push_audio(AudioFrame(audio[i : i + 480], 24000))
        events = await read_events(model, done())
        kinds = [type(e) for e in events]
        assert kinds.index(UserSpeechStarted) < kinds.index(UserSpeechStopped) < kinds.index(AgentAudio)
        stopped = next(e for e in events if isinstance(e, UserSpeechStopped))
        assert stopped.audio_end == pytest.approx(0.5)
        assert UserTranscript("hello there", final=True) in events
        assert audio_seconds(events) == pytest.approx(realtime_server.reply_audio)
        # the server VAD started this response: it carries the server's response id
        assert response_ids(events) == {realtime_server.current.response_id}
        appends = realtime_server.current.of_type("input_audio_buffer.append")
        assert len(appends) >= 8
        assert all(len(a.audio) == len(appends[0].audio) for a in appends)  # 100 ms each
        assert realtime_server.current.appended_ms == pytest.approx(100 * len(appends))
    finally:
        await model.close()


async def test_tool_call_round_trip(realtime_server: FakeRealtimeServer) -> None:
    realtime_server.tool_arguments["get_weather"] = {"city": "Paris"}
    model = await started(realtime_server)
    try:
        await model.send_text("How is the weather? Use get_weather.", response_id="turn-1")
        events = await read_events(model, done())
        (call,) = [e for e in events if isinstance(e, ToolCall)]
        assert call.name == "get_weather" and call.arguments == '{"city": "Paris"}'
        assert call.response_id == "turn-1" and events[-1] == ResponseDone(usage=USAGE, response_id="turn-1")
        result = await get_weather.invoke(call.id, call.arguments)
        await model.send_tool_results([ToolResult(call.id, call.name, result.output)], response_id="turn-1b")
        events = await read_events(model, done())
        assert audio_seconds(events) > 0 and response_ids(events) == {"turn-1b"}
        conn = realtime_server.current
        output = [e.item for e in conn.of_type("conversation.item.create") if e.item.type == "function_call_output"]
        assert output[0].call_id == call.id and "Paris" in output[0].output
        creates = conn.of_type("response.create")
        assert [c.response.metadata["agentsession_response_id"] for c in creates] == ["turn-1", "turn-1b"]
    finally:
        await model.close()


async def test_the_results_of_one_response_go_together_with_one_continuation(
    realtime_server: FakeRealtimeServer,
) -> None:
    realtime_server.tool_arguments["get_weather"] = {"city": "Oslo"}
    model = await started(realtime_server)
    try:
        await model.send_text("Use get_weather and get_time.", response_id="r1")
        events = await read_events(model, done())
        calls = [e for e in events if isinstance(e, ToolCall)]
        assert [c.name for c in calls] == ["get_weather", "get_time"]
        assert [type(e) for e in events[-3:]] == [ToolCall, ToolCall, ResponseDone]  # calls just before done
        assert response_ids(events) == {"r1"}
        results = [ToolResult(c.id, c.name, (await tool.invoke(c.id, c.arguments)).output)
                   for c, tool in zip(calls, (get_weather, get_time), strict=True)]
        await model.send_tool_results(results, response_id="r2")
        events = await read_events(model, done())
        final = next(e for e in events if isinstance(e, AgentTranscript) and e.final)
        assert final.text == 'The answers are {"city": "Oslo", "temp": 21}; 12:00.'
        assert response_ids(events) == {"r2"}
        conn = realtime_server.current
        after_calls = [e for e in conn.received if e.type in ("conversation.item.create", "response.create")][-3:]
        assert [e.type for e in after_calls] == ["conversation.item.create", "conversation.item.create",
                                                 "response.create"]
        assert [e.item.call_id for e in after_calls[:2]] == [c.id for c in calls]
        assert len(conn.of_type("response.create")) == 2  # one continuation for both results
    finally:
        await model.close()


async def test_interrupt_truncates_each_response_at_its_own_position(realtime_server: FakeRealtimeServer) -> None:
    """Two answers queued for playout, the user heard all of the first and 0.7 s of the second: only the
    second's item is cut, at 700 ms of its own audio. Then: the first heard 0.4 s, the second not at all."""
    realtime_server.reply_audio = 1.0
    model = await started(realtime_server)
    try:
        conn = realtime_server.current
        await model.say("Let me check.", response_id="a")
        await model.say("It is sunny today.", response_id="b")
        events = await read_events(model, done("b"))
        assert [e.response_id for e in events if isinstance(e, ResponseDone)] == ["a", "b"]
        assert audio_seconds(events) == pytest.approx(2.0)
        item_a, item_b = list(conn.audio_sent_ms)
        await model.interrupt({"a": 1.0, "b": 0.7})
        await realtime_server.wait_for("conversation.item.truncate")
        assert conn.truncations == [(item_b, 700)]
        assert not conn.of_type("response.cancel")  # nothing was being generated
        await model.interrupt({"b": 0.9})  # already cut: nothing more is sent
        await model.say("Next.", response_id="c")
        await model.say("And more.", response_id="d")
        events = await read_events(model, done("d"))
        item_c, item_d = list(conn.audio_sent_ms)[2:]
        await model.interrupt({"c": 0.4, "d": None})
        await realtime_server.wait_for("conversation.item.truncate", 3)
        assert conn.truncations == [(item_b, 700), (item_c, 400), (item_d, 0)]
        assert len(conn.of_type("conversation.item.truncate")) == 3
    finally:
        await model.close()


async def test_interrupt_cuts_the_item_the_position_falls_in_and_later_ones(
    realtime_server: FakeRealtimeServer,
) -> None:
    realtime_server.reply_audio, realtime_server.audio_items = 1.0, 2  # two items of 0.5 s each
    model = await started(realtime_server)
    try:
        conn = realtime_server.current
        await model.say("One two. Three four.", response_id="a")
        events = await read_events(model, done("a"))
        assert [e.text for e in events if isinstance(e, AgentTranscript) and e.final][-1] == "One two. Three four."
        await model.say("Five six. Seven eight.", response_id="b")
        await read_events(model, done("b"))
        a1, a2, b1, b2 = list(conn.audio_sent_ms)
        await model.interrupt({"a": 0.7})  # into the second item: the first was heard whole
        await model.interrupt({"b": 0.3})  # into the first item: the second was not heard at all
        await realtime_server.wait_for("conversation.item.truncate", 3)
        assert conn.truncations == [(a2, 200), (b1, 300), (b2, 0)]
        assert a1 not in dict(conn.truncations)
    finally:
        await model.close()


async def test_interrupt_cancels_the_live_response_and_drops_the_queued_one(
    realtime_server: FakeRealtimeServer,
) -> None:
    realtime_server.reply_audio, realtime_server.chunk_delay = 3.0, 0.02
    model = await started(realtime_server)
    recorder = Recorder(model)
    try:
        conn = realtime_server.current
        await model.say("A long story.", response_id="a")
        await model.say("Queued behind it.", response_id="b")  # waits: one response at a time
        await recorder.until(lambda e: isinstance(e, AgentAudio))
        await model.interrupt({"a": 0.05, "b": None})
        mark = len(recorder.events)
        await realtime_server.wait_for("response.cancel")
        assert conn.of_type("response.cancel")[0].response_id == conn.response_id
        await model.say("Something else.", response_id="c")
        await recorder.until(done("c"), since=mark)
        after = recorder.events[mark:]
        assert response_ids(after) == {"c"}, "an event of a stopped response came after interrupt() returned"
        assert not any(isinstance(e, ResponseDone) and e.response_id in ("a", "b") for e in recorder.events)
        creates = [c.response.metadata["agentsession_response_id"] for c in conn.of_type("response.create")]
        assert creates == ["a", "c"]  # b was dropped before it was asked for
        (item_a, end_ms), = conn.truncations
        assert item_a == list(conn.audio_sent_ms)[0] and end_ms == 50
    finally:
        await model.close()


async def test_interrupt_before_the_server_created_the_response(realtime_server: FakeRealtimeServer) -> None:
    realtime_server.reply_audio, realtime_server.chunk_delay = 3.0, 0.02
    model = await started(realtime_server)
    recorder = Recorder(model)
    try:
        await model.say("Never mind.", response_id="a")  # sent; its response.created has not been read yet
        await model.interrupt({"a": None})
        await realtime_server.wait_for("response.cancel")
        await model.say("Hello.", response_id="b")
        await recorder.until(done("b"))
        assert response_ids(recorder.events) == {"b"}
    finally:
        await model.close()


async def test_update_agent_changes_instructions_and_tools_and_keeps_the_conversation(
    realtime_server: FakeRealtimeServer,
) -> None:
    model = make_model(realtime_server)
    await model.start(ModelOptions("You are a test agent.", [get_weather], ChatContext()))
    try:
        conn = realtime_server.current
        await model.send_text("My name is Ada.", response_id="r1")
        await read_events(model, done("r1"))
        items = len(conn.items)
        await model.update_agent("You are a pirate.", [get_time])
        await realtime_server.wait_for("session.update", 2)
        update = conn.of_type("session.update")[-1]
        assert update.session.instructions == "You are a pirate."
        assert [t.name for t in update.session.tools] == ["get_time"]
        assert conn.session["instructions"] == "You are a pirate."
        assert len(realtime_server.connections) == 1 and len(conn.items) == items  # same conversation
        await model.send_text("What time is it? Use get_time.", response_id="r2")
        events = await read_events(model, done("r2"))
        assert [e.name for e in events if isinstance(e, ToolCall)] == ["get_time"]
        await model.reply("Be brief.", response_id="r3")
        await read_events(model, done("r3"))
        assert conn.of_type("response.create")[-1].response.instructions == "You are a pirate.\n\nBe brief."
    finally:
        await model.close()


async def test_drop_mid_response_reports_it_and_asks_again_for_the_queued_one(
    realtime_server: FakeRealtimeServer,
) -> None:
    realtime_server.reply_audio, realtime_server.chunk_delay = 3.0, 0.02
    model = await started(realtime_server)
    try:
        first = realtime_server.current
        await model.say("A long story.", response_id="a")
        await model.say("Then this.", response_id="b")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        realtime_server.reply_audio, realtime_server.chunk_delay = 0.3, 0.002
        await realtime_server.drop()
        events = await read_events(model, done("a"))
        assert Error("the OpenAI Realtime connection dropped during a response; it was cut short",
                     recoverable=True, code="connection_lost") in events
        assert events[-1] == ResponseDone(interrupted=True, response_id="a")
        events = await read_events(model, done())
        assert events[-1] == ResponseDone(usage=USAGE, response_id="b")
        assert audio_seconds(events) == pytest.approx(0.3)
        second = realtime_server.current
        assert second is not first and model.reconnects == 1
        assert second.session["instructions"] == "You are a test agent."
        assert [c.response.metadata for c in second.of_type("response.create")] == [{"agentsession_response_id": "b"}]
    finally:
        await model.close()


async def test_configured_only_through_the_sdk_environment(
    realtime_server: FakeRealtimeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", realtime_server.base_url)
    model = OpenAIRealtime(model="gpt-realtime")
    await model.start(ModelOptions("You are a test agent."))
    try:
        assert realtime_server.current.path == "/v1/realtime?model=gpt-realtime"
        await model.say("Hi.", response_id="hi")
        events = await read_events(model, done())
        assert events[-1] == ResponseDone(usage=USAGE, response_id="hi") and audio_seconds(events) > 0
    finally:
        await model.close()


async def test_videosdk_style_config(realtime_server: FakeRealtimeServer) -> None:
    config = OpenAIRealtimeConfig(
        voice="verse",
        modalities=["text", "audio"],
        turn_detection=TurnDetection(type="server_vad", threshold=0.6, prefix_padding_ms=300, silence_duration_ms=200),
        input_audio_transcription=InputAudioTranscription(model="whisper-1"),
        tool_choice="required",
    )
    model = OpenAIRealtime(model="gpt-realtime", config=config, api_key=API_KEY, base_url=realtime_server.base_url)
    await model.start(ModelOptions("x"))
    try:
        session = realtime_server.current.session
        assert session["audio"]["output"]["voice"] == "verse"
        assert session["audio"]["input"]["turn_detection"] == {
            "type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 300, "silence_duration_ms": 200,
            "create_response": True, "interrupt_response": False,  # ours, as VideoSDK's example left them unset
        }
        assert session["audio"]["input"]["transcription"] == {"model": "whisper-1"}
        assert session["output_modalities"] == ["audio"] and session["tool_choice"] == "required"
    finally:
        await model.close()
    # a keyword beats the config; text only; no server VAD
    text_only = OpenAIRealtimeConfig(voice="verse", modalities=["text"], turn_detection=None)
    model = OpenAIRealtime(voice="alloy", config=text_only, api_key=API_KEY, base_url=realtime_server.base_url,
                           input_transcription=None)
    await model.start(ModelOptions("x"))
    try:
        session = realtime_server.current.session
        assert session["audio"]["output"]["voice"] == "alloy" and session["output_modalities"] == ["text"]
        assert session["audio"]["input"]["turn_detection"] is None
        assert "transcription" not in session["audio"]["input"]
    finally:
        await model.close()


async def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIRealtime()
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await model.start(ModelOptions("x"))
    await model.close()


def test_repr_hides_the_key() -> None:
    model = OpenAIRealtime(api_key=API_KEY)
    assert API_KEY not in repr(model) and "OpenAIRealtime(" in repr(model)


async def test_wrong_key_fails_at_start(realtime_server: FakeRealtimeServer) -> None:
    model = OpenAIRealtime(api_key="sk-wrong-key-0000000000000000", base_url=realtime_server.base_url)
    with pytest.raises(ModelError, match="HTTP 401") as info:
        await model.start(ModelOptions("x"))
    assert "sk-wrong" not in str(info.value)
    await model.close()


async def test_server_errors(realtime_server: FakeRealtimeServer) -> None:
    model = await started(realtime_server)
    try:
        await realtime_server.send_error("rate_limit_exceeded", "slow down")
        events = await read_events(model, lambda e: isinstance(e, Error))
        assert events[-1] == Error("OpenAI Realtime: slow down", recoverable=True, code="rate_limit_exceeded")
        await realtime_server.send_error("invalid_api_key", "revoked", type="authentication_error")
        events = await read_events(model, lambda e: isinstance(e, Error))
        assert events[-1].recoverable is False  # type: ignore[union-attr]
    finally:
        await model.close()


async def test_requests_during_a_response_wait_their_turn(realtime_server: FakeRealtimeServer) -> None:
    realtime_server.chunk_delay = 0.01
    model = await started(realtime_server)
    try:
        await model.say("First.", response_id="one")
        await model.reply("Be cheerful.", response_id="two")
        events = await read_events(model, done("two"))
        finals = [(e.response_id, e.text) for e in events if isinstance(e, AgentTranscript) and e.final]
        assert finals == [("one", "First."), ("two", "How can I help?")]
        assert [e.response_id for e in events if isinstance(e, ResponseDone)] == ["one", "two"]
        creates = realtime_server.current.of_type("response.create")
        assert len(creates) == 2 and creates[1].response.instructions == "You are a test agent.\n\nBe cheerful."
        assert not any(isinstance(e, Error) for e in events)
    finally:
        await model.close()


def test_history_replay_items_skip_records_and_send_developer_text_as_system() -> None:
    from agentsession import ChatContext, ChatRole
    from agentsession_openai._realtime import _chat_item

    ctx = ChatContext()
    developer = ctx.add_message(role=ChatRole.DEVELOPER, content="No emoji.")
    handoff = ctx.add_handoff(to_agent="Pirate", from_agent="FrontDesk")
    item = _chat_item(developer)
    assert item is not None and item["role"] == "system"  # the Realtime API has no developer role
    assert _chat_item(handoff) is None
