"""``ContextWindow`` (VideoSDK 1.0's): keep a long conversation's history within a budget. Before each of the
cascade's LLM turns, when the history is over budget, the older turns become one summary message (written by the
LLM) and the history is then truncated to the budget. Instructions, handoff records, config updates and earlier
summaries are kept through both."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._chat import AgentConfigUpdate, AgentHandoff, ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput

if TYPE_CHECKING:
    from ._models import LLM

logger = logging.getLogger("agentsession.context")

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


async def summarize(ctx: ChatContext, llm: LLM, *, keep_recent_turns: int = 3) -> ChatContext:
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


class ContextWindow:
    """The history's budget (VideoSDK's ``ContextWindow``), given as ``Pipeline(context_window=...)``.

    ``max_tokens`` (estimated, ``ChatContext.estimated_tokens()``) and ``max_context_items``: over either, and with
    more than ``keep_recent_turns + 1`` user turns, the older turns are summarized (by ``summary_llm``, else the
    pipeline's LLM); the history is then truncated to both. ``max_tool_calls_per_turn`` is accepted for
    VideoSDK's code and not used.
    """

    def __init__(
        self,
        *,
        max_tokens: int | None = None,
        max_context_items: int | None = None,
        keep_recent_turns: int = 3,
        max_tool_calls_per_turn: int = 10,
        summary_llm: LLM | None = None,
    ) -> None:
        for name, value in (("max_tokens", max_tokens), ("max_context_items", max_context_items)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"ContextWindow({name}=...) must be a positive integer, got {value!r}")
        if isinstance(keep_recent_turns, bool) or not isinstance(keep_recent_turns, int) or keep_recent_turns < 0:
            raise ValueError(f"ContextWindow(keep_recent_turns=...) must be an integer >= 0, got {keep_recent_turns!r}")
        self.max_tokens = max_tokens
        self.max_context_items = max_context_items
        self.keep_recent_turns = keep_recent_turns
        self.max_tool_calls_per_turn = max_tool_calls_per_turn
        self.summary_llm = summary_llm

    def over_budget(self, ctx: ChatContext) -> bool:
        return (self.max_tokens is not None and ctx.estimated_tokens() > self.max_tokens) or (
            self.max_context_items is not None and len(ctx) > self.max_context_items)

    async def manage(self, ctx: ChatContext, llm: LLM | None) -> None:
        """Summarize the older turns when over budget, then truncate to the budget (in place). A failed
        summary is logged and the truncation still happens."""
        if self.over_budget(ctx) and ctx.turn_count() > self.keep_recent_turns + 1:
            writer = self.summary_llm or llm
            if writer is None:
                logger.warning("the history is over budget and there is no LLM to summarize it: truncating only")
            else:
                try:
                    await summarize(ctx, writer, keep_recent_turns=self.keep_recent_turns)
                except Exception:
                    logger.exception("summarizing the conversation failed: truncating only")
        if self.max_tokens is not None or self.max_context_items is not None:
            before = len(ctx)
            ctx.truncate(max_items=self.max_context_items, max_tokens=self.max_tokens)
            if len(ctx) < before:
                logger.info("truncated the history from %d to %d items", before, len(ctx))

    def __repr__(self) -> str:
        return (f"ContextWindow(max_tokens={self.max_tokens}, max_context_items={self.max_context_items}, "
                f"keep_recent_turns={self.keep_recent_turns})")
