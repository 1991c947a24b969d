"""``Agent``: what the developer writes: instructions, tools and lifecycle callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._chat import ChatContext
from ._errors import AgentSessionError
from ._mcp import MCPServer
from ._tools import FunctionTool, collect_tools

if TYPE_CHECKING:
    from ._session import AgentSession


class Agent:
    """Subclass it: give ``instructions``, add ``@function_tool`` methods, override ``on_enter``/``on_exit``."""

    def __init__(self, instructions: str, tools: Sequence[FunctionTool] = (), *, inherit_context: bool = True,
                 mcp_servers: Sequence[MCPServer] = ()) -> None:
        """``inherit_context``: when this agent takes over from another (a tool returned it), keep the
        conversation so far (default) or start from a clean history. ``mcp_servers``: MCP servers
        (``MCPServerStdio``, ``MCPServerHTTP``) started with this agent, whose tools are offered next to its own."""
        if not isinstance(instructions, str) or not instructions.strip():
            raise ValueError("Agent instructions must be a non-empty string")
        wrong = [type(s).__name__ for s in mcp_servers if not isinstance(s, MCPServer)]
        if wrong:
            raise TypeError(f"mcp_servers takes MCPServerStdio/MCPServerHTTP instances; got {', '.join(wrong)}")
        self.mcp_servers: list[MCPServer] = list(mcp_servers)
        self.instructions = instructions
        self.inherit_context = inherit_context
        self._extra_tools = list(tools)
        self._session: AgentSession | None = None

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
    def session(self) -> AgentSession:
        """The session running this agent (set by ``AgentSession``)."""
        if self._session is None:
            raise AgentSessionError(f"{type(self).__name__} is not attached to an AgentSession yet")
        return self._session

    @property
    def chat_context(self) -> ChatContext:
        """The conversation so far (the session's history)."""
        return self.session.history

    async def on_enter(self) -> None:
        """Called once the session has started (or this agent took over from another)."""

    async def on_exit(self) -> None:
        """Called when the session closes (or another agent takes over); it may still ``say()`` a goodbye."""
