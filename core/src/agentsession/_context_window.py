"""``ContextWindow`` (VideoSDK 1.0's): keep a long conversation's history within a budget. Before each of the
cascade's LLM turns, when the history is over budget, the older turns become one summary message (written by the
LLM) and the history is then truncated to the budget. Instructions, handoff records, config updates and earlier
summaries are kept through both."""

from __future__ import annotations

import logging

from ._chat import ChatContext, ChatModel, summarize

logger = logging.getLogger("agentsession.context")

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
        summary_llm: ChatModel | None = None,
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

    async def manage(self, ctx: ChatContext, llm: ChatModel | None) -> None:
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
