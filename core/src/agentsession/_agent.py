"""``Agent``: what the developer writes: instructions, tools and lifecycle callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ._background_audio import BackgroundAudioHandlerConfig
from ._chat import ChatContext
from ._errors import AgentSessionError
from ._mcp import MCPServer
from ._ports import SessionView
from ._tools import FunctionTool, HandoffTarget, collect_tools


class Agent(HandoffTarget):
    """Subclass it: give ``instructions``, add ``@function_tool`` methods, override ``on_enter``/``on_exit``."""

    def __init__(self, instructions: str, tools: Sequence[FunctionTool] | None = None, agent_id: str | None = None,
                 mcp_servers: Sequence[MCPServer] | None = None, *, inherit_context: bool = False,
                 chat_context: ChatContext | None = None) -> None:
        """``tools``: function tools besides the ``@function_tool`` methods; ``agent_id``: this agent's id
        (``self.id``; default: a new one), what ``ChatContext`` items' ``agent_id`` and ``copy(filter_agent_id=)``
        refer to; ``mcp_servers``: MCP servers (``MCPServerStdio``, ``MCPServerHTTP``) started with this agent,
        whose tools are offered next to its own; ``inherit_context``: when this agent takes over from another (a
        tool returned it), keep the conversation so far, or (default, as VideoSDK) start from a clean history;
        ``chat_context``: items the conversation starts with (earlier turns, say); they join the session's history
        when this agent is attached to it (at ``start()``, or when it takes over)."""
        if not isinstance(instructions, str) or not instructions.strip():
            raise ValueError("Agent instructions must be a non-empty string")
        if chat_context is not None and not isinstance(chat_context, ChatContext):
            raise TypeError(f"chat_context must be a ChatContext, got {type(chat_context).__name__}")
        mcp_servers = mcp_servers or ()
        wrong = [type(s).__name__ for s in mcp_servers if not isinstance(s, MCPServer)]
        if wrong:
            raise TypeError(f"mcp_servers takes MCPServerStdio/MCPServerHTTP instances; got {', '.join(wrong)}")
        self.mcp_servers: list[MCPServer] = list(mcp_servers)
        self.instructions = instructions
        self.inherit_context = inherit_context
        self.thinking_audio: BackgroundAudioHandlerConfig | None = None  # ``set_thinking_audio``
        self.id = agent_id or str(uuid.uuid4())
        self._extra_tools = _checked_tools(tools or ())
        self._own_context = chat_context if chat_context is not None else ChatContext()
        self._attached_to: SessionView | None = None

    @property
    def tools(self) -> list[FunctionTool]:
        """The ``@function_tool`` methods of this agent (bound) and the tools passed in."""
        tools = collect_tools(self) + self._extra_tools
        names = [t.name for t in tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate tool names on {type(self).__name__}: {', '.join(duplicates)}")
        return tools

    def update_tools(self, tools: Sequence[FunctionTool]) -> None:
        """Replace the tools passed in (the ``@function_tool`` methods stay); a running session tells its model."""
        self._extra_tools = _checked_tools(tools)
        self.tools  # noqa: B018 - refuses duplicate names now, not at the model
        if self._session is not None:
            self._session.sync_agent()

    def register_tools(self) -> None:
        """Check the tools (VideoSDK's name): a tool that is not a ``FunctionTool`` is a ``ValueError``."""
        _checked_tools(self._extra_tools)

    def set_thinking_audio(self, file: str | None = None, volume: float = 0.3) -> None:
        """Play ``file`` (default: a built-in sound of soft key clicks), looping, while this agent is thinking
        (its turn is over and its answer has not started); it stops the moment the answer plays."""
        self.thinking_audio = BackgroundAudioHandlerConfig(file_path=file, volume=volume, looping=True)

    async def play_background_audio(self, file: str | None = None, volume: float = 1.0, looping: bool = False,
                                    override_thinking: bool = True) -> None:
        """Play ``file`` (default: a built-in room noise) under the agent's voice, ducked while it speaks;
        ``override_thinking=False`` keeps the thinking sound quiet while it plays."""
        config = BackgroundAudioHandlerConfig(file_path=file, volume=volume, looping=looping)
        await self.session.play_background_audio(config, override_thinking)

    async def stop_background_audio(self) -> None:
        await self.session.stop_background_audio()

    async def hangup(self) -> None:
        """End the call once what is being said has been played (``session.hangup()``)."""
        await self.session.hangup("manual_hangup")

    @property
    def _session(self) -> SessionView | None:
        return self._attached_to

    @_session.setter
    def _session(self, session: SessionView | None) -> None:
        """The session attaches itself here: what this agent's own context holds joins its history."""
        self._attached_to = session
        if session is not None and self._own_context.items:
            known = {item.id for item in session.history.items}
            session.history.items.extend(i for i in self._own_context.items if i.id not in known)
            self._own_context = ChatContext()

    @property
    def session(self) -> SessionView:
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


def _checked_tools(tools: Sequence[FunctionTool]) -> list[FunctionTool]:
    bad = [t for t in tools if not isinstance(t, FunctionTool)]
    if bad:
        name = getattr(bad[0], "__name__", type(bad[0]).__name__)
        raise ValueError(f"{name} is not a FunctionTool: decorate it with @function_tool")
    return list(tools)
