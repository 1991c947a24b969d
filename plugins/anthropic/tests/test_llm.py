"""AnthropicLLM through the official SDK against a local server speaking the Messages API's event stream."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from agentsession import ChatContext, ModelError, ToolCall, function_tool
from agentsession.testing import LLMContract
from agentsession_anthropic import AnthropicLLM, anthropic_messages
from agentsession_anthropic.fake import API_KEY, FakeAnthropic
from agentsession_anthropic.plugin import agentsession_models


class TestLLMContract(LLMContract):
    @pytest.fixture(autouse=True)
    def _server(self, anthropic_server: FakeAnthropic) -> None:
        self.server = anthropic_server

    async def create_llm(self) -> AnthropicLLM:
        return AnthropicLLM(api_key=API_KEY)  # the server from $ANTHROPIC_BASE_URL


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


async def test_parallel_tool_calls_come_together_after_the_text(anthropic_server: FakeAnthropic) -> None:
    anthropic_server.tool_arguments["get_weather"] = {"city": "Paris"}
    llm = AnthropicLLM(api_key=API_KEY, model="claude-test", temperature=0.2, max_tokens=300)
    ctx = ChatContext()
    ctx.add_message("system", "You are a weather assistant.")
    ctx.add_message("user", "Use get_weather and get_time please.")
    parts = [p async for p in llm.chat(ctx, tools=[get_weather, get_time])]
    await llm.aclose()
    text = [p for p in parts if isinstance(p, str)]
    calls = [p for p in parts if isinstance(p, ToolCall)]
    assert "".join(text) == "Let me check."
    assert parts[len(text):] == calls  # one group, after the text
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"}),
                                                                  ("get_time", {})]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("toolu_") for c in calls)
    assert {c.response_id for c in calls} == {"msg_fake0001"}
    (request,) = anthropic_server.requests
    assert (request["model"], request["temperature"], request["max_tokens"]) == ("claude-test", 0.2, 300)
    assert request["tools"][0] == {"name": "get_weather", "description": "Current weather for a city.",
                                   "input_schema": get_weather.schema()["parameters"]}
    assert request["tool_choice"] == {"type": "auto"}


async def test_the_history_maps_to_alternating_messages_with_tool_blocks(anthropic_server: FakeAnthropic) -> None:
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("assistant", "Hello! How can I help?")  # the agent's greeting opens the call
    ctx.add_message("user", "Weather and time?")
    ctx.add_message("assistant", "Let me check.")
    ctx.add_function_call("toolu_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_call("toolu_2", "get_time", "")
    ctx.add_function_call("toolu_lost", "get_time", "{}")  # never answered (interrupted): left out
    ctx.add_function_output("toolu_1", "get_weather", '{"temp": 21}')
    ctx.add_function_output("toolu_2", "get_time", "boom", is_error=True)
    ctx.add_message("system", "Answer in French.")  # a reply's instructions, mid-conversation
    system, messages = anthropic_messages(ctx)
    assert system == ["Be brief."]
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "(the call begins)"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello! How can I help?"}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather and time?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 21}', "is_error": False},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
            {"type": "text", "text": "Answer in French."}]},
    ]
    llm = AnthropicLLM(api_key=API_KEY)
    parts = [p async for p in llm.chat(ctx, tools=[get_weather, get_time])]  # the server accepts it
    await llm.aclose()
    assert "".join(p for p in parts if isinstance(p, str)) == 'The answer is {"temp": 21} and boom. Anything else?'


async def test_the_instructions_are_cached_across_turns(anthropic_server: FakeAnthropic) -> None:
    llm = AnthropicLLM(api_key=API_KEY)
    for turn in ("Hi", "How are you?"):
        ctx = ChatContext()
        ctx.add_message("system", "You are a long, stable system prompt.")
        ctx.add_message("user", turn)
        assert [p async for p in llm.chat(ctx, tools=[get_time])]
        if turn == "Hi":
            assert llm.usage.cache_creation_input_tokens > 0 and llm.usage.cache_read_input_tokens == 0
    assert llm.usage.cache_read_input_tokens > 0 and llm.usage.cache_creation_input_tokens == 0
    first = anthropic_server.requests[0]
    assert first["system"] == [{"type": "text", "text": "You are a long, stable system prompt.",
                                "cache_control": {"type": "ephemeral"}}]
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    uncached = AnthropicLLM(api_key=API_KEY, caching=None, tool_choice="required", parallel_tool_calls=False)
    assert [p async for p in uncached.chat(ctx, tools=[get_time])]
    last = anthropic_server.requests[-1]
    assert "cache_control" not in last["system"][0] and "cache_control" not in last["tools"][0]
    assert last["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    await llm.aclose()
    await uncached.aclose()


async def test_a_missing_key_names_the_variable_and_a_key_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, anthropic_server: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ctx = ChatContext()
    ctx.add_message("user", "hi")
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY") as caught:
        [p async for p in AnthropicLLM().chat(ctx)]
    assert caught.value.code == "missing_api_key"
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    llm = AnthropicLLM()
    caplog.set_level(logging.DEBUG)
    assert [p async for p in llm.chat(ctx)]  # the key from the environment
    assert API_KEY not in repr(AnthropicLLM(api_key=API_KEY))
    assert API_KEY not in caplog.text
    sent = anthropic_server.headers[-1]
    assert API_KEY in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    await llm.aclose()


def test_bad_options_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'auto', 'required' or 'none'"):
        AnthropicLLM(tool_choice="sometimes")  # type: ignore[arg-type]


def test_the_entry_point_builds_it_by_name() -> None:
    llm = agentsession_models()["anthropic-llm"](api_key=API_KEY, model="claude-x")
    assert isinstance(llm, AnthropicLLM) and llm.model == "claude-x"


async def test_tool_choice_none_still_defines_the_tools_and_no_tools_tells_calls_as_text(
    anthropic_server: FakeAnthropic,
) -> None:
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("user", "Weather?")
    ctx.add_function_call("toolu_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("toolu_1", "get_weather", '{"temp": 21}')
    llm = AnthropicLLM(api_key=API_KEY, tool_choice="none")
    assert [p async for p in llm.chat(ctx, tools=[get_weather])]
    first = anthropic_server.requests[-1]
    assert first["tool_choice"] == {"type": "none"} and [t["name"] for t in first["tools"]] == ["get_weather"]
    assert [p async for p in llm.chat(ctx)]  # an agent without tools (after a handoff): the history as text
    last = anthropic_server.requests[-1]
    assert "tools" not in last and "tool_choice" not in last
    assert last["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": '(called get_weather with {"city": "Paris"})'}]},
        {"role": "user", "content": [{"type": "text", "text": '(get_weather returned: {"temp": 21})'}]},
    ]
    await llm.aclose()


async def test_failures_are_model_errors_that_say_whether_to_retry(anthropic_server: FakeAnthropic) -> None:
    ctx = ChatContext()
    ctx.add_message("user", "Hello there")
    anthropic_server.fail_mid_answer = {"type": "overloaded_error", "message": "Overloaded"}
    llm = AnthropicLLM(api_key=API_KEY)
    parts: list[str | ToolCall] = []
    with pytest.raises(ModelError, match="overloaded_error: Overloaded") as caught:
        async for part in llm.chat(ctx):
            parts.append(part)
    assert parts == ["You"] and caught.value.recoverable and caught.value.code == "overloaded_error"
    assert [p async for p in llm.chat(ctx)]  # the next answer goes through
    await llm.aclose()
    wrong = AnthropicLLM(api_key="sk-ant-wrong")
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY") as refused:
        [p async for p in wrong.chat(ctx)]
    assert not refused.value.recoverable and refused.value.code == "authentication_error"
    await wrong.aclose()


async def test_a_client_of_yours_is_used_and_left_open(anthropic_server: FakeAnthropic) -> None:
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(api_key=API_KEY, base_url=anthropic_server.base_url)
    llm = AnthropicLLM(client=client)
    ctx = ChatContext()
    ctx.add_message("user", "Hello")
    assert [p async for p in llm.chat(ctx)]
    await llm.aclose()
    assert not client.is_closed()
    await client.close()
