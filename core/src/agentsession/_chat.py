"""Chat history: messages, function calls and their outputs, with JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias, cast, get_args

__all__ = [
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "ChatRole",
    "FunctionCall",
    "FunctionCallOutput",
]

Role: TypeAlias = Literal["system", "user", "assistant"]
_ROLES: tuple[str, ...] = get_args(Role)


class ChatRole(StrEnum):
    """A message's role, as VideoSDK names them (``ChatRole.USER``); messages store the plain string."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class ChatMessage:
    """A text message; assistant messages may carry the duration of their spoken audio."""

    role: Role
    text: str
    id: str = field(default_factory=_new_id)
    interrupted: bool = False
    audio_duration: float | None = None
    created_at: float = 0.0

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"invalid role {self.role!r} (expected one of {', '.join(_ROLES)})")
        self.role = cast(Role, str(self.role))  # ChatRole.USER is stored as "user"


@dataclass
class FunctionCall:
    """A tool call requested by the model; arguments is JSON text."""

    call_id: str
    name: str
    arguments: str
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0


@dataclass
class FunctionCallOutput:
    """The result of a tool call, sent back to the model."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0


ChatItem: TypeAlias = ChatMessage | FunctionCall | FunctionCallOutput

_TYPES: dict[str, type[ChatMessage | FunctionCall | FunctionCallOutput]] = {
    "message": ChatMessage,
    "function_call": FunctionCall,
    "function_call_output": FunctionCallOutput,
}
_TYPE_NAMES = {cls: name for name, cls in _TYPES.items()}
_FIELD_KINDS = {
    "role": "str",
    "text": "str",
    "id": "str",
    "call_id": "str",
    "name": "str",
    "arguments": "str",
    "output": "str",
    "interrupted": "bool",
    "is_error": "bool",
    "created_at": "float",
    "audio_duration": "float | None",
}


class ChatContext:
    """An ordered, mutable list of chat items."""

    def __init__(self, items: Iterable[ChatItem] = ()) -> None:
        self._items: list[ChatItem] = []
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, ChatMessage | FunctionCall | FunctionCallOutput):
                raise TypeError(f"not a chat item: {item!r}")
            if item.id in seen:
                raise ValueError(f"duplicate chat item id {item.id!r}")
            seen.add(item.id)
            self._items.append(item)

    @property
    def items(self) -> list[ChatItem]:
        """The underlying list (mutations are reflected in the context)."""
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[ChatItem]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"ChatContext({self._items!r})"

    def add_message(
        self,
        role: Role | ChatRole,
        text: str | list[str] | None = None,
        *,
        content: str | list[str] | None = None,
        id: str | None = None,
        message_id: str | None = None,
        interrupted: bool = False,
        audio_duration: float | None = None,
        created_at: float | None = None,
    ) -> ChatMessage:
        """Append a message (created_at defaults to now). VideoSDK's spelling works too:
        ``add_message(role=ChatRole.USER, content="...", message_id=...)``; a list of strings is joined."""
        body = text if text is not None else content
        if body is None:
            raise TypeError("add_message() needs the message's text or content")
        msg = ChatMessage(
            cast(Role, role),
            body if isinstance(body, str) else " ".join(body),
            id=id or message_id or _new_id(),
            interrupted=interrupted,
            audio_duration=audio_duration,
            created_at=time.time() if created_at is None else created_at,
        )
        self._items.append(msg)
        return msg

    def add_function_call(self, call_id: str, name: str, arguments: str) -> FunctionCall:
        """Append a function call requested by the model."""
        item = FunctionCall(call_id, name, arguments, created_at=time.time())
        self._items.append(item)
        return item

    def add_function_output(
        self, call_id: str, name: str, output: str, is_error: bool = False
    ) -> FunctionCallOutput:
        """Append the output of a function call."""
        item = FunctionCallOutput(call_id, name, output, is_error, created_at=time.time())
        self._items.append(item)
        return item

    def get(self, item_id: str) -> ChatItem | None:
        """The item with this id, or None."""
        for item in self._items:
            if item.id == item_id:
                return item
        return None

    def truncate(self, item_id: str, heard: float, *, text: str | None = None) -> ChatMessage:
        """Cut an interrupted assistant message to the part the user heard.

        ``text`` is what was heard when the TTS knows it (word timings); otherwise the kept text is
        proportional to ``heard / audio_duration`` and ends at a word boundary (a partially heard word is
        dropped).
        """
        item = self.get(item_id)
        if item is None:
            raise ValueError(f"unknown chat item id {item_id!r}")
        if not isinstance(item, ChatMessage) or item.role != "assistant":
            raise ValueError(f"chat item {item_id!r} is not an assistant message")
        duration = item.audio_duration
        if duration is None:
            raise ValueError(f"assistant message {item_id!r} has no audio_duration")
        if heard >= duration:
            return item
        if heard <= 0:
            item.text = ""
            heard = 0.0
        elif text is not None:
            item.text = text
        else:
            item.text = _cut_at_word(item.text, int(len(item.text) * heard / duration + 1e-9))
        item.interrupted = True
        item.audio_duration = heard
        return item

    def copy(self) -> ChatContext:
        """A copy whose items can be modified independently."""
        return ChatContext(dataclasses.replace(item) for item in self._items)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict: ``{"items": [{"type": ..., **fields}]}``."""
        return {
            "items": [
                {"type": _TYPE_NAMES[type(item)], **dataclasses.asdict(item)}
                for item in self._items
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatContext:
        """Rebuild a context from :meth:`to_dict` output; ValueError on malformed input."""
        if not isinstance(data, Mapping):
            msg = f"chat context must be an object, got {type(data).__name__}"
            raise ValueError(msg)  # noqa: TRY004 - documented: ValueError on malformed input
        raw_items = data.get("items")
        if not isinstance(raw_items, list):
            raise ValueError("chat context must have an 'items' list")  # noqa: TRY004
        return cls(_item_from_dict(raw, f"items[{i}]") for i, raw in enumerate(raw_items))

    def to_json(self) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ChatContext:
        """Parse :meth:`to_json` output; ValueError on malformed input."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid chat context JSON: {e}") from None
        return cls.from_dict(data)


def _cut_at_word(text: str, n: int) -> str:
    if n >= len(text):
        return text
    if n > 0 and not text[n].isspace() and not text[n - 1].isspace():
        n = max(text.rfind(c, 0, n) for c in (" ", "\n", "\t"))  # drop the partial word
    return text[: max(n, 0)].rstrip()


def _check_type(value: object, expected: str, where: str) -> None:
    ok: bool
    if expected == "str":
        ok = isinstance(value, str)
    elif expected == "bool":
        ok = isinstance(value, bool)
    elif expected == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:  # "float | None"
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if not ok:
        raise ValueError(f"{where} must be {expected}, got {type(value).__name__}")



def _item_from_dict(raw: object, where: str) -> ChatItem:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object, got {type(raw).__name__}")  # noqa: TRY004
    kind = raw.get("type")
    item_cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if item_cls is None:
        raise ValueError(f"{where}.type must be one of {', '.join(_TYPES)}, got {kind!r}")
    fields = {f.name: f for f in dataclasses.fields(item_cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        f = fields.get(key)
        if f is None:
            raise ValueError(f"{where}: unknown field {key!r} for {kind}")
        expected = _FIELD_KINDS[key]
        _check_type(value, expected, f"{where}.{key}")
        kwargs[key] = float(value) if expected.startswith("float") and value is not None else value
    for name, f in fields.items():
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if name not in kwargs and not has_default:
            raise ValueError(f"{where}: missing field {name!r} for {kind}")
    if item_cls is ChatMessage and kwargs["role"] not in _ROLES:
        raise ValueError(f"{where}.role must be one of {', '.join(_ROLES)}, got {kwargs['role']!r}")
    return item_cls(**kwargs)
