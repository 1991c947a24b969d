"""ContextWindow (VideoSDK 1.0's): a long history summarized and truncated to a budget before the cascade's LLM
turns; ChatContext.summarize."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from agentsession import (
    LLM,
    STT,
    TTS,
    AgentHandoff,
    AgentSession,
    AudioFrame,
    ChatContext,
    ChatMessage,
    ContextWindow,
    FunctionTool,
    Pipeline,
    ToolCall,
)
from agentsession.testing import tone, virtual_clock
from core_helpers import QuietAgent


class SummarizingLLM(LLM):
    """Sums up any request whose instructions ask for a summary; else echoes the user's last message."""

    def __init__(self, summary: str = "The user asked about three cities.") -> None:
        self.summary = summary
        self.requests: list[ChatContext] = []

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        self.requests.append(ctx.copy())
        first = ctx.items[0]
        if isinstance(first, ChatMessage) and first.text.startswith("Summarize"):
            yield self.summary
            return
        last = [i for i in ctx.items if isinstance(i, ChatMessage) and i.role == "user"][-1]
        yield f"You said: {last.text}."


class NoSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return ""


class ToneTTS(TTS):
    sample_rate = 16000

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield tone(0.01, self.sample_rate)


def conversation(turns: int) -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", "You are helpful.")
    for i in range(turns):
        ctx.add_message("user", f"question {i} " + "word " * 20)
        ctx.add_message("assistant", f"answer {i} " + "word " * 20)
        if i == 0:
            ctx.add_handoff(to_agent="billing", from_agent="intake", reason="a charge")
    return ctx


async def test_summarize_sums_up_the_older_turns_and_keeps_the_structure() -> None:
    ctx, llm = conversation(4), SummarizingLLM()
    recent = ctx.items[-4:]  # the last two turns
    await ctx.summarize(llm, keep_recent_turns=2)
    (request,) = llm.requests
    asked = request.items[1].text  # type: ignore[union-attr]
    assert "User: question 0" in asked and "Assistant: answer 1" in asked and "question 2" not in asked
    system, handoff, summary, *rest = ctx.items
    assert isinstance(system, ChatMessage) and system.text == "You are helpful."
    assert isinstance(handoff, AgentHandoff) and handoff.reason == "a charge"
    assert isinstance(summary, ChatMessage) and summary.role == "assistant" and summary.extra == {"summary": True}
    assert summary.text == "[Conversation Summary]\nThe user asked about three cities."
    assert rest == recent


async def test_summarize_changes_nothing_without_older_turns_or_a_summary() -> None:
    ctx = conversation(2)
    before = list(ctx.items)
    await ctx.summarize(SummarizingLLM(), keep_recent_turns=2)
    assert ctx.items == before
    await ctx.summarize(SummarizingLLM(summary=""), keep_recent_turns=1)  # the LLM answered nothing
    assert ctx.items == before


async def test_manage_summarizes_only_over_budget_then_truncates() -> None:
    llm = SummarizingLLM()
    ctx = conversation(4)
    await ContextWindow(max_tokens=10_000, keep_recent_turns=2).manage(ctx, llm)
    assert llm.requests == [] and len(ctx) == 10  # within budget: untouched
    await ContextWindow(max_tokens=50, keep_recent_turns=4).manage(ctx, llm)
    assert llm.requests == []  # over budget, but not enough older turns to sum up: truncated only
    assert ctx.estimated_tokens() <= 50 and isinstance(ctx.items[-1], ChatMessage) and ctx.items[-1].role == "user"
    ctx = conversation(4)
    await ContextWindow(max_tokens=120, keep_recent_turns=1).manage(ctx, llm)
    assert len(llm.requests) == 1
    summaries = [i for i in ctx.items if isinstance(i, ChatMessage) and i.extra.get("summary")]
    assert len(summaries) == 1  # kept through the truncation
    assert ctx.estimated_tokens() <= 120
    assert ctx.items[0].text == "You are helpful."  # type: ignore[union-attr]


async def test_manage_uses_the_summary_llm_when_given() -> None:
    main, writer = SummarizingLLM(), SummarizingLLM(summary="Short.")
    ctx = conversation(4)
    await ContextWindow(max_context_items=6, keep_recent_turns=1, summary_llm=writer).manage(ctx, main)
    assert main.requests == [] and len(writer.requests) == 1
    assert len(ctx) <= 6


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ContextWindow(max_tokens=0)
    with pytest.raises(ValueError, match="keep_recent_turns"):
        ContextWindow(keep_recent_turns=-1)
    with pytest.raises(TypeError, match="ContextWindow"):
        Pipeline(stt=NoSTT(), llm=SummarizingLLM(), tts=ToneTTS(), context_window=500)  # type: ignore[arg-type]


@virtual_clock
async def test_the_cascade_keeps_the_history_within_the_window_before_each_llm_turn() -> None:
    llm = SummarizingLLM()
    window = ContextWindow(max_tokens=120, keep_recent_turns=1)
    agent = QuietAgent()
    session = AgentSession(agent, Pipeline(stt=NoSTT(), llm=llm, tts=ToneTTS(), context_window=window))
    await session.start()
    for i in range(4):
        await session.run(user_input=f"tell me about city number {i} " + "please " * 8)
    answers = [r for r in llm.requests if not r.items[0].text.startswith("Summarize")]  # type: ignore[union-attr]
    summaries = [r for r in llm.requests if r.items[0].text.startswith("Summarize")]  # type: ignore[union-attr]
    assert len(answers) == 4 and summaries  # the history grew over budget: summed up on the way
    last = answers[-1]
    texts = [i.text for i in last.items if isinstance(i, ChatMessage)]
    assert any(t.startswith("[Conversation Summary]") for t in texts)  # what the LLM saw: the summary...
    assert not any("city number 0" in t for t in texts)  # ...not the first turn
    assert texts[-1].startswith("tell me about city number 3")  # and the turn it answers
    assert any(i.extra.get("summary") for i in agent.chat_context.items if isinstance(i, ChatMessage))  # in place
    await session.close()
