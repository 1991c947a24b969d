from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agentsession._chat import (
    ChatContext,
    ChatItem,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
)


def sample() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", "You are helpful.")
    ctx.add_message("user", "Weather in Paris?")
    ctx.add_function_call("call_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("call_1", "get_weather", '{"temp": 21}')
    ctx.add_function_output("call_2", "get_time", '{"error": "boom"}', is_error=True)
    ctx.add_message("assistant", "It is 21 degrees in Paris.", audio_duration=2.5)
    return ctx


def test_items_ids_and_accessors() -> None:
    ctx = sample()
    assert len(ctx) == 6
    assert [type(i).__name__ for i in ctx] == [
        "ChatMessage",
        "ChatMessage",
        "FunctionCall",
        "FunctionCallOutput",
        "FunctionCallOutput",
        "ChatMessage",
    ]
    ids = [i.id for i in ctx.items]
    assert len(set(ids)) == 6
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert all(i.created_at > 0 for i in ctx)
    call = ctx.items[2]
    assert isinstance(call, FunctionCall) and call.arguments == '{"city": "Paris"}'
    out = ctx.items[4]
    assert isinstance(out, FunctionCallOutput) and out.is_error
    assert ctx.get(call.id) is call
    assert ctx.get("missing") is None
    ctx.items.append(ChatMessage("user", "appended"))  # items is the live list
    assert len(ctx) == 7


def test_dataclass_defaults() -> None:
    msg = ChatMessage("user", "hi")
    assert (msg.interrupted, msg.audio_duration, msg.created_at) == (False, None, 0.0)
    assert FunctionCall("c", "n", "{}").created_at == 0.0
    assert FunctionCallOutput("c", "n", "x").is_error is False
    assert ChatMessage("user", "a").id != ChatMessage("user", "a").id
    with pytest.raises(ValueError, match="invalid role"):
        ChatMessage("robot", "hi")  # type: ignore[arg-type]


def test_add_message_keywords() -> None:
    ctx = ChatContext()
    msg = ctx.add_message("assistant", "x", id="m1", interrupted=True, audio_duration=1.0, created_at=5.0)
    assert msg == ChatMessage("assistant", "x", "m1", True, 1.0, 5.0)


def test_init_from_items_and_duplicates() -> None:
    a, b = ChatMessage("user", "a"), ChatMessage("assistant", "b")
    ctx = ChatContext([a, b])
    assert list(ctx) == [a, b]
    with pytest.raises(ValueError, match="duplicate"):
        ChatContext([a, a])


# --------------------------------------------------------------------------- truncate


def assistant(ctx: ChatContext, text: str, duration: float | None) -> ChatMessage:
    return ctx.add_message("assistant", text, audio_duration=duration)


def test_truncate_proportional_cuts_partial_word() -> None:
    ctx = ChatContext()
    text = "one two three four"  # 18 chars
    msg = assistant(ctx, text, 4.0)
    # half heard -> 9 chars -> "one two t" -> partial "three" dropped
    out = ctx.truncate(msg.id, 2.0)
    assert out is msg
    assert (msg.text, msg.interrupted, msg.audio_duration) == ("one two", True, 2.0)


def test_truncate_on_word_end_keeps_word() -> None:
    ctx = ChatContext()
    msg = assistant(ctx, "abcd efgh", 9.0)  # 1 char per second
    ctx.truncate(msg.id, 4.0)  # exactly "abcd"
    assert msg.text == "abcd"
    msg2 = assistant(ctx, "abcd efgh", 9.0)
    ctx.truncate(msg2.id, 5.0)  # "abcd " -> trailing space stripped
    assert msg2.text == "abcd"
    msg3 = assistant(ctx, "abcd efgh", 9.0)
    ctx.truncate(msg3.id, 8.0)  # "abcd efg" -> partial word dropped
    assert msg3.text == "abcd"


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        (0.5, ""),  # inside the first word
        (3.0, "alpha"),
        (7.5, "alpha beta gamma"),
        (9.9, "alpha beta gamma"),
    ],
)
def test_truncate_various_points(heard: float, expected: str) -> None:
    ctx = ChatContext()
    msg = assistant(ctx, "alpha beta gamma delta", 10.0)  # 22 chars
    ctx.truncate(msg.id, heard)
    assert msg.text == expected
    assert msg.interrupted and msg.audio_duration == heard


def test_truncate_heard_all_or_nothing() -> None:
    ctx = ChatContext()
    msg = assistant(ctx, "full sentence here", 3.0)
    ctx.truncate(msg.id, 3.0)
    assert (msg.text, msg.interrupted, msg.audio_duration) == ("full sentence here", False, 3.0)
    ctx.truncate(msg.id, 10.0)
    assert msg.text == "full sentence here" and not msg.interrupted

    ctx.truncate(msg.id, 0.0)
    assert (msg.text, msg.interrupted, msg.audio_duration) == ("", True, 0.0)
    msg2 = assistant(ctx, "other", 1.0)
    ctx.truncate(msg2.id, -1.0)
    assert (msg2.text, msg2.interrupted, msg2.audio_duration) == ("", True, 0.0)


def test_truncate_errors() -> None:
    ctx = sample()
    user = ctx.items[1]
    call = ctx.items[2]
    with pytest.raises(ValueError, match="unknown"):
        ctx.truncate("nope", 1.0)
    with pytest.raises(ValueError, match="not an assistant message"):
        ctx.truncate(user.id, 1.0)
    with pytest.raises(ValueError, match="not an assistant message"):
        ctx.truncate(call.id, 1.0)
    no_audio = ctx.add_message("assistant", "text only")
    with pytest.raises(ValueError, match="audio_duration"):
        ctx.truncate(no_audio.id, 1.0)


# --------------------------------------------------------------------------- copy / serialization


def test_copy_is_independent() -> None:
    ctx = sample()
    clone = ctx.copy()
    assert clone.items == ctx.items
    assert all(a is not b for a, b in zip(clone.items, ctx.items, strict=True))
    last = clone.items[-1]
    clone.truncate(last.id, 1.0)
    clone.add_message("user", "more")
    assert len(ctx) == 6
    original = ctx.items[-1]
    assert isinstance(original, ChatMessage) and original.text == "It is 21 degrees in Paris."


def test_to_dict_shape() -> None:
    ctx = ChatContext(
        [
            ChatMessage("user", "hi", id="m1", created_at=1.0),
            FunctionCall("c1", "f", "{}", id="f1", created_at=2.0),
            FunctionCallOutput("c1", "f", "ok", id="o1", created_at=3.0),
        ]
    )
    assert ctx.to_dict() == {
        "items": [
            {
                "type": "message",
                "role": "user",
                "text": "hi",
                "id": "m1",
                "interrupted": False,
                "audio_duration": None,
                "created_at": 1.0,
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "f",
                "arguments": "{}",
                "id": "f1",
                "created_at": 2.0,
            },
            {
                "type": "function_call_output",
                "call_id": "c1",
                "name": "f",
                "output": "ok",
                "is_error": False,
                "id": "o1",
                "created_at": 3.0,
            },
        ]
    }


def test_json_round_trip() -> None:
    ctx = sample()
    ctx.truncate(ctx.items[-1].id, 1.0)
    ctx.add_message("user", "ünïcödé ✓")
    text = ctx.to_json()
    assert "ünïcödé ✓" in text
    restored = ChatContext.from_json(text)
    assert restored.items == ctx.items
    assert restored.to_dict() == ctx.to_dict()
    assert ChatContext.from_dict(json.loads(text)).items == ctx.items


def test_from_dict_fills_defaults_and_converts_ints() -> None:
    ctx = ChatContext.from_dict(
        {"items": [{"type": "message", "role": "assistant", "text": "x", "audio_duration": 2}]}
    )
    msg = ctx.items[0]
    assert isinstance(msg, ChatMessage)
    assert msg.audio_duration == 2.0 and isinstance(msg.audio_duration, float)
    assert msg.interrupted is False and len(msg.id) == 12
    assert ChatContext.from_dict({"items": []}).items == []


BAD: list[tuple[Any, str]] = [
    ([], "must be an object"),
    ({}, "'items' list"),
    ({"items": {}}, "'items' list"),
    ({"items": [1]}, r"items\[0\] must be an object"),
    ({"items": [{"role": "user", "text": "x"}]}, r"items\[0\]\.type must be one of"),
    ({"items": [{"type": "image"}]}, "'image'"),
    ({"items": [{"type": "message", "text": "x"}]}, "missing field 'role'"),
    ({"items": [{"type": "message", "role": "user", "text": 3}]}, r"items\[0\]\.text must be str"),
    ({"items": [{"type": "message", "role": "bot", "text": "x"}]}, r"items\[0\]\.role must be one of"),
    ({"items": [{"type": "message", "role": "user", "text": "x", "color": 1}]}, "unknown field 'color'"),
    ({"items": [{"type": "function_call", "call_id": "c", "name": "n"}]}, "missing field 'arguments'"),
    (
        {"items": [{"type": "function_call_output", "call_id": "c", "name": "n", "output": "o", "is_error": 1}]},
        r"is_error must be bool",
    ),
    (
        {"items": [{"type": "message", "role": "user", "text": "x", "created_at": True}]},
        "created_at must be float",
    ),
    (
        {
            "items": [
                {"type": "message", "role": "user", "text": "a", "id": "same"},
                {"type": "message", "role": "user", "text": "b", "id": "same"},
            ]
        },
        "duplicate chat item id 'same'",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_from_dict_rejects_malformed_input(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChatContext.from_dict(data)


def test_from_json_rejects_invalid_json() -> None:
    with pytest.raises(ValueError, match="invalid chat context JSON"):
        ChatContext.from_json("{nope")
    with pytest.raises(ValueError, match="'items' list"):
        ChatContext.from_json("{}")
    with pytest.raises(ValueError, match="must be an object"):
        ChatContext.from_json("[]")


def test_chat_item_alias_covers_all_types() -> None:
    items: list[ChatItem] = [ChatMessage("user", "x"), FunctionCall("c", "n", "{}"), FunctionCallOutput("c", "n", "o")]
    assert len(ChatContext(items)) == 3
    with pytest.raises(TypeError):
        ChatContext(["not an item"])  # type: ignore[list-item]


def test_videosdk_chat_role_and_add_message_content() -> None:
    """VideoSDK code writes ``chat_context.add_message(role=ChatRole.USER, content=...)`` (its ConversationFlow
    examples): ``ChatRole`` is a str enum and ``content`` names the text (a string or a list of strings)."""
    from agentsession._chat import ChatRole

    assert [ChatRole.SYSTEM, ChatRole.USER, ChatRole.ASSISTANT] == ["system", "user", "assistant"]
    assert f"{ChatRole.USER}" == "user"
    ctx = ChatContext()
    msg = ctx.add_message(role=ChatRole.USER, content="what is nginx")
    assert msg.role == "user" and isinstance(msg.role, str) and msg.text == "what is nginx"
    assert msg.role is ChatRole.USER and msg.role.value == "user"  # type: ignore[attr-defined]  # VideoSDK's reads
    assert ctx.add_message(ChatRole.ASSISTANT, ["It is", "a web server."]).text == "It is a web server."
    assert ctx.add_message("system", "Be brief.", message_id="s1").id == "s1"
    assert json.loads(json.dumps(ctx.to_dict()))["items"][0]["role"] == "user"
    with pytest.raises(TypeError, match="text or content"):
        ctx.add_message("user")
