"""``Agent``: what the developer writes: instructions, tools and lifecycle callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._chat import ChatContext
from ._errors import AgentSessionError
from ._tools import FunctionTool, collect_tools

if TYPE_CHECKING:
    from ._session import AgentSession


class Agent:
    """Subclass it: give ``instructions``, add ``@function_tool`` methods, override ``on_enter``/``on_exit``."""

    def __init__(
        self,
        instructions: str,
        tools: Sequence[FunctionTool] | None = (),
        *,
        inherit_context: bool = False,
        chat_context: ChatContext | None = None,
        agent_id: str | None = None,
    ) -> None:
        """``inherit_context``: when this agent takes over from another (a tool returned it), keep the
        conversation so far, or (default, as VideoSDK) start from a clean history. ``chat_context``: items
        the conversation starts with (earlier turns, say); they join the session's history when this agent
        is attached to it (at ``start()``, or when it takes over). ``agent_id``: this agent's id (``self.id``;
        default: a new one), what ``ChatContext`` items' ``agent_id`` and ``copy(filter_agent_id=)`` refer to."""
        if not isinstance(instructions, str) or not instructions.strip():
            raise ValueError("Agent instructions must be a non-empty string")
        if chat_context is not None and not isinstance(chat_context, ChatContext):
            raise TypeError(f"chat_context must be a ChatContext, got {type(chat_context).__name__}")
        self.instructions = instructions
        self.inherit_context = inherit_context
        self.id = agent_id or str(uuid.uuid4())
        self._extra_tools = list(tools or ())
        self._own_context = chat_context if chat_context is not None else ChatContext()
        self._attached_to: AgentSession | None = None

    @property
    def tools(self) -> list[FunctionTool]:
        """The ``@function_tool`` methods of this agent (bound) and the tools passed in."""
        tools = collect_tools(self) + self._extra_tools
        names = [t.name for t in tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate tool names on {type(self).__name__}: {', '.join(duplicates)}")
        return tools

    @property
    def _session(self) -> AgentSession | None:
        return self._attached_to

    @_session.setter
    def _session(self, session: AgentSession | None) -> None:
        """The session attaches itself here: what this agent's own context holds joins its history."""
        self._attached_to = session
        if session is not None and self._own_context.items:
            known = {item.id for item in session.history.items}
            session.history.items.extend(i for i in self._own_context.items if i.id not in known)
            self._own_context = ChatContext()

    @property
    def session(self) -> AgentSession:
        """The session running this agent (set by ``AgentSession``)."""
        if self._attached_to is None:
            raise AgentSessionError(f"{type(self).__name__} is not attached to an AgentSession yet")
        return self._attached_to

    @property
    def chat_context(self) -> ChatContext:
        """The conversation: the session's history once this agent runs, before that the agent's own
        (``Agent(chat_context=...)``, or what was added to it), which joins the history at attachment."""
        return self._own_context if self._attached_to is None else self._attached_to.history

    @chat_context.setter
    def chat_context(self, context: ChatContext) -> None:
        if not isinstance(context, ChatContext):
            raise TypeError(f"chat_context must be a ChatContext, got {type(context).__name__}")
        if self._attached_to is None:
            self._own_context = context
        elif context is not self._attached_to.history:
            self._attached_to.history.items[:] = list(context.items)

    async def on_enter(self) -> None:
        """Called once the session has started (or this agent took over from another)."""

    async def on_exit(self) -> None:
        """Called when the session closes (or another agent takes over); it may still ``say()`` a goodbye."""
