"""GeminiRealtime against a local Live server, through the real google-genai SDK."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest
from gemini_fake import FakeLiveServer
from google.genai import types

from agentsession import (
    AgentAudio,
    AgentTranscript,
    AudioFrame,
    ChatContext,
    Error,
    ModelError,
    ModelOptions,
    RealtimeModel,
    RealTimePipeline,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    ToolResult,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    function_tool,
)
from agentsession.testing import RealtimeModelContract, read_events
from agentsession_gemini import GeminiRealtime

KEY = "test-key-0123456789abcdef"
TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server() -> AsyncIterator[FakeLiveServer]:
    async with FakeLiveServer() as fake:
        yield fake


@function_tool
def get_time() -> str:
    """The current time."""
    return "12:00"


def make_model(server: FakeLiveServer, **kwargs: object) -> GeminiRealtime:
    options: dict[str, object] = {"api_key": KEY, "http_options": server.http_options(), "reconnect_delay": 0.01}
    options.update(kwargs)
    return GeminiRealtime(**options)  # type: ignore[arg-type]


async def started(server: FakeLiveServer, **kwargs: object) -> GeminiRealtime:
    model = make_model(server, **kwargs)
    await model.start(ModelOptions("You are a test agent.", [get_time], ChatContext()))
    return model


def speech(seconds: float, loud: bool = True) -> list[AudioFrame]:
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    data = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)) if loud else np.zeros(n)
    pcm = data.astype(np.int16).reshape(-1, 1)
    return [AudioFrame(pcm[i : i + 320], 16000) for i in range(0, n, 320)]


# ---------------------------------------------------------------------- contract


class TestGeminiContract(RealtimeModelContract):
    timeout = TIMEOUT

    @pytest.fixture(autouse=True)
    async def _server(self, clean_env: None) -> AsyncIterator[None]:
        async with FakeLiveServer(chunk_delay=0.01) as fake:
            self.server = fake
            yield

    async def create_model(self) -> RealtimeModel:
        return make_model(self.server)


# ---------------------------------------------------------------------- setup


async def test_setup_carries_config_and_key_in_header(server: FakeLiveServer) -> None:
    model = await started(server, voice="Kore", language="en-US")
    try:
        conn = server.current
        assert conn.path.endswith(".GenerativeService.BidiGenerateContent")
        assert conn.headers["x-goog-api-key"] == KEY
        assert KEY not in conn.path
        setup = conn.setup
        assert setup.model == "models/gemini-live-2.5-flash-preview"
        gen = setup.generation_config
        assert gen is not None and gen.response_modalities == [types.Modality.AUDIO]
        assert gen.speech_config is not None and gen.speech_config.language_code == "en-US"
        voice = gen.speech_config.voice_config
        assert voice is not None and voice.prebuilt_voice_config is not None
        assert voice.prebuilt_voice_config.voice_name == "Kore"
        assert setup.system_instruction is not None and setup.system_instruction.parts is not None
        assert setup.system_instruction.parts[0].text == "You are a test agent."
        assert setup.tools is not None and setup.tools[0].function_declarations is not None
        assert setup.tools[0].function_declarations[0].name == "get_time"
        assert setup.input_audio_transcription is not None and setup.output_audio_transcription is not None
        assert setup.session_resumption is not None and setup.session_resumption.handle is None
        assert setup.context_window_compression is not None
        assert setup.context_window_compression.sliding_window is not None
        assert model.input_sample_rate == 16000
        assert KEY not in repr(model)
    finally:
        await model.close()


async def test_missing_key_names_the_variables() -> None:
    with pytest.raises(ModelError) as info:
        GeminiRealtime()
    assert "GOOGLE_API_KEY" in str(info.value) and "GEMINI_API_KEY" in str(info.value)


async def test_key_from_environment(server: FakeLiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "env-key-abcdefghijklmnop")
    model = GeminiRealtime(http_options=server.http_options())
    await model.start(ModelOptions("x"))
    try:
        assert server.current.headers["x-goog-api-key"] == "env-key-abcdefghijklmnop"
    finally:
        await model.close()


async def test_start_fails_clearly_when_the_server_refuses(
    server: FakeLiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.refuse = 1
    model = make_model(server)
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError, match="cannot connect"):
        await model.start(ModelOptions("x"))
    await model.close()
    client_side = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any("x-goog-api-key" in m for m in client_side)  # websockets logs the headers at DEBUG...
    assert not any(KEY in m for m in client_side)  # ...with the key masked


# ---------------------------------------------------------------------- audio


async def test_user_audio_in_model_audio_out(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        for frame in speech(0.4) + speech(0.5, loud=False):
            model.push_audio(frame)
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        kinds = [type(e) for e in events]
        assert kinds.index(UserSpeechStarted) < kinds.index(UserSpeechStopped) < kinds.index(AgentAudio)
        stopped = next(e for e in events if isinstance(e, UserSpeechStopped))
        assert stopped.audio_end is not None and 0.35 <= stopped.audio_end <= 0.5
        audio = [e.frame for e in events if isinstance(e, AgentAudio)]
        assert all(f.sample_rate == 24000 for f in audio)
        assert sum(f.duration for f in audio) == pytest.approx(5 * 0.04)
        user = [e for e in events if isinstance(e, UserTranscript)]
        assert user[-1] == UserTranscript("hello gemini", final=True)
        agent = [e for e in events if isinstance(e, AgentTranscript) and e.final]
        assert agent == [AgentTranscript("word0 word1 word2 word3 word4 ", final=True)]
        done = events[-1]
        assert isinstance(done, ResponseDone) and not done.interrupted
        assert done.usage["prompt_token_count"] == 12 and done.usage["total_token_count"] == 46
        # the audio went up as 16 kHz pcm16
        blobs = [m.realtime_input.audio for m in server.current.messages if m.realtime_input and m.realtime_input.audio]
        assert blobs and all(b.mime_type == "audio/pcm;rate=16000" for b in blobs)
        assert server.current.audio_bytes == len(speech(0.9)) * 640
    finally:
        await model.close()


async def test_server_interrupted_is_barge_in(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 50, 0.02
    model = await started(server)
    try:
        await model.send_text("tell me a long story")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        for frame in speech(0.1):
            model.push_audio(frame)
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        started_at = next(i for i, e in enumerate(events) if isinstance(e, UserSpeechStarted))
        assert events[-1] == ResponseDone(interrupted=True)
        assert started_at < len(events) - 1
    finally:
        await model.close()


async def test_interrupt_drops_the_rest_of_the_response(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 10, 0.01
    model = await started(server)
    try:
        await model.send_text("talk")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        await RealTimePipeline(model).interrupt(0.02)
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert events[-1] == ResponseDone(interrupted=True)
        assert not any(isinstance(e, AgentAudio) for e in events)
        await model.say("Next!")  # the next response comes through whole
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert sum(isinstance(e, AgentAudio) for e in events) == 10
        turn = server.current.messages[-1].client_content
        assert turn is not None and turn.turns is not None and turn.turns[0].parts is not None
        assert "Next!" in (turn.turns[0].parts[0].text or "")
    finally:
        await model.close()


# ---------------------------------------------------------------------- tools


async def test_tool_call_round_trip(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.send_text("use the tool please")
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        call = next(e for e in events if isinstance(e, ToolCall))
        assert call.name == "get_time" and json.loads(call.arguments) == {}
        await model.send_tool_result(ToolResult(call.id, call.name, "12:00"))
        message = await server.wait_message(lambda m: m.tool_response is not None)
        assert message.tool_response is not None and message.tool_response.function_responses is not None
        response = message.tool_response.function_responses[0]
        assert response.id == call.id and response.name == "get_time"
        assert response.response == {"output": "12:00"}
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert any(isinstance(e, AgentAudio) for e in events)
    finally:
        await model.close()


async def test_tool_call_cancellation(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.send_text("use the tool")
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        call = next(e for e in events if isinstance(e, ToolCall))
        cancel = types.LiveServerToolCallCancellation(ids=[call.id])
        await server.send(types.LiveServerMessage(tool_call_cancellation=cancel))
        assert await read_events(model, lambda e: True) == [ToolCallCancelled((call.id,))]
        await model.send_tool_result(ToolResult(call.id, call.name, "late"))  # ignored: cancelled
        await model.send_text("hi")
        await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert not any(m.tool_response for m in server.current.messages)
    finally:
        await model.close()


# ---------------------------------------------------------------------- resumption


async def test_go_away_resumes_with_the_latest_handle(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        first = server.current
        await server.go_away(first)
        second = await server.wait_connections(2)
        assert second.setup.session_resumption is not None
        assert second.setup.session_resumption.handle == "handle-1"
        await asyncio.wait_for(first.closed.wait(), TIMEOUT)
        await model.send_text("still there?")
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert any(isinstance(e, AgentAudio) for e in events)
        assert not any(isinstance(e, Error) for e in events)
        assert model.resumption_handle == "handle-2"
    finally:
        await model.close()


async def test_dropped_socket_reconnects_and_audio_keeps_flowing(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        server.drop()
        second = await server.wait_connections(2)
        assert second.setup.session_resumption is not None
        assert second.setup.session_resumption.handle == "handle-1"
        error = (await read_events(model, lambda e: isinstance(e, Error)))[-1]
        assert isinstance(error, Error) and error.recoverable and error.code == "reconnecting"
        for frame in speech(0.4) + speech(0.5, loud=False):
            model.push_audio(frame)
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert any(isinstance(e, AgentAudio) for e in events)
        assert second.audio_bytes > 0
    finally:
        await model.close()


async def test_drop_mid_response_ends_it_and_the_conversation_goes_on(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 50, 0.02
    model = await started(server)
    try:
        await model.send_text("talk")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        server.drop()
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert events[-1] == ResponseDone(interrupted=True)
        await server.wait_connections(2)
        server.reply_chunks, server.chunk_delay = 3, 0.0
        await model.send_text("again")
        events = await read_events(model, lambda e: isinstance(e, ResponseDone) and not e.interrupted)
        assert sum(isinstance(e, AgentAudio) for e in events) >= 3
    finally:
        await model.close()


async def test_gives_up_after_n_failures_with_a_fatal_error(server: FakeLiveServer) -> None:
    model = await started(server, max_reconnects=2)
    try:
        server.refuse = 10
        server.drop()
        events = await read_events(model, lambda e: isinstance(e, Error) and not e.recoverable)
        fatal = events[-1]
        assert isinstance(fatal, Error) and "gave up after 2 reconnects" in fatal.message
        assert len(server.connections) == 1  # refused attempts never got past the handshake
        assert server.refuse == 10 - 2
        await model.send_text("anyone?")  # ignored, no hang
    finally:
        await model.close()
    await asyncio.wait_for(read_events(model, lambda e: False), TIMEOUT)  # the stream ended


async def test_reconnect_without_handle_replays_history(server: FakeLiveServer) -> None:
    history = ChatContext()
    history.add_message("user", "My name is Ada.")
    history.add_message("assistant", "Hello Ada!")
    model = make_model(server)
    await model.start(ModelOptions("x", [], history))
    try:
        message = await server.wait_message(lambda m: m.client_content is not None)
        content = message.client_content
        assert content is not None and content.turns is not None and not content.turn_complete
        assert [(t.role, t.parts[0].text if t.parts else None) for t in content.turns] == [
            ("user", "My name is Ada."),
            ("model", "Hello Ada!"),
        ]
    finally:
        await model.close()


async def test_reply_and_update_instructions(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.reply()
        events = await read_events(model, lambda e: isinstance(e, ResponseDone))
        assert any(isinstance(e, AgentAudio) for e in events)
        bare = server.current.messages[-1].client_content
        assert bare is not None and bare.turn_complete and not bare.turns
        await model.reply("Be brief.")
        await read_events(model, lambda e: isinstance(e, ResponseDone))
        await model.update_instructions("You are a pirate.")
        update = await server.wait_message(lambda m: m.context_update is not None)
        assert update.context_update is not None
        instruction = update.context_update.system_instruction
        assert isinstance(instruction, types.Content) and instruction.parts is not None
        assert instruction.parts[0].text == "You are a pirate."
    finally:
        await model.close()
