"""Chat history: messages, function calls and their outputs, agent handoffs, with JSON round trip.

The items and ``ChatContext`` follow VideoSDK's contract (``ChatMessage(role=, content=)``, ``add_message``,
``add_handoff``, ``copy(exclude_...)``, ``fork``, ``messages()``, ``truncate(max_items=)``) beside our own
(``ChatMessage(role, text)``, ``truncate(item_id, heard)`` for an interrupted answer)."""

from __future__ import annotations

import copy as _copy
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, NoReturn, Protocol, TypeAlias, cast, get_args, overload

logger = logging.getLogger("agentsession.context")


__all__ = [
    "AgentConfigUpdate",
    "AgentHandoff",
    "ChatContent",
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "ChatRole",
    "FunctionCall",
    "FunctionCallOutput",
    "ReadOnlyChatContext",
]

Role: TypeAlias = Literal["system", "developer", "user", "assistant"]
_ROLES: tuple[str, ...] = get_args(Role)
_INSTRUCTION_ROLES = ("system", "developer")

#: a part of a message's content: text (images are not supported here)
ChatContent: TypeAlias = str


class ChatRole(StrEnum):
    """A message's role, as VideoSDK names them (``ChatRole.USER``); a message's ``role`` is one (equal to its
    plain string: ``msg.role == "user"``, ``msg.role.value`` and JSON ``"user"`` all hold).
    ``DEVELOPER`` is an instruction like ``SYSTEM`` (providers without that role get it as system text)."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _check_content(content: object) -> str | list[str]:
    if isinstance(content, str):
        return str(content)
    if isinstance(content, list | tuple) and all(isinstance(p, str) for p in content):
        return [str(p) for p in content]
    raise TypeError(
        f"a message's content must be a string or a list of strings, got {content!r} "
        "(image content is not supported)"
    )


@dataclass(init=False)
class ChatMessage:
    """A text message. ``content`` is a string or a list of strings (VideoSDK's form); ``text`` is the same
    content as one string. Assistant messages may carry the duration of their spoken audio."""

    type: ClassVar[Literal["message"]] = "message"

    role: Role
    content: str | list[str]
    id: str
    interrupted: bool
    audio_duration: float | None
    created_at: float
    agent_id: str | None
    extra: dict[str, Any]
    confidence: float | None

    def __init__(
        self,
        role: Role | ChatRole,
        content: str | Sequence[str] | None = None,
        id: str | None = None,
        interrupted: bool = False,
        audio_duration: float | None = None,
        created_at: float = 0.0,
        agent_id: str | None = None,
        extra: dict[str, Any] | None = None,
        confidence: float | None = None,
        *,
        text: str | None = None,
    ) -> None:
        """``ChatMessage("user", "hi")``, ``ChatMessage(role="user", text="hi")`` and VideoSDK's
        ``ChatMessage(role=ChatRole.USER, content=["hi"])`` make the same kind of message."""
        if role not in _ROLES:
            raise ValueError(f"invalid role {role!r} (expected one of {', '.join(_ROLES)})")
        if content is not None and text is not None:
            raise TypeError("give a message's content or its text, not both")
        body = content if content is not None else text
        if body is None:
            raise TypeError("a ChatMessage needs its content (or text)")
        # a ChatRole, which is the plain string too ("user" == ChatRole.USER): VideoSDK code reads role.value
        self.role = cast(Role, ChatRole(role))
        self.content = _check_content(body)
        self.id = id or _new_id()
        self.interrupted = interrupted
        self.audio_duration = audio_duration
        self.created_at = created_at
        self.agent_id = agent_id
        self.extra = {} if extra is None else extra
        self.confidence = confidence

    @property
    def text(self) -> str:
        """The content as one string (a list's parts joined by spaces)."""
        return self.content if isinstance(self.content, str) else " ".join(self.content)

    @text.setter
    def text(self, value: str) -> None:
        self.content = value


@dataclass
class FunctionCall:
    """A tool call requested by the model; arguments is JSON text. ``metadata`` carries provider data that
    must travel with the call."""

    type: ClassVar[Literal["function_call"]] = "function_call"

    call_id: str
    name: str
    arguments: str
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0
    agent_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class FunctionCallOutput:
    """The result of a tool call, sent back to the model."""

    type: ClassVar[Literal["function_call_output"]] = "function_call_output"

    call_id: str
    name: str
    output: str
    is_error: bool = False
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0
    agent_id: str | None = None


@dataclass(kw_only=True)
class AgentHandoff:
    """A record that the conversation passed from one agent to another; never sent to a model."""

    type: ClassVar[Literal["agent_handoff"]] = "agent_handoff"

    to_agent: str
    from_agent: str | None = None
    reason: str | None = None
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0
    agent_id: str | None = None


@dataclass(kw_only=True)
class AgentConfigUpdate:
    """A record that the agent's instructions or tools changed mid-conversation; never sent to a model."""

    type: ClassVar[Literal["agent_config_update"]] = "agent_config_update"

    instructions: str | None = None
    tools: list[str] | None = None
    id: str = field(default_factory=_new_id)
    created_at: float = 0.0
    agent_id: str | None = None


ChatItem: TypeAlias = ChatMessage | FunctionCall | FunctionCallOutput | AgentHandoff | AgentConfigUpdate
_ITEM_TYPES = (ChatMessage, FunctionCall, FunctionCallOutput, AgentHandoff, AgentConfigUpdate)
_STRUCTURAL = (AgentHandoff, AgentConfigUpdate)

_TYPES: dict[str, type[ChatItem]] = {cls.type: cls for cls in _ITEM_TYPES}
# field -> the JSON kinds it accepts
_FIELD_KINDS = {
    "role": "str",
    "text": "str",
    "content": "str | list[str]",
    "id": "str",
    "call_id": "str",
    "name": "str",
    "arguments": "str",
    "output": "str",
    "interrupted": "bool",
    "is_error": "bool",
    "created_at": "float",
    "audio_duration": "float | None",
    "confidence": "float | None",
    "agent_id": "str | None",
    "to_agent": "str",
    "from_agent": "str | None",
    "reason": "str | None",
    "instructions": "str | None",
    "tools": "list[str] | None",
    "extra": "dict",
    "metadata": "dict | None",
}
# fields written by to_dict() only when set (the format before they existed stays as it was)
_OPTIONAL_FIELDS = {"agent_id": None, "metadata": None, "confidence": None}


def _clone(item: ChatItem) -> ChatItem:
    """An independent copy (cheaper than a deep copy: only the containers inside are copied)."""
    clone = _copy.copy(item)
    for name in ("content", "extra", "metadata", "tools"):
        value = getattr(clone, name, None)
        if isinstance(value, list | dict):
            setattr(clone, name, _copy.deepcopy(value))
    return clone


def _tool_name(tool: object) -> str:
    name = tool if isinstance(tool, str) else getattr(tool, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"tools= takes FunctionTools or tool names, got {tool!r}")
    return name


def _has_content(msg: ChatMessage) -> bool:
    parts = [msg.content] if isinstance(msg.content, str) else msg.content
    return any(p.strip() for p in parts)


class ChatContext:
    """An ordered, mutable list of chat items."""

    def __init__(self, items: Iterable[ChatItem] | None = ()) -> None:
        self._items: list[ChatItem] = []
        seen: set[str] = set()
        for item in items or ():
            if not isinstance(item, _ITEM_TYPES):
                raise TypeError(f"not a chat item: {item!r}")
            if item.id in seen:
                raise ValueError(f"duplicate chat item id {item.id!r}")
            seen.add(item.id)
            self._items.append(item)

    @classmethod
    def empty(cls) -> ChatContext:
        """A new context with no items (VideoSDK's spelling of ``ChatContext()``)."""
        return cls()

    @property
    def items(self) -> list[ChatItem]:
        """The underlying list (mutations are reflected in the context)."""
        return self._items

    def messages(self) -> list[ChatMessage]:
        """The messages only (no function calls, outputs or handoff records)."""
        return [item for item in self._items if isinstance(item, ChatMessage)]

    def turn_count(self) -> int:
        """How many user messages the context holds."""
        return sum(1 for item in self._items if isinstance(item, ChatMessage) and item.role == "user")

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[ChatItem]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"ChatContext({self._items!r})"

    def add_message(
        self,
        role: Role | ChatRole,
        text: str | Sequence[str] | None = None,
        *,
        content: str | Sequence[str] | None = None,
        id: str | None = None,
        message_id: str | None = None,
        interrupted: bool = False,
        audio_duration: float | None = None,
        created_at: float | None = None,
        replace: bool = False,
        agent_id: str | None = None,
    ) -> ChatMessage:
        """Append a message (created_at defaults to now). VideoSDK's spelling works too:
        ``add_message(role=ChatRole.USER, content="...", message_id=...)``; ``content`` may be a list of
        strings. ``replace=True`` with a system role drops the earlier system messages first."""
        if text is not None and content is not None:
            raise TypeError("add_message() takes the message's text or its content, not both")
        body = text if text is not None else content
        if body is None:
            raise TypeError("add_message() needs the message's text or content")
        msg = ChatMessage(
            role,
            body,
            id=id or message_id or _new_id(),
            interrupted=interrupted,
            audio_duration=audio_duration,
            created_at=time.time() if created_at is None else created_at,
            agent_id=agent_id,
        )
        if replace and msg.role == "system":
            self._items[:] = [i for i in self._items if not (isinstance(i, ChatMessage) and i.role == "system")]
        self._items.append(msg)
        return msg

    def add_function_call(
        self,
        call_id: str | None = None,
        name: str | None = None,
        arguments: str | None = None,
        *,
        agent_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> FunctionCall:
        """Append a function call requested by the model: ``(call_id, name, arguments)``, or by keyword as
        VideoSDK writes it (``name=, arguments=``, ``call_id=`` optional)."""
        if name is None or arguments is None:
            raise TypeError("add_function_call() needs name= and arguments= (JSON text)")
        item = FunctionCall(call_id or f"call_{_new_id()}", name, arguments, created_at=time.time(),
                            agent_id=agent_id, metadata=metadata)
        self._items.append(item)
        return item

    def add_function_output(
        self,
        call_id: str | None = None,
        name: str | None = None,
        output: str | None = None,
        is_error: bool = False,
        *,
        agent_id: str | None = None,
    ) -> FunctionCallOutput:
        """Append the output of a function call: ``(call_id, name, output)`` or by keyword."""
        if call_id is None or name is None or output is None:
            raise TypeError("add_function_output() needs call_id=, name= and output=")
        item = FunctionCallOutput(call_id, name, output, is_error, created_at=time.time(), agent_id=agent_id)
        self._items.append(item)
        return item

    def add_handoff(self, to_agent: str, from_agent: str | None = None, reason: str | None = None) -> AgentHandoff:
        """Record that the conversation passed to ``to_agent`` (a record only: models never see it)."""
        item = AgentHandoff(to_agent=to_agent, from_agent=from_agent, reason=reason, created_at=time.time())
        self._items.append(item)
        return item

    def add_config_update(
        self, instructions: str | None = None, tools: list[str] | None = None, agent_id: str | None = None
    ) -> AgentConfigUpdate:
        """Record a change of the agent's instructions or tools (a record only: models never see it)."""
        item = AgentConfigUpdate(instructions=instructions, tools=tools, agent_id=agent_id, created_at=time.time())
        self._items.append(item)
        return item

    def get(self, item_id: str) -> ChatItem | None:
        """The item with this id, or None."""
        for item in self._items:
            if item.id == item_id:
                return item
        return None

    def get_by_id(self, item_id: str) -> ChatItem | None:
        """VideoSDK's name for :meth:`get`."""
        return self.get(item_id)

    def insert(self, item: ChatItem) -> ChatItem:
        """Insert ``item`` before the first item created after it."""
        if not isinstance(item, _ITEM_TYPES):
            raise TypeError(f"not a chat item: {item!r}")
        pos = next((i for i, e in enumerate(self._items) if e.created_at > item.created_at), len(self._items))
        self._items.insert(pos, item)
        return item

    def active_config_at(self, target: str | int | None = None) -> tuple[str | None, list[str] | None]:
        """The (instructions, tool names) in force at ``target`` (an item id, an index, or the end), from the
        system/developer messages and config updates up to it."""
        if target is None:
            end = len(self._items)
        elif isinstance(target, int):
            end = target + 1
        else:
            end = next((i + 1 for i, item in enumerate(self._items) if item.id == target), len(self._items))
        instructions: str | None = None
        tools: list[str] | None = None
        for item in self._items[:end]:
            if isinstance(item, ChatMessage) and item.role in _INSTRUCTION_ROLES:
                instructions = item.text
            elif isinstance(item, AgentConfigUpdate):
                instructions = item.instructions if item.instructions is not None else instructions
                tools = item.tools if item.tools is not None else tools
        return instructions, tools

    @overload
    def truncate(self, item_id: str, heard: float, *, text: str | None = None) -> ChatMessage: ...
    @overload
    def truncate(self, item_id: int | None = None, heard: None = None, *, max_items: int | None = None,
                 max_tokens: int | None = None) -> ChatContext: ...

    def truncate(
        self,
        item_id: str | int | None = None,
        heard: float | None = None,
        *,
        text: str | None = None,
        max_items: int | None = None,
        max_tokens: int | None = None,
    ) -> ChatMessage | ChatContext:
        """Two uses. ``truncate(item_id, heard)`` cuts an interrupted assistant message to the part the user
        heard: ``text`` when the TTS knows it (word timings), else the kept text is proportional to
        ``heard / audio_duration`` and ends at a word boundary (a partially heard word is dropped).
        ``truncate(max_items=, max_tokens=)`` (VideoSDK's; ``truncate(20)``
        too) drops the oldest items until both limits hold, keeping the instructions, the last user message
        and handoff records, and never leaving a function call without its output; returns the context."""
        if isinstance(item_id, str):
            if heard is None:
                raise TypeError("truncate(item_id, heard) needs the seconds heard")
            return self._cut_heard(item_id, heard, text)
        if item_id is not None:
            if isinstance(item_id, bool) or not isinstance(item_id, int):
                raise TypeError(f"truncate() takes an item id and seconds heard, or max_items=, got {item_id!r}")
            max_items = item_id
        return self._trim(max_items, max_tokens)

    def _cut_heard(self, item_id: str, heard: float, text: str | None) -> ChatMessage:
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

    async def summarize(self, llm: ChatModel, *, keep_recent_turns: int = 3) -> ChatContext:
        """Sum up the turns before the last ``keep_recent_turns`` user messages in one assistant message written
        by ``llm`` (VideoSDK's); instructions, handoffs, config updates and earlier summaries stay. In place."""
        return await summarize(self, llm, keep_recent_turns=keep_recent_turns)

    def estimated_tokens(self) -> int:
        """A rough token count (about 4 characters a token, 4 per item)."""
        return sum(_estimate_tokens(item) for item in self._items)

    def _trim(self, max_items: int | None, max_tokens: int | None) -> ChatContext:
        for name, limit in (("max_items", max_items), ("max_tokens", max_tokens)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {limit!r}")
        instructions = next(
            (i for i in self._items if isinstance(i, ChatMessage) and i.role in _INSTRUCTION_ROLES), None
        )
        last_user = next(
            (i for i in reversed(self._items) if isinstance(i, ChatMessage) and i.role == "user"), None
        )
        protected = {id(i) for i in (instructions, last_user) if i is not None}
        protected |= {id(i) for i in self._items if isinstance(i, _STRUCTURAL)
                      or (isinstance(i, ChatMessage) and i.extra.get("summary"))}  # ContextWindow's summaries
        items = list(self._items)

        def over() -> bool:
            return (max_items is not None and len(items) > max_items) or (
                max_tokens is not None and sum(_estimate_tokens(i) for i in items) > max_tokens
            )

        while over():
            victim = next((i for i in items if id(i) not in protected), None)
            if victim is None:
                break  # only protected items are left
            items.remove(victim)
            if isinstance(victim, FunctionCall | FunctionCallOutput):  # a call and its output go together
                items = [i for i in items if not (isinstance(i, FunctionCall | FunctionCallOutput)
                                                  and i.call_id == victim.call_id)]
        self._items[:] = items
        return self

    def copy(
        self,
        *,
        exclude_system_messages: bool = False,
        exclude_instructions: bool = False,
        exclude_empty_messages: bool = False,
        exclude_function_calls: bool = False,
        exclude_handoffs: bool = False,
        exclude_config_updates: bool = False,
        tools: Iterable[object] | None = None,
        filter_agent_id: str | None = None,
    ) -> ChatContext:
        """A copy whose items can be modified independently, filtered as VideoSDK's ``copy()`` does:
        ``exclude_system_messages`` (system role), ``exclude_instructions`` (system and developer),
        ``exclude_empty_messages``, ``exclude_function_calls``, ``exclude_handoffs``,
        ``exclude_config_updates``; ``tools`` keeps only the calls and outputs of these tools (FunctionTools
        or names; ``[]`` drops them all); ``filter_agent_id`` keeps only that agent's items (instructions and
        records are kept)."""
        names = None if tools is None else {_tool_name(t) for t in tools}
        kept: list[ChatItem] = []
        for item in self._items:
            if isinstance(item, ChatMessage):
                if (exclude_system_messages and item.role == "system") or (
                    exclude_instructions and item.role in _INSTRUCTION_ROLES
                ):
                    continue
                if exclude_empty_messages and not _has_content(item):
                    continue
            if isinstance(item, FunctionCall | FunctionCallOutput) and (
                exclude_function_calls or (names is not None and item.name not in names)
            ):
                continue
            if (exclude_handoffs and isinstance(item, AgentHandoff)) or (
                exclude_config_updates and isinstance(item, AgentConfigUpdate)
            ):
                continue
            if filter_agent_id is not None and item.agent_id != filter_agent_id:
                structural = isinstance(item, _STRUCTURAL) or (
                    isinstance(item, ChatMessage) and item.role in _INSTRUCTION_ROLES
                )
                if not structural:
                    continue
            kept.append(_clone(item))
        return ChatContext(kept)

    def fork(self) -> ChatContext:
        """An independent deep copy (for a sub-agent): later changes to either never touch the other."""
        return ChatContext(_clone(item) for item in self._items)

    def fork_filtered(self, recent_turns: int = 3, tools: Iterable[object] | None = None) -> ChatContext:
        """An independent copy holding the instructions and the last ``recent_turns`` user turns."""
        if recent_turns < 1:
            raise ValueError("recent_turns must be >= 1")
        scoped = self.copy(tools=tools)
        head = [i for i in scoped.items if isinstance(i, ChatMessage) and i.role in _INSTRUCTION_ROLES]
        users = [n for n, i in enumerate(scoped.items) if isinstance(i, ChatMessage) and i.role == "user"]
        tail = scoped.items[users[-recent_turns]:] if len(users) > recent_turns else scoped.items
        return ChatContext(head + [i for i in tail if not any(i is h for h in head)])

    def fork_brief(self, instructions: str, task_brief: str | None = None,
                   agent_id: str | None = None) -> ChatContext:
        """A fresh context for a sub-agent: its instructions and, optionally, a task brief as a user message."""
        if not instructions:
            raise ValueError("fork_brief() needs non-empty instructions")
        ctx = ChatContext()
        ctx.add_message("system", instructions, agent_id=agent_id)
        if task_brief:
            ctx.add_message("user", task_brief, agent_id=agent_id)
        return ctx

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict: ``{"items": [{"type": ..., **fields}]}``. A message's content is written
        as ``text`` (and as ``content`` too when it is a list)."""
        return {"items": [_item_to_dict(item) for item in self._items]}

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


_READ_ONLY = "this ChatContext is read-only: make a copy with ctx.copy() or ctx.fork() and change that"


class ReadOnlyChatContext(ChatContext):
    """A read-only view of another context's items (live: it sees later changes); every change raises
    ``RuntimeError``. ``copy()``/``fork()`` give a context that can be changed."""

    def __init__(self, items: list[ChatItem] | ChatContext) -> None:
        self._items = items.items if isinstance(items, ChatContext) else items

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError(_READ_ONLY)

    add_message = _refuse
    add_function_call = _refuse
    add_function_output = _refuse
    add_handoff = _refuse
    add_config_update = _refuse
    insert = _refuse
    truncate = _refuse

    @property
    def items(self) -> list[ChatItem]:
        """A copy of the list: changing it does not change the context."""
        return list(self._items)


def _estimate_tokens(item: ChatItem) -> int:
    if isinstance(item, ChatMessage):
        return 4 + len(item.text) // 4
    if isinstance(item, FunctionCall):
        return 9 + len(item.name) // 4 + len(item.arguments) // 4
    if isinstance(item, FunctionCallOutput):
        return 9 + len(item.name) // 4 + len(item.output) // 4
    return 4


def _cut_at_word(text: str, n: int) -> str:
    if n >= len(text):
        return text
    if n > 0 and not text[n].isspace() and not text[n - 1].isspace():
        n = max(text.rfind(c, 0, n) for c in (" ", "\n", "\t"))  # drop the partial word
    return text[: max(n, 0)].rstrip()


def _item_to_dict(item: ChatItem) -> dict[str, Any]:
    out: dict[str, Any] = {"type": item.type}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name in _OPTIONAL_FIELDS and value is None:
            continue
        if isinstance(item, ChatMessage):
            if f.name == "content":
                out["text"] = item.text
                if isinstance(value, list):
                    out["content"] = list(value)
                continue
            if f.name == "extra" and not value:
                continue
        out[f.name] = _copy.deepcopy(value)
    return out


def _check_type(value: object, expected: str, where: str) -> None:
    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    checks: dict[str, Callable[[object], bool]] = {
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "float": number,
        "float | None": lambda v: v is None or number(v),
        "str | None": lambda v: v is None or isinstance(v, str),
        "str | list[str]": lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(p, str) for p in v)),
        "list[str] | None": lambda v: v is None or (isinstance(v, list) and all(isinstance(p, str) for p in v)),
        "dict": lambda v: isinstance(v, dict),
        "dict | None": lambda v: v is None or isinstance(v, dict),
    }
    if not checks[expected](value):
        raise ValueError(f"{where} must be {expected}, got {type(value).__name__}")


def _item_from_dict(raw: object, where: str) -> ChatItem:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object, got {type(raw).__name__}")  # noqa: TRY004
    kind = raw.get("type")
    item_cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if item_cls is None:
        raise ValueError(f"{where}.type must be one of {', '.join(_TYPES)}, got {kind!r}")
    fields = {f.name: f for f in dataclasses.fields(item_cls)}
    if item_cls is ChatMessage:
        fields["text"] = fields["content"]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        if key not in fields:
            raise ValueError(f"{where}: unknown field {key!r} for {kind}")
        expected = _FIELD_KINDS[key]
        _check_type(value, expected, f"{where}.{key}")
        kwargs[key] = float(value) if expected.startswith("float") and value is not None else value
    if item_cls is ChatMessage:
        text = kwargs.pop("text", None)
        if "content" not in kwargs and text is not None:
            kwargs["content"] = text
        if "content" not in kwargs:
            raise ValueError(f"{where}: missing field 'text' for message")
        if "role" in kwargs and kwargs["role"] not in _ROLES:
            raise ValueError(f"{where}.role must be one of {', '.join(_ROLES)}, got {kwargs['role']!r}")
    for name, f in fields.items():
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if item_cls is ChatMessage:
            has_default = name not in ("role", "content", "text")
        if name not in kwargs and name != "text" and not has_default:
            raise ValueError(f"{where}: missing field {name!r} for {kind}")
    return item_cls(**kwargs)


# --------------------------------------------------------------------------- summaries (VideoSDK's ``summarize``)


class ChatModel(Protocol):
    """What a summary needs of an LLM: ``chat(ctx)`` streaming text (``agentsession.LLM`` is one)."""

    def chat(self, ctx: ChatContext, *, tools: Sequence[Any] = ()) -> AsyncIterator[Any]: ...


SUMMARY_INSTRUCTIONS = (
    "Summarize the following conversation excerpt. Keep the key facts, names and numbers, the decisions made and "
    "why, the results of tool calls, what the assistant promised, and what the user wants, prefers or still "
    "needs. Leave out greetings and small talk. Be concise but complete. Output only the summary."
)
SUMMARY_PREFIX = "[Conversation Summary]\n"


def _is_structural(item: ChatItem) -> bool:
    if isinstance(item, AgentHandoff | AgentConfigUpdate):
        return True
    return isinstance(item, ChatMessage) and (item.role in ("system", "developer") or bool(item.extra.get("summary")))


def _render(items: list[ChatItem]) -> str:
    lines: list[str] = []
    for item in items:
        if isinstance(item, ChatMessage):
            lines.append(f"{item.role.capitalize()}: {item.text}")
        elif isinstance(item, FunctionCall):
            lines.append(f"[Tool Call: {item.name}] args={item.arguments}")
        elif isinstance(item, FunctionCallOutput):
            lines.append(f"[{'Tool Error' if item.is_error else 'Tool Result'}: {item.name}] {item.output[:200]}")
    return "\n".join(lines)


async def summarize(ctx: ChatContext, llm: ChatModel, *, keep_recent_turns: int = 3) -> ChatContext:
    """Replace the turns before the last ``keep_recent_turns`` user messages with one assistant message summing
    them up (``extra={"summary": True}``), written by ``llm``; structural items stay. In place; returns ``ctx``.
    Nothing changes when there is nothing older to sum up or the LLM answers nothing."""
    users = [i for i, item in enumerate(ctx.items) if isinstance(item, ChatMessage) and item.role == "user"]
    if keep_recent_turns < 0:
        raise ValueError(f"keep_recent_turns must be >= 0, got {keep_recent_turns}")
    if len(users) <= keep_recent_turns:
        return ctx
    split = users[-keep_recent_turns] if keep_recent_turns else len(ctx.items)
    head, recent = ctx.items[:split], ctx.items[split:]
    structural = [item for item in head if _is_structural(item)]
    text = _render([item for item in head if not _is_structural(item)])
    if not text.strip():
        return ctx
    request = ChatContext()
    request.add_message("system", SUMMARY_INSTRUCTIONS)
    request.add_message("user", text)
    summary = "".join([chunk async for chunk in llm.chat(request) if isinstance(chunk, str)]).strip()
    if not summary:
        logger.warning("the conversation summary came back empty: the history is kept as it was")
        return ctx
    ctx.items[:] = [*structural, ChatMessage("assistant", [SUMMARY_PREFIX + summary], extra={"summary": True}),
                    *recent]
    logger.info("summarized %d items of the conversation; %d items now", len(head) - len(structural), len(ctx))
    return ctx
