"""GeminiLLM against a local ``streamGenerateContent`` server speaking the SDK's own types over HTTP + SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from google.genai import types

from agentsession import (
    STT,
    TTS,
    Agent,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    FunctionTool,
    ModelError,
    ToolCall,
    function_tool,
)
from agentsession.testing import FakeTransport, LLMContract, tone
from agentsession_gemini import GeminiLLM, plugin

KEY = "llm-test-key-abcdef123456"
SIGNATURE = b"\x01sig-bytes\xff"
Reply = list[types.GenerateContentResponse] | tuple[int, dict[str, Any]]
# the SDK's own aiohttp session subclass, warned about by aiohttp on first use
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    contents: list[types.Content]
    system: types.Content | None
    tools: list[types.Tool]
    generation: types.GenerationConfig | None


@dataclass
class FakeGemini:
    """Answers each ``POST .../models/<model>:streamGenerateContent`` with the next scripted reply."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            parsed = self._parse(request, await request.json())
        except Exception as exc:  # the client sent something the API would not understand
            self.failures.append(repr(exc))
            return web.json_response({"error": {"code": 400, "message": str(exc), "status": "INVALID_ARGUMENT"}},
                                     status=400)
        self.requests.append(parsed)
        reply = self.replies.pop(0)
        if isinstance(reply, tuple):
            return web.json_response(reply[1], status=reply[0])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in reply:
            body = json.dumps(chunk.model_dump(mode="json", by_alias=True, exclude_none=True))
            await response.write(f"data: {body}\r\n\r\n".encode())
        await response.write_eof()
        return response

    @staticmethod
    def _parse(request: web.Request, body: dict[str, Any]) -> Request:
        assert request.path.endswith(":streamGenerateContent"), request.path
        known = {"contents", "systemInstruction", "tools", "generationConfig"}
        assert set(body) <= known, f"unexpected request fields {set(body) - known}"
        system = body.get("systemInstruction")
        generation = body.get("generationConfig")
        return Request(
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            contents=[types.Content.model_validate(c) for c in body["contents"]],
            system=types.Content.model_validate(system) if system else None,
            tools=[types.Tool.model_validate(t) for t in body.get("tools", [])],
            generation=types.GenerationConfig.model_validate(generation) if generation else None,
        )

    def http_options(self) -> types.HttpOptions:
        return types.HttpOptions(base_url=self.base_url)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGemini]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeGemini()
    app = web.Application()
    app.router.add_post("/{path:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()
    assert not fake.failures, fake.failures


def text(*chunks: str) -> list[types.GenerateContentResponse]:
    return [
        types.GenerateContentResponse(
            candidates=[types.Candidate(content=types.Content(role="model", parts=[types.Part(text=c)]),
                                        finish_reason=types.FinishReason.STOP if i == len(chunks) - 1 else None)]
        )
        for i, c in enumerate(chunks)
    ]


def call(name: str, args: dict[str, Any], *, call_id: str | None = None, before: str = "",
         response_id: str | None = None) -> list[types.GenerateContentResponse]:
    part = types.Part(function_call=types.FunctionCall(id=call_id, name=name, args=args), thought_signature=SIGNATURE)
    head = [types.Part(text="thinking...", thought=True)] + ([types.Part(text=before)] if before else [])
    return [
        types.GenerateContentResponse(candidates=[types.Candidate(content=types.Content(role="model", parts=head))],
                                      response_id=response_id),
        types.GenerateContentResponse(
            candidates=[types.Candidate(content=types.Content(role="model", parts=[part]),
                                        finish_reason=types.FinishReason.STOP)],
            response_id=response_id,
        ),
    ]


async def collect(llm: GeminiLLM, ctx: ChatContext, tools: Sequence[FunctionTool] = ()) -> list[str | ToolCall]:
    return [out async for out in llm.chat(ctx, tools=tools)]


class Lookup(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You look things up.")
        self.calls: list[str] = []

    @function_tool
    async def lookup(self, city: str) -> dict[str, object]:
        """Look up the weather.

        Args:
            city: the city
        """
        self.calls.append(city)
        return {"city": city, "temp": 21}


class TestLLMContract(LLMContract):
    @pytest.fixture(autouse=True)
    def _server(self, server: FakeGemini) -> None:
        self.server = server

    async def create_llm(self) -> GeminiLLM:
        return GeminiLLM(api_key=KEY, http_options=self.server.http_options())

    async def expect_text(self) -> None:
        self.server.replies.append(text("Hello", " there."))

    async def expect_tool_call(self) -> None:
        self.server.replies.append(call("get_time", {}))


async def test_streams_text_with_the_system_instruction_and_key(server: FakeGemini) -> None:
    server.replies.append(text("Hel", "lo there."))
    llm = GeminiLLM(api_key=KEY, temperature=0.3, http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("developer", "No emoji.")  # VideoSDK's developer role is an instruction too
    ctx.add_message("user", "Hi")
    ctx.add_handoff(to_agent="Greeter")  # a record: never sent
    ctx.add_message("assistant", "Hello!")
    ctx.add_message("assistant", "")  # an interrupted reply nobody heard: dropped
    ctx.add_message("user", "How are you?")
    assert await collect(llm, ctx) == ["Hel", "lo there."]
    req = server.requests[0]
    assert req.path.endswith("/models/gemini-2.5-flash:streamGenerateContent") and req.query == {"alt": "sse"}
    assert req.headers["x-goog-api-key"] == KEY
    assert req.system is not None and req.system.parts and req.system.parts[0].text == "Be brief.\n\nNo emoji."
    assert [(c.role, [p.text for p in c.parts or []]) for c in req.contents] == [
        ("user", ["Hi"]), ("model", ["Hello!"]), ("user", ["How are you?"])
    ]
    assert req.generation is not None and req.generation.temperature == 0.3
    assert not req.tools
    assert KEY not in repr(llm)
    await llm.aclose()


async def test_tool_call_then_function_response_then_text(server: FakeGemini) -> None:
    agent = Lookup()
    server.replies += [call("lookup", {"city": "Paris"}, before="Let me check. "), text("It is 21 degrees.")]
    llm = GeminiLLM(api_key=KEY, http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("user", "Weather in Paris?")
    first = await collect(llm, ctx, agent.tools)
    assert first[0] == "Let me check. " and len(first) == 2  # the thought part is not spoken
    tool_call = first[1]
    assert isinstance(tool_call, ToolCall) and tool_call.name == "lookup" and tool_call.id
    assert tool_call.response_id.startswith("gemini-")  # the API gave no response id: one of ours
    assert json.loads(tool_call.arguments) == {"city": "Paris"}
    (tool,) = server.requests[0].tools
    assert [d.name for d in tool.function_declarations or []] == ["lookup"]

    ctx.add_message("assistant", "Let me check.")
    ctx.add_function_call(tool_call.id, tool_call.name, tool_call.arguments)
    ctx.add_function_output(tool_call.id, "", json.dumps({"city": "Paris", "temp": 21}))  # name from the mapping
    assert await collect(llm, ctx, agent.tools) == ["It is 21 degrees."]
    user, model, answer = server.requests[1].contents
    assert user.role == "user" and model.role == "model" and answer.role == "user"
    assert model.parts is not None and answer.parts is not None
    assert model.parts[0].text == "Let me check."
    fc = model.parts[1]
    assert fc.function_call is not None and fc.function_call.name == "lookup"
    assert fc.function_call.args == {"city": "Paris"} and fc.function_call.id is None  # the API gave no id
    assert fc.thought_signature == SIGNATURE
    fr = answer.parts[0].function_response
    assert fr is not None and fr.name == fc.function_call.name and fr.response == {"city": "Paris", "temp": 21}
    await llm.aclose()


async def test_api_call_ids_are_kept_and_unmatched_calls_dropped(server: FakeGemini) -> None:
    server.replies += [call("lookup", {"city": "Oslo"}, call_id="api-7", response_id="resp-42"), text("Cold.")]
    llm = GeminiLLM(api_key=KEY, http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("user", "Oslo?")
    (tool_call,) = await collect(llm, ctx, Lookup().tools)
    assert isinstance(tool_call, ToolCall) and tool_call.id == "api-7" and tool_call.response_id == "resp-42"
    ctx.add_function_call("lost", "lookup", "{}")  # cancelled, never answered
    ctx.add_function_call("api-7", "lookup", tool_call.arguments)
    ctx.add_function_output("api-7", "lookup", "not json", is_error=True)
    await collect(llm, ctx)
    _, model, answer = server.requests[1].contents
    assert [p.function_call.id for p in model.parts or [] if p.function_call] == ["api-7"]
    fr = (answer.parts or [])[0].function_response
    assert fr is not None and fr.id == "api-7" and fr.response == {"error": "not json"}
    await llm.aclose()


async def test_key_comes_from_the_environment(server: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError) as info:
        GeminiLLM()
    assert "GOOGLE_API_KEY" in str(info.value) and "GEMINI_API_KEY" in str(info.value)
    monkeypatch.setenv("GEMINI_API_KEY", "env-key-abcdefghijklmnop")
    server.replies.append(text("ok"))
    llm = GeminiLLM(http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("user", "hi")
    assert await collect(llm, ctx) == ["ok"]
    assert server.requests[0].headers["x-goog-api-key"] == "env-key-abcdefghijklmnop"
    assert "env-key-abcdefghijklmnop" not in repr(llm)
    await llm.aclose()


async def test_http_errors_become_model_errors(server: FakeGemini) -> None:
    server.replies += [
        (400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}),
        (503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ]
    llm = GeminiLLM(api_key=KEY, http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("user", "hi")
    with pytest.raises(ModelError) as bad:
        await collect(llm, ctx)
    assert "400" in str(bad.value) and "API key not valid" in str(bad.value) and not bad.value.recoverable
    assert KEY not in str(bad.value)
    with pytest.raises(ModelError) as busy:
        await collect(llm, ctx)
    assert "overloaded" in str(busy.value) and busy.value.recoverable
    await llm.aclose()


async def test_a_greeting_without_conversation_sends_the_last_instruction_as_the_turn(server: FakeGemini) -> None:
    server.replies.append(text("Hello!"))
    llm = GeminiLLM(api_key=KEY, http_options=server.http_options())
    ctx = ChatContext()
    ctx.add_message("system", "You are kind.")
    ctx.add_message("system", "Greet the user.")
    assert await collect(llm, ctx) == ["Hello!"]
    req = server.requests[0]
    assert req.system is not None and [p.text for p in req.system.parts or []] == ["You are kind."]
    assert [(c.role, [p.text for p in c.parts or []]) for c in req.contents] == [("user", ["Greet the user."])]
    await llm.aclose()


def test_plugin_builds_the_llm() -> None:
    llm = plugin.agentsession_models()["gemini-llm"](api_key=KEY)
    assert isinstance(llm, GeminiLLM) and KEY not in repr(llm)


class SilentSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return ""


class ShortTTS(TTS):
    sample_rate = 16000

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.spoken.append(text)
        yield tone(0.04, self.sample_rate)


async def test_cascading_pipeline_turn_with_a_tool(server: FakeGemini) -> None:
    server.replies += [call("lookup", {"city": "Paris"}, before="Let me check. "), text("It is 21 ", "degrees.")]
    agent, tts = Lookup(), ShortTTS()
    llm = GeminiLLM(api_key=KEY, http_options=server.http_options())
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(agent, CascadingPipeline(stt=SilentSTT(), llm=llm, tts=tts))
    await session.start(transport=transport)
    try:
        result = await session.run(user_input="Weather in Paris?", timeout=5.0)
    finally:
        await session.close()
        await transport.close()
    assert agent.calls == ["Paris"]
    assert [c.name for c in result.function_calls] == ["lookup"]
    assert "It is 21 degrees." in result.text
    assert tts.spoken == ["Let me check.", "It is 21 degrees."]
    first, second = server.requests
    assert first.system is not None and (first.system.parts or [])[0].text == "You look things up."
    assert [c.role for c in first.contents] == ["user"]
    calls = [p.function_call for c in second.contents for p in c.parts or [] if p.function_call]
    responses = [p.function_response for c in second.contents for p in c.parts or [] if p.function_response]
    assert [c.name for c in calls] == [r.name for r in responses] == ["lookup"]
    assert responses[0].response == {"city": "Paris", "temp": 21}
    assert [c.role for c in second.contents] == ["user", "model", "user"]
