"""GeminiRealtime against a local Live server, through the real google-genai SDK."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from google.genai import types

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
    Reconnected,
    Reconnecting,
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
from agentsession_gemini import GeminiLiveConfig, GeminiRealtime
from agentsession_gemini.fake import FakeLiveServer

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
        assert fake.protocol_errors == []


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


def done(rid: str | None = None) -> Callable[[PipelineEvent], bool]:
    """``read_events``' stop condition: the ``ResponseDone`` of ``rid`` (of any response if ``None``)."""
    return lambda e: isinstance(e, ResponseDone) and (rid is None or e.response_id == rid)


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


# ---------------------------------------------------------------------- audio and response ids


async def test_user_audio_in_model_audio_out(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        for frame in speech(0.4) + speech(0.5, loud=False):
            model.push_audio(frame)
        events = await read_events(model, done())
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
        assert agent == [AgentTranscript("word0 word1 word2 word3 word4 ", final=True, response_id="gemini-turn-1")]
        assert response_ids(events) == {"gemini-turn-1"}  # the model's own turn: an id of its own
        done_event = events[-1]
        assert isinstance(done_event, ResponseDone) and not done_event.interrupted
        assert done_event.usage["prompt_token_count"] == 12 and done_event.usage["total_token_count"] == 46
        # the audio went up as 16 kHz pcm16
        blobs = [m.realtime_input.audio for m in server.current.messages if m.realtime_input and m.realtime_input.audio]
        assert blobs and all(b.mime_type == "audio/pcm;rate=16000" for b in blobs)
        assert all(len(b.data or b"") % 1600 == 0 for b in blobs)  # whole 50 ms chunks (20 messages a second)
        assert server.current.audio_bytes == len(speech(0.9)) * 640
    finally:
        await model.close()


async def test_audio_goes_up_in_50_ms_chunks(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        for frame in speech(0.06):  # three 20 ms frames: one whole 50 ms chunk, 10 ms waiting for the next
            model.push_audio(frame)
        await server.wait_audio(await server.wait_connections(1), 1600)
        assert model._link.backlog.pushed == pytest.approx(0.05)
        for frame in speech(0.04):
            model.push_audio(frame)
        assert model._link.backlog.pushed == pytest.approx(0.1)
    finally:
        await model.close()


async def test_audio_goes_up_as_the_sdk_would_send_it_byte_for_byte() -> None:
    from google.genai.live import AsyncSession

    from agentsession.plugin import AudioChunk

    class Socket:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, message: str) -> None:
            self.sent.append(message)

    sdk, ours = Socket(), Socket()
    session = AsyncSession(api_client=genai_client()._api_client, websocket=sdk)  # type: ignore[arg-type]
    pcm = (np.arange(800, dtype=np.int16) * 37).reshape(-1, 1)  # bytes that base64 turns into "-" and "_"
    await session.send_realtime_input(audio=types.Blob(data=pcm.tobytes(), mime_type="audio/pcm;rate=16000"))
    live = type("Live", (), {"session": AsyncSession(api_client=genai_client()._api_client, websocket=ours)})()  # type: ignore[arg-type]
    await GeminiRealtime(api_key="test-key-0123456789").link_send_audio(
        live, [AudioChunk(0.0, AudioFrame(pcm[:400], 16000), True), AudioChunk(0.025, AudioFrame(pcm[400:], 16000), True)])
    assert ours.sent == sdk.sent and "_" in sdk.sent[0]


def genai_client() -> Any:
    from google import genai

    return genai.Client(api_key="test-key-0123456789")


async def test_the_link_offers_no_compression_unless_the_caller_asks(server: FakeLiveServer) -> None:
    """websockets offers permessage-deflate by default and the fake accepts it: deflating base64 audio costs
    CPU both ways for little. The link declines it; ``async_client_args`` given by the caller still win."""
    for args, extensions in (({}, []), ({"compression": "deflate"}, ["PerMessageDeflate"])):
        options = server.http_options()
        options = options.model_copy(update={"async_client_args": {**(options.async_client_args or {}), **args}})
        model = await started(server, http_options=options)
        try:
            conn = model._link.conn
            assert conn is not None
            socket = model.link_socket(conn)
            assert [type(e).__name__ for e in socket.protocol.extensions] == extensions
        finally:
            await model.close()


async def test_requests_are_answered_in_order_each_with_its_id(server: FakeLiveServer) -> None:
    server.chunk_delay = 0.01
    model = await started(server)
    try:
        await model.say("Hello!", response_id="greeting")
        events = await read_events(model, lambda e: isinstance(e, AgentAudio))
        await model.reply("Be brief.", response_id="second")  # asked while the greeting is being spoken
        await model.send_text("hi", response_id="third")
        events += await read_events(model, done("third"))
        dones = [e for e in events if isinstance(e, ResponseDone)]
        assert [(d.response_id, d.interrupted) for d in dones] == [("greeting", False), ("second", False),
                                                                  ("third", False)]
        for rid in ("greeting", "second", "third"):
            assert sum(isinstance(e, AgentAudio) and e.response_id == rid for e in events) == 5
        order = [e.response_id for e in events if isinstance(e, AgentAudio)]
        assert order == sorted(order, key=["greeting", "second", "third"].index)  # one after the other
        conn = server.current
        turns = [m.client_content for m in conn.messages if m.client_content is not None]
        assert len(turns) == 3  # each sent when the previous turn was over: no answer was cut for it
        assert "Hello!" in (turns[0].turns[0].parts[0].text or "")  # type: ignore[index]
    finally:
        await model.close()


async def test_text_modality(server: FakeLiveServer) -> None:
    model = await started(server, config=GeminiLiveConfig(response_modalities=["TEXT"]))
    try:
        gen = server.current.setup.generation_config
        assert gen is not None and gen.response_modalities == [types.Modality.TEXT]
        await model.send_text("hi", response_id="t")
        events = await read_events(model, done("t"))
        assert not any(isinstance(e, AgentAudio) for e in events)
        finals = [e.text for e in events if isinstance(e, AgentTranscript) and e.final]
        assert finals == ["word0 word1 word2 word3 word4 "] and response_ids(events) == {"t"}
    finally:
        await model.close()


# ---------------------------------------------------------------------- interruption


async def test_server_interrupted_is_barge_in(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 50, 0.02
    model = await started(server)
    try:
        await model.send_text("tell me a long story", response_id="story")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        for frame in speech(0.1):
            model.push_audio(frame)
        events = await read_events(model, done())
        started_at = next(i for i, e in enumerate(events) if isinstance(e, UserSpeechStarted))
        assert events[-1] == ResponseDone(interrupted=True, response_id="story")  # the model cut it itself
        assert started_at < len(events) - 1
    finally:
        await model.close()


async def test_interrupt_drops_the_rest_and_the_next_request_gets_the_next_turn(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 20, 0.01
    model = await started(server)
    recorder = Recorder(model)
    try:
        await model.send_text("talk", response_id="a")
        await recorder.until(lambda e: isinstance(e, AgentAudio))
        await model.interrupt({"a": 0.02})
        mark = len(recorder.events)
        await model.say("Next!", response_id="b")  # sent at once: the server drops the rest of "a" for it
        await recorder.until(done("b"), since=mark)
        after = recorder.events[mark:]
        assert response_ids(after) == {"b"}, "an event of the interrupted response came after interrupt()"
        assert sum(isinstance(e, AgentAudio) for e in after) == 20  # the next response comes through whole
        assert after[-1] == ResponseDone(usage=after[-1].usage, response_id="b")  # type: ignore[union-attr]
        assert not any(isinstance(e, ResponseDone) and e.response_id == "a" for e in recorder.events)
        turn = server.current.messages[-1].client_content
        assert turn is not None and turn.turns is not None and turn.turns[0].parts is not None
        assert "Next!" in (turn.turns[0].parts[0].text or "")
        assert model.heard == {"a": 0.02}  # recorded: the server's context holds more than was heard
    finally:
        await model.close()


async def test_interrupt_drops_named_requests_not_sent_yet(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 20, 0.01
    model = await started(server)
    recorder = Recorder(model)
    try:
        await model.send_text("talk", response_id="a")
        await model.say("Queued.", response_id="b")  # waits for a's turn to end
        await recorder.until(lambda e: isinstance(e, AgentAudio))
        await model.interrupt({"a": 0.04, "b": None})
        mark = len(recorder.events)
        await model.say("Something else.", response_id="c")
        await recorder.until(done("c"), since=mark)
        assert response_ids(recorder.events[mark:]) == {"c"}
        texts = [p.text or "" for m in server.current.messages if m.client_content
                 for t in m.client_content.turns or () for p in t.parts or ()]
        assert not any("Queued." in t for t in texts)  # b was never sent
    finally:
        await model.close()


async def test_after_a_cut_answer_the_next_connection_replays_the_heard_history(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 20, 0.01
    history = ChatContext()
    model = make_model(server)
    await model.start(ModelOptions("You are a test agent.", [get_time], history))
    recorder = Recorder(model)
    try:
        await model.send_text("talk", response_id="a")
        await recorder.until(lambda e: isinstance(e, AgentAudio))
        await model.interrupt({"a": 0.04})
        history.add_message("user", "talk")  # what the session records: the text the user heard
        history.add_message("assistant", "word0", interrupted=True)
        await server.go_away()
        second = await server.wait_connections(2)
        assert second.setup.session_resumption is not None and second.setup.session_resumption.handle is None
        replay = await server.wait_message(lambda m: m.client_content is not None and not m.client_content.turn_complete)
        assert replay.client_content is not None and replay.client_content.turns is not None
        assert [(t.role, (t.parts or [])[0].text) for t in replay.client_content.turns] == [
            ("user", "talk"), ("model", "word0")]
        server.reply_chunks, server.chunk_delay = 3, 0.0
        await model.send_text("again", response_id="b")
        await recorder.until(done("b"))
    finally:
        await model.close()


# ---------------------------------------------------------------------- tools


async def test_tool_call_round_trip(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.send_text("use the tool please", response_id="asks")
        events = await read_events(model, done())
        (call,) = [e for e in events if isinstance(e, ToolCall)]
        assert call.name == "get_time" and json.loads(call.arguments) == {} and call.response_id == "asks"
        assert events[-1] == ResponseDone(response_id="asks")
        await model.send_tool_results([ToolResult(call.id, call.name, "12:00")], response_id="continues")
        message = await server.wait_message(lambda m: m.tool_response is not None)
        assert message.tool_response is not None and message.tool_response.function_responses is not None
        response = message.tool_response.function_responses[0]
        assert response.id == call.id and response.name == "get_time"
        assert response.response == {"output": "12:00"}
        events = await read_events(model, done())
        assert any(isinstance(e, AgentAudio) for e in events) and response_ids(events) == {"continues"}
    finally:
        await model.close()


async def test_the_results_of_one_response_go_in_one_tool_response(server: FakeLiveServer) -> None:
    @function_tool
    def get_date() -> str:
        """Today's date."""
        return "2026-11-26"

    model = make_model(server)
    await model.start(ModelOptions("x", [get_time, get_date], ChatContext()))
    try:
        await model.send_text("use all tools", response_id="asks")
        events = await read_events(model, done())
        calls = [e for e in events if isinstance(e, ToolCall)]
        assert [c.name for c in calls] == ["get_time", "get_date"] and response_ids(events) == {"asks"}
        await model.send_tool_results([ToolResult(calls[0].id, "get_time", "12:00"),
                                       ToolResult(calls[1].id, "get_date", "2026-11-26")], response_id="continues")
        events = await read_events(model, done())
        assert response_ids(events) == {"continues"}
        (message,) = [m for m in server.current.messages if m.tool_response is not None]
        assert message.tool_response is not None
        assert [r.name for r in message.tool_response.function_responses or []] == ["get_time", "get_date"]
    finally:
        await model.close()


async def test_tool_call_cancellation(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.send_text("use the tool", response_id="asks")
        events = await read_events(model, done())
        call = next(e for e in events if isinstance(e, ToolCall))
        cancel = types.LiveServerToolCallCancellation(ids=[call.id])
        await server.send(types.LiveServerMessage(tool_call_cancellation=cancel))
        assert await read_events(model, lambda e: True) == [ToolCallCancelled((call.id,))]
        # a withdrawn call's result is not sent: with nothing left, the response ends at once
        await model.send_tool_results([ToolResult(call.id, call.name, "late")], response_id="continues")
        assert await read_events(model, lambda e: True) == [ResponseDone(response_id="continues")]
        await model.send_text("hi", response_id="next")
        await read_events(model, done("next"))
        assert not any(m.tool_response for m in server.current.messages)
    finally:
        await model.close()


# ---------------------------------------------------------------------- agent handoff


async def test_update_agent_reconnects_with_the_new_setup_resuming_the_conversation(server: FakeLiveServer) -> None:
    @function_tool
    def get_date() -> str:
        """Today's date."""
        return "2026-11-26"

    model = await started(server)
    recorder = Recorder(model)
    try:
        first = server.current
        await model.send_text("My name is Ada.", response_id="r1")
        await recorder.until(done("r1"))
        handle = model.resumption_handle
        assert handle is not None and server.conversations[handle][-2:] == [("user", "My name is Ada."),
                                                                           ("model", "word0 word1 word2 word3 word4 ")]
        await model.update_agent("You are a pirate.", [get_date])
        second = await server.wait_connections(2)
        assert second.setup.system_instruction is not None and second.setup.system_instruction.parts is not None
        assert second.setup.system_instruction.parts[0].text == "You are a pirate."
        assert second.setup.tools is not None and second.setup.tools[0].function_declarations is not None
        assert [d.name for d in second.setup.tools[0].function_declarations] == ["get_date"]
        assert second.setup.session_resumption is not None and second.setup.session_resumption.handle == handle
        assert ("user", "My name is Ada.") in second.history  # the server kept the conversation
        await asyncio.wait_for(first.closed.wait(), TIMEOUT)
        await model.send_text("What is the date? Use the tool.", response_id="r2")
        call = await recorder.until(lambda e: isinstance(e, ToolCall))
        assert isinstance(call, ToolCall) and call.name == "get_date" and call.response_id == "r2"
        assert not any(m.client_content and not m.client_content.turn_complete for m in second.messages)  # no replay
        assert not any(isinstance(e, Error) for e in recorder.events)
        assert len(server.connections) == 2
    finally:
        await model.close()


async def test_handoff_from_a_tool_call_replays_the_history_and_sends_the_results_as_a_turn(
    server: FakeLiveServer,
) -> None:
    """A server session has no resumable state while a call is pending (its last handle predates the user's
    request), so a handoff from a tool goes to a new session with the history, and the results follow as a
    client turn: a tool_response would name a call that session never made."""
    history = ChatContext()
    model = make_model(server)
    await model.start(ModelOptions("You are the front desk.", [get_time], history))
    try:
        await model.send_text("Transfer me, use the tool.", response_id="asks")
        events = await read_events(model, done("asks"))
        (call,) = [e for e in events if isinstance(e, ToolCall)]
        history.add_message("user", "Transfer me, use the tool.")  # as the session records the turn
        history.add_function_call(call.id, call.name, call.arguments)
        history.add_function_output(call.id, call.name, "12:00")
        await model.update_agent("You are a pirate.", [])
        await model.send_tool_results([ToolResult(call.id, call.name, "12:00")], response_id="continues")
        events = await read_events(model, done("continues"))
        assert response_ids(events) == {"continues"} and any(isinstance(e, AgentAudio) for e in events)
        first, second = server.connections
        assert second.setup.session_resumption is not None and second.setup.session_resumption.handle is None
        assert second.setup.system_instruction is not None and second.setup.system_instruction.parts is not None
        assert second.setup.system_instruction.parts[0].text == "You are a pirate."
        assert second.history[0] == ("user", "Transfer me, use the tool.")  # replayed
        assert second.history[1] == ("user", '(Function results, not said by the user: get_time returned '
                                             '{"output": "12:00"})')
        assert not any(m.tool_response for m in first.messages + second.messages)
    finally:
        await model.close()


async def test_update_agent_without_a_handle_replays_the_history(server: FakeLiveServer) -> None:
    server.issue_handles = False
    history = ChatContext()
    model = make_model(server)
    await model.start(ModelOptions("You are a test agent.", [get_time], history))
    try:
        await model.send_text("My name is Ada.", response_id="r1")
        await read_events(model, done("r1"))
        history.add_message("user", "My name is Ada.")
        history.add_message("assistant", "Hello Ada!")
        await model.update_agent("You are a pirate.", [])
        second = await server.wait_connections(2)
        assert second.setup.system_instruction is not None and second.setup.system_instruction.parts is not None
        assert second.setup.system_instruction.parts[0].text == "You are a pirate." and not second.setup.tools
        replay = await server.wait_message(lambda m: m.client_content is not None and not m.client_content.turn_complete)
        assert replay.client_content is not None and replay.client_content.turns is not None
        assert [(t.role, (t.parts or [])[0].text) for t in replay.client_content.turns] == [
            ("user", "My name is Ada."), ("model", "Hello Ada!")]
        assert second.history[:2] == [("user", "My name is Ada."), ("model", "Hello Ada!")]
        await model.send_text("Who am I?", response_id="r2")
        events = await read_events(model, done("r2"))
        assert response_ids(events) == {"r2"} and not any(isinstance(e, Error) for e in events)
    finally:
        await model.close()


async def test_update_agent_waits_for_the_answer_being_spoken(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 20, 0.01
    model = await started(server)
    try:
        await model.send_text("talk", response_id="a")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        await model.update_agent("You are a pirate.", [])
        await model.say("Arr!", response_id="b")  # asked after the handoff: goes to the new connection
        events = await read_events(model, done("a"))
        assert events[-1] == ResponseDone(usage=events[-1].usage, response_id="a")  # type: ignore[union-attr]
        assert sum(isinstance(e, AgentAudio) for e in events) == 19  # the answer was not cut
        second = await server.wait_connections(2)
        events = await read_events(model, done("b"))
        assert response_ids(events) == {"b"}
        assert [m for m in server.connections[0].messages if m.client_content][-1].client_content.turns[0].parts[
            0].text == "talk"  # type: ignore[union-attr,index]
        assert any(m.client_content and m.client_content.turn_complete for m in second.messages)
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
        await model.send_text("still there?", response_id="r")
        events = await read_events(model, done("r"))
        assert any(isinstance(e, AgentAudio) for e in events)
        assert not any(isinstance(e, Error) for e in events)
        assert model.resumption_handle == "handle-3"  # one at the new connection, one after the answer
    finally:
        await model.close()


async def test_dropped_socket_reconnects_and_audio_keeps_flowing(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        server.drop()
        second = await server.wait_connections(2)
        assert second.setup.session_resumption is not None
        assert second.setup.session_resumption.handle == "handle-1"
        events = await read_events(model, lambda e: isinstance(e, Reconnected))
        assert not any(isinstance(e, Error) for e in events)  # no response was cut: nothing to report but this
        lost, back = events[-2:]
        assert isinstance(lost, Reconnecting) and lost.attempt == 1 and "1006" in lost.reason
        assert isinstance(back, Reconnected) and back.downtime > 0 and back.audio_lost == 0.0
        for frame in speech(0.4) + speech(0.5, loud=False):
            model.push_audio(frame)
        events = await read_events(model, done())
        assert any(isinstance(e, AgentAudio) for e in events)
        assert second.audio_bytes > 0
    finally:
        await model.close()


async def test_drop_mid_response_ends_it_and_the_conversation_goes_on(server: FakeLiveServer) -> None:
    server.reply_chunks, server.chunk_delay = 50, 0.02
    model = await started(server)
    try:
        await model.send_text("talk", response_id="a")
        await read_events(model, lambda e: isinstance(e, AgentAudio))
        server.drop()
        events = await read_events(model, done())
        lost = events[-2]
        assert isinstance(lost, Error) and lost.code == "connection_lost" and lost.recoverable
        assert events[-1] == ResponseDone(interrupted=True, response_id="a")
        await server.wait_connections(2)
        server.reply_chunks, server.chunk_delay = 3, 0.0
        await model.send_text("again", response_id="b")
        events = await read_events(model, done("b"))
        assert sum(isinstance(e, AgentAudio) for e in events) == 3 and response_ids(events) == {"b"}
    finally:
        await model.close()


async def test_gives_up_after_n_failures_with_a_fatal_error(server: FakeLiveServer) -> None:
    model = await started(server, max_reconnects=2)
    try:
        server.refuse = 10
        server.drop()
        events = await read_events(model, lambda e: isinstance(e, Error) and not e.recoverable)
        fatal = events[-1]
        assert isinstance(fatal, Error) and "could not reconnect after 2 attempts" in fatal.message
        assert len(server.connections) == 1  # refused attempts never got past the handshake
        assert server.refuse == 10 - 2
        await model.send_text("anyone?", response_id="x")  # ignored, no hang
    finally:
        await model.close()
    await asyncio.wait_for(read_events(model, lambda e: False), TIMEOUT)  # the stream ended


async def test_first_connection_replays_a_history_it_starts_with(server: FakeLiveServer) -> None:
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


async def test_reply_without_instructions_is_a_bare_turn(server: FakeLiveServer) -> None:
    model = await started(server)
    try:
        await model.reply(response_id="r")
        events = await read_events(model, done("r"))
        assert any(isinstance(e, AgentAudio) for e in events)
        bare = server.current.messages[-1].client_content
        assert bare is not None and bare.turn_complete and not bare.turns
    finally:
        await model.close()


# ---------------------------------------------------------------------- VideoSDK's config


async def test_videosdk_style_config(server: FakeLiveServer) -> None:
    config = GeminiLiveConfig(voice="Kore", language_code="en-US", temperature=0.5, top_p=0.9,
                              max_output_tokens=256, presence_penalty=0.3, response_modalities=["AUDIO"],
                              input_audio_transcription=None)
    model = GeminiRealtime(model="gemini-2.0-flash-live-001", config=config, api_key=KEY,
                           http_options=server.http_options())
    await model.start(ModelOptions("x"))
    try:
        setup = server.current.setup
        assert setup.model == "models/gemini-2.0-flash-live-001"
        gen = setup.generation_config
        assert gen is not None and gen.response_modalities == [types.Modality.AUDIO]
        assert gen.temperature == 0.5 and gen.top_p == 0.9 and gen.max_output_tokens == 256
        assert gen.presence_penalty == 0.3
        assert gen.speech_config is not None and gen.speech_config.language_code == "en-US"
        voice = gen.speech_config.voice_config
        assert voice is not None and voice.prebuilt_voice_config is not None
        assert voice.prebuilt_voice_config.voice_name == "Kore"
        assert setup.input_audio_transcription is None and setup.output_audio_transcription is not None
    finally:
        await model.close()
    model = GeminiRealtime(config=config, voice="Puck", temperature=0.2, api_key=KEY,
                           http_options=server.http_options())  # keywords win over the config
    await model.start(ModelOptions("x"))
    try:
        gen = server.current.setup.generation_config
        assert gen is not None and gen.temperature == 0.2 and gen.speech_config is not None
        assert gen.speech_config.voice_config.prebuilt_voice_config.voice_name == "Puck"  # type: ignore[union-attr]
    finally:
        await model.close()
