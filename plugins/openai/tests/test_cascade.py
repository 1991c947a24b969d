"""OpenAILLM, OpenAISTT and OpenAITTS against a local HTTP server that speaks the real API, and a cascade."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentsession import (
    Agent,
    AgentSession,
    CascadingPipeline,
    ChatContext,
    ModelError,
    ToolCall,
    function_tool,
)
from agentsession.testing import LLMContract, STTContract, TTSContract, tone
from agentsession_openai import OpenAILLM, OpenAISTT, OpenAITTS
from agentsession_openai.fake.http import API_KEY, FakeOpenAIHTTP
from agentsession_openai.plugin import agentsession_models


@pytest.fixture
async def http_server() -> AsyncIterator[FakeOpenAIHTTP]:
    async with FakeOpenAIHTTP() as server:
        yield server
        assert server.protocol_errors == []


@function_tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: the city's name
    """
    return {"city": city, "temp": 21}


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a weather assistant.", tools=[get_weather])


class OnFakeServer:
    """Gives a contract suite the fake HTTP server as ``self.server``."""

    server: FakeOpenAIHTTP

    @pytest.fixture(autouse=True)
    def _server(self, http_server: FakeOpenAIHTTP) -> None:
        self.server = http_server


class TestLLMContract(OnFakeServer, LLMContract):
    async def create_llm(self) -> OpenAILLM:
        return OpenAILLM(api_key=API_KEY, base_url=self.server.base_url)


class TestSTTContract(OnFakeServer, STTContract):
    async def create_stt(self) -> OpenAISTT:
        return OpenAISTT(api_key=API_KEY, base_url=self.server.base_url)


class TestTTSContract(OnFakeServer, TTSContract):
    async def create_tts(self) -> OpenAITTS:
        return OpenAITTS(api_key=API_KEY, base_url=self.server.base_url)


async def collect(llm: OpenAILLM, ctx: ChatContext) -> list[str | ToolCall]:
    return [part async for part in llm.chat(ctx, tools=[get_weather])]


async def test_llm_streams_text_and_tool_calls(http_server: FakeOpenAIHTTP) -> None:
    http_server.tool_arguments["get_weather"] = {"city": "Paris"}
    llm = OpenAILLM(api_key=API_KEY, base_url=http_server.base_url)
    try:
        ctx = ChatContext()
        ctx.add_message("system", "Be brief.")
        ctx.add_message("user", "Weather in Paris? Use get_weather.")
        parts = await collect(llm, ctx)
        assert parts == [ToolCall("call_fake1", "get_weather", '{"city": "Paris"}', response_id="chatcmpl-fake")]
        request = http_server.chat_requests[0]
        assert request["stream"] is True and request["model"] == "gpt-4o-mini"
        assert request["tools"][0] == {"type": "function", "function": get_weather.schema()}

        ctx.add_function_call("call_fake1", "get_weather", '{"city": "Paris"}')
        ctx.add_function_output("call_fake1", "get_weather", '{"temp": 21}')
        ctx.add_handoff(to_agent="Forecaster")  # a record: never sent
        parts = await collect(llm, ctx)
        assert "".join(p for p in parts if isinstance(p, str)) == 'The answer is {"temp": 21}. Anything else?'
        messages = http_server.chat_requests[1]["messages"]
        assert messages[2] == {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_fake1", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": '{"city": "Paris"}'}}]}
        assert messages[3] == {"role": "tool", "tool_call_id": "call_fake1", "content": '{"temp": 21}'}
        assert len(messages) == 4
    finally:
        await llm.aclose()


async def test_stt_sends_a_wav_of_the_utterance(http_server: FakeOpenAIHTTP) -> None:
    stt = OpenAISTT(api_key=API_KEY, base_url=http_server.base_url, language="en")
    try:
        text = await stt.transcribe(tone(0.75, 16000))
        assert text == http_server.transcript
        (upload,) = http_server.uploads
        assert (upload.sample_rate, upload.channels, upload.seconds) == (16000, 1, 0.75)
        assert upload.fields == {"model": "gpt-4o-mini-transcribe", "language": "en"}
    finally:
        await stt.aclose()


async def test_tts_streams_24k_pcm(http_server: FakeOpenAIHTTP) -> None:
    tts = OpenAITTS(api_key=API_KEY, base_url=http_server.base_url, voice="coral")
    try:
        frames = [f async for f in tts.synthesize("Hello there, friend.")]
        assert all(f.sample_rate == 24000 and f.channels == 1 for f in frames)
        assert sum(f.samples_per_channel for f in frames) == int(0.02 * 20 * 24000)
        assert http_server.speech_requests[0]["voice"] == "coral"
    finally:
        await tts.aclose()


async def test_cascade_end_to_end_with_a_tool(http_server: FakeOpenAIHTTP) -> None:
    http_server.tool_arguments["get_weather"] = {"city": "Paris"}
    kwargs = {"api_key": API_KEY, "base_url": http_server.base_url}
    # this fake speaks HTTP only: one transcription request per utterance (test_stt_stream.py covers streaming)
    pipeline = CascadingPipeline(stt=OpenAISTT(**kwargs), llm=OpenAILLM(**kwargs), tts=OpenAITTS(**kwargs),
                                 streaming_stt=False)
    session = AgentSession(WeatherAgent(), pipeline)
    await session.start()
    try:
        result = await session.run(user_input="What is the weather in Paris? Use get_weather.", timeout=10)
        assert [c.name for c in result.function_calls] == ["get_weather"]
        assert result.function_outputs[0].output == '{"city": "Paris", "temp": 21}'
        assert result.text == 'The answer is {"city": "Paris", "temp": 21}. Anything else?'
        assert len(http_server.speech_requests) >= 1
        assert http_server.chat_requests[0]["messages"][0] == {"role": "system",
                                                               "content": "You are a weather assistant."}
    finally:
        await session.close()


async def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await collect(OpenAILLM(), ChatContext())
    assert API_KEY not in repr(OpenAITTS(api_key=API_KEY))


def test_models_hook() -> None:
    models = agentsession_models()
    assert set(models) == {"openai-realtime", "openai-llm", "openai-stt", "openai-tts"}
    assert isinstance(models["openai-llm"](model="x"), OpenAILLM)
    check = "import sys, agentsession_openai.plugin; assert 'openai' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)  # discovery doesn't import the SDK


async def test_videosdk_constructor_arguments(http_server: FakeOpenAIHTTP) -> None:
    """The arguments VideoSDK's documentation passes its OpenAI cascade classes work as they do there (issue 12)."""
    http_server.tool_arguments["get_weather"] = {"city": "Paris"}
    llm = OpenAILLM(api_key=API_KEY, base_url=http_server.base_url, model="gpt-4o", temperature=0.7,
                    tool_choice="auto", max_completion_tokens=1000)
    tts = OpenAITTS(api_key=API_KEY, base_url=http_server.base_url, model="tts-1", voice="alloy", speed=1.0,
                    response_format="pcm")
    try:
        ctx = ChatContext()
        ctx.add_message("user", "Weather in Paris? Use get_weather.")
        await collect(llm, ctx)
        request = http_server.chat_requests[0]
        assert (request["tool_choice"], request["max_completion_tokens"], request["temperature"]) == ("auto", 1000, 0.7)
        [part async for part in llm.chat(ctx)]  # no tools: no tool_choice (the API refuses one without tools)
        assert "tool_choice" not in http_server.chat_requests[1]
        [f async for f in tts.synthesize("Hi.")]
        assert http_server.speech_requests[0]["response_format"] == "pcm"
    finally:
        await llm.aclose()
        await tts.aclose()
    with pytest.raises(ValueError, match="pcm"):
        OpenAITTS(api_key=API_KEY, response_format="mp3")  # it streams raw PCM: anything else is refused


async def test_a_wrong_key_says_which_variable_to_set(http_server: FakeOpenAIHTTP) -> None:
    """Each HTTP model refused for its key names OPENAI_API_KEY, never the key itself."""
    wrong = "sk-wrong-key-for-the-cascade-0123456789"
    llm = OpenAILLM(api_key=wrong, base_url=http_server.base_url)
    stt = OpenAISTT(api_key=wrong, base_url=http_server.base_url)
    tts = OpenAITTS(api_key=wrong, base_url=http_server.base_url)
    ctx = ChatContext()
    ctx.add_message("user", "hello")
    attempts = {
        "OpenAILLM": lambda: anext(aiter(llm.chat(ctx))),
        "OpenAISTT": lambda: stt.transcribe(tone(0.2, sample_rate=16000)),
        "OpenAITTS": lambda: anext(aiter(tts.synthesize("hello"))),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ModelError) as refused:
            await attempt()
        message = str(refused.value)
        assert "(HTTP 401): the API key was not accepted: set OPENAI_API_KEY" in message, message
        assert f"api_key=... to {what}()" in message and wrong not in message
        assert refused.value.code == "invalid_api_key" and not refused.value.recoverable
    for model in (llm, stt, tts):
        await model.aclose()
