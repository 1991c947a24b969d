"""``ChatContext`` and its items as VideoSDK 1.0 code uses them (``videosdk.agents.llm.chat_context``)."""

from __future__ import annotations

import pytest

from agentsession import (
    Agent,
    AgentConfigUpdate,
    AgentHandoff,
    ChatContext,
    ChatMessage,
    ChatRole,
    FunctionCall,
    FunctionCallOutput,
    ReadOnlyChatContext,
    function_tool,
)
from agentsession.testing import FakeRealtimeModel
from core_helpers import started


def test_chat_message_takes_content_or_text() -> None:
    a = ChatMessage(role=ChatRole.USER, content="hello")
    b = ChatMessage(role="user", text="hello")
    listed = ChatMessage(role=ChatRole.ASSISTANT, content=["Hi,", "how are you?"])
    assert a.role == b.role == "user" and a.text == b.text == a.content == "hello"
    assert listed.content == ["Hi,", "how are you?"] and listed.text == "Hi, how are you?"
    assert ChatMessage.type == a.type == "message"
    listed.text = "Bye."  # our code sets text (streaming, interruption): content follows
    assert listed.content == "Bye."
    with pytest.raises(TypeError, match="not both"):
        ChatMessage(role="user", content="a", text="b")
    with pytest.raises(TypeError, match="image content is not supported"):
        ChatMessage(role="user", content=["look", object()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="needs its content"):
        ChatMessage(role="user")


def test_roles_and_item_fields() -> None:
    assert [r.value for r in ChatRole] == ["system", "developer", "user", "assistant"]
    assert ChatMessage(role=ChatRole.DEVELOPER, content="be brief").role == "developer"
    call = FunctionCall(name="get_weather", arguments='{"city": "Paris"}', call_id="c1", metadata={"sig": "x"})
    out = FunctionCallOutput(name="get_weather", output="21", call_id="c1", is_error=False)
    assert (call.type, out.type) == ("function_call", "function_call_output")
    assert (call.call_id, call.name, call.metadata, call.agent_id) == ("c1", "get_weather", {"sig": "x"}, None)
    assert (out.call_id, out.output, out.is_error) == ("c1", "21", False)
    handoff = AgentHandoff(to_agent="Billing", from_agent="Desk", reason="asked for a refund")
    assert handoff.type == "agent_handoff" and handoff.to_agent == "Billing"


def test_add_message_add_handoff_messages_and_items() -> None:
    ctx = ChatContext.empty()
    ctx.add_message(role=ChatRole.SYSTEM, content="You help.")
    user = ctx.add_message(role=ChatRole.USER, content=["Refund", "please"], message_id="u1", agent_id="desk")
    ctx.add_function_call(name="lookup", arguments="{}", call_id="c1")
    ctx.add_function_output(name="lookup", output="order 7", call_id="c1")
    handoff = ctx.add_handoff(to_agent="Billing", from_agent="Desk", reason="refund")
    assert user.id == "u1" and user.agent_id == "desk" and user.content == ["Refund", "please"]
    assert [m.role for m in ctx.messages()] == ["system", "user"]
    assert len(ctx.items) == 5 and ctx.items[-1] is handoff and ctx.get_by_id("u1") is user
    assert ctx.turn_count() == 1
    ctx.add_message(role=ChatRole.SYSTEM, content="You do billing.", replace=True)
    assert [m.text for m in ctx.messages() if m.role == "system"] == ["You do billing."]
    assert isinstance(ctx.add_config_update(instructions="Be terse.", tools=["refund"]), AgentConfigUpdate)
    assert ctx.active_config_at() == ("Be terse.", ["refund"])
    restored = ChatContext.from_json(ctx.to_json())
    assert restored.items == ctx.items


def test_copy_filters() -> None:
    @function_tool
    async def lookup() -> str:
        """Look it up."""
        return ""

    ctx = ChatContext()
    ctx.add_message("system", "Rules.")
    ctx.add_message("developer", "More rules.")
    ctx.add_message("user", "  ")
    ctx.add_message("user", "Hi", agent_id="a")
    ctx.add_function_call("c1", "lookup", "{}")
    ctx.add_function_output("c1", "lookup", "x")
    ctx.add_function_call("c2", "other", "{}")
    ctx.add_function_output("c2", "other", "y")
    ctx.add_handoff("B")
    ctx.add_config_update(instructions="x")

    def kinds(c: ChatContext) -> list[str]:
        return [i.role if isinstance(i, ChatMessage) else i.type for i in c.items]

    assert kinds(ctx.copy(exclude_system_messages=True))[:2] == ["developer", "user"]
    assert "developer" not in kinds(ctx.copy(exclude_instructions=True))
    assert len(ctx.copy(exclude_empty_messages=True).messages()) == 3
    assert "agent_handoff" not in kinds(ctx.copy(exclude_handoffs=True))
    assert "agent_config_update" not in kinds(ctx.copy(exclude_config_updates=True))
    assert "function_call" not in kinds(ctx.copy(exclude_function_calls=True))
    scoped = ctx.copy(tools=[lookup])
    assert [i.call_id for i in scoped.items if isinstance(i, FunctionCall | FunctionCallOutput)] == ["c1", "c1"]
    assert not [i for i in ctx.copy(tools=[]).items if isinstance(i, FunctionCall)]
    mine = ctx.copy(filter_agent_id="a")  # that agent's items, with the instructions and records
    assert kinds(mine) == ["system", "developer", "user", "agent_handoff", "agent_config_update"]
    copied = ctx.copy()
    copied.items[0].text = "changed"  # type: ignore[union-attr]
    assert ctx.items[0].text == "Rules."  # type: ignore[union-attr]


def test_fork_is_independent_and_read_only_view_refuses_changes() -> None:
    ctx = ChatContext()
    ctx.add_message("user", ["a", "b"])
    fork = ctx.fork()
    fork.items[0].content.append("c")  # type: ignore[union-attr]
    fork.add_message("user", "more")
    assert ctx.items[0].content == ["a", "b"] and len(ctx) == 1  # type: ignore[union-attr]
    view = ReadOnlyChatContext(ctx)
    with pytest.raises(RuntimeError, match="read-only"):
        view.add_message("user", "x")
    with pytest.raises(RuntimeError, match="read-only"):
        view.add_handoff("B")
    ctx.add_message("assistant", "live")
    assert [m.text for m in view.messages()] == ["a b", "live"]
    assert len(view.fork().items) == 2
    briefed = ctx.fork_brief("Summarise.", task_brief="the call")
    assert [(m.role, m.text) for m in briefed.messages()] == [("system", "Summarise."), ("user", "the call")]


def test_fork_filtered_keeps_instructions_and_recent_turns() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "Rules.")
    for n in range(4):
        ctx.add_message("user", f"q{n}")
        ctx.add_message("assistant", f"a{n}")
    recent = ctx.fork_filtered(recent_turns=2)
    assert [m.text for m in recent.messages()] == ["Rules.", "q2", "a2", "q3", "a3"]
    with pytest.raises(ValueError, match="recent_turns"):
        ctx.fork_filtered(recent_turns=0)


def test_truncate_by_items_keeps_instructions_last_user_and_call_pairs() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "Rules.")
    ctx.add_message("user", "q0")
    ctx.add_function_call("c0", "f", "{}")
    ctx.add_function_output("c0", "f", "x")
    ctx.add_message("assistant", "a0")
    ctx.add_message("user", "q1")
    assert ctx.truncate(max_items=3) is ctx
    assert [getattr(i, "text", i.type) for i in ctx.items] == ["Rules.", "a0", "q1"]
    assert ctx.truncate(1) is ctx  # only protected items are left: it stops there
    assert [getattr(i, "text", i.type) for i in ctx.items] == ["Rules.", "q1"]
    big = ChatContext()
    for n in range(10):
        big.add_message("user", "x" * 40 + str(n))
    big.truncate(max_tokens=50)
    assert big.estimated_tokens() <= 50 and big.items[-1].text.endswith("9")  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="max_items"):
        big.truncate(max_items=-1)


def test_agent_chat_context_before_start() -> None:
    seed = ChatContext()
    seed.add_message(role=ChatRole.USER, content="Earlier: my order is 7.")
    agent = Agent(instructions="Help.", chat_context=seed)
    assert agent.chat_context is seed
    assert agent.inherit_context is False  # VideoSDK's default
    assert Agent(instructions="Help.", agent_id="desk").id == "desk" and len(agent.id) == 36
    fresh = Agent(instructions="Help.")
    fresh.chat_context.add_message(role=ChatRole.ASSISTANT, content="Noted.")
    assert [m.text for m in fresh.chat_context.messages()] == ["Noted."]
    with pytest.raises(TypeError, match="ChatContext"):
        Agent(instructions="Help.", chat_context=[])  # type: ignore[arg-type]


async def test_agent_chat_context_joins_the_history_and_handoff_follows_inherit_context() -> None:
    seed = ChatContext()
    seed.add_message(role=ChatRole.USER, content="Earlier: my order is 7.", message_id="old")
    model = FakeRealtimeModel()
    session, transport, _ = await started(Agent(instructions="Help.", chat_context=seed), model)
    try:
        assert model.options is not None and model.options.chat_ctx is session.history
        assert [m.id for m in session.history.messages()] == ["old"]  # the model starts with it
        assert session.agent.chat_context is session.history
        session.agent.chat_context.add_message(role=ChatRole.ASSISTANT, content="Order 7 found.")
        keeper = Agent(instructions="Billing.", inherit_context=True)
        await session.update_agent(keeper)
        assert [m.text for m in session.history.messages()] == ["Earlier: my order is 7.", "Order 7 found."]
        brief = ChatContext()
        brief.add_message(role=ChatRole.USER, content="Refund order 7.")
        await session.update_agent(Agent(instructions="Refunds.", chat_context=brief))  # inherit_context=False
        assert [m.text for m in session.history.messages()] == ["Refund order 7."]
        replaced = ChatContext()
        replaced.add_message("user", "Start over.")
        session.agent.chat_context = replaced
        assert [m.text for m in session.history.messages()] == ["Start over."]
    finally:
        await session.close()
        await transport.close()
