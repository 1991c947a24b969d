"""OpenAIRealtime against the local fake Realtime server, through the real SDK."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from openai_fake_realtime import API_KEY, FakeRealtimeServer

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
from agentsession_openai import OpenAIRealtime

TIMEOUT = 5.0


@function_tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: the city's name
    """
    return {"city": city, "temp": 21}


def make_model(server: FakeRealtimeServer, **kwargs: Any) -> OpenAIRealtime:
    kwargs.setdefault("reconnect_delay", 0.01)
    return OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, **kwargs)


async def started(server: FakeRealtimeServer, ctx: ChatContext | None = None, **kwargs: Any) -> OpenAIRealtime:
    model = make_model(server, **kwargs)
    await model.start(ModelOptions("You are a test agent.", [get_weather], ctx or ChatContext()))
    return model


def done(event: PipelineEvent) -> bool:
    return isinstance(event, ResponseDone)


def audio_seconds(events: list[PipelineEvent]) -> float:
    return sum(e.frame.duration for e in events if isinstance(e, AgentAudio))


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
        assert session["tools"][0]["name"] == "get_weather" and session["tools"][0]["type"] == "function"
        detection = session["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "create_response": True, "interrupt_response": False}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

        await model.say("Hello! How can I help you today?")
        events = await read_events(model, done)
        create = conn.of_type("response.create")[-1]
        assert "Hello! How can I help you today?" in create.response.instructions
        assert create.response.tool_choice == "none"
        assert audio_seconds(events) == pytest.approx(realtime_server.reply_audio)
        finals = [e.text for e in events if isinstance(e, AgentTranscript) and e.final]
        assert finals == ["Hello! How can I help you today?"]
        assert events[-1] == ResponseDone(interrupted=False, usage={"input_tokens": 12, "output_tokens": 34,
                                                                    "total_tokens": 46})
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
        events = await read_events(model, done)
        kinds = [type(e) for e in events]
        assert kinds.index(UserSpeechStarted) < kinds.index(UserSpeechStopped) < kinds.index(AgentAudio)
        stopped = next(e for e in events if isinstance(e, UserSpeechStopped))
        assert stopped.audio_end == pytest.approx(0.5)
        assert UserTranscript("hello there", final=True) in events
        assert audio_seconds(events) == pytest.approx(realtime_server.reply_audio)
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
        await model.send_text("How is the weather? Use get_weather.")
        events = await read_events(model, done)
        call = next(e for e in events if isinstance(e, ToolCall))
        assert call.name == "get_weather" and call.arguments == '{"city": "Paris"}'
        result = await get_weather.invoke(call.id, call.arguments)
        await model.send_tool_result(ToolResult(call.id, call.name, result.output))
        events = await read_events(model, done)
        assert audio_seconds(events) > 0
        conn = realtime_server.current
        output = [e.item for e in conn.of_type("conversation.item.create") if e.item.type == "function_call_output"]
        assert output[0].call_id == call.id and "Paris" in output[0].output
        assert len(conn.of_type("response.create")) == 2
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
        await model.say("First.")
        await model.reply("Be cheerful.")
        events = await read_events(model, done)
        events += await read_events(model, done)
        finals = [e.text for e in events if isinstance(e, AgentTranscript) and e.final]
        assert finals == ["First.", "How can I help?"]
        creates = realtime_server.current.of_type("response.create")
        assert len(creates) == 2 and creates[1].response.instructions == "You are a test agent.\n\nBe cheerful."
        assert not any(isinstance(e, Error) for e in events)
    finally:
        await model.close()
