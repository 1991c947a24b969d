"""CartesiaTTS in a cascade: the LLM's answer goes to Cartesia as it streams, and a barge-in cancels the context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from agentsession import (
    LLM,
    STT,
    Agent,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    FunctionTool,
    ToolCall,
)
from agentsession.testing import FakeTransport
from agentsession_cartesia import CartesiaTTS
from agentsession_cartesia.fake import FakeCartesiaServer


class NoSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return ""


class GatedLLM(LLM):
    """Streams the first words at once and the rest once ``more`` is set (a model still generating)."""

    def __init__(self) -> None:
        self.more = asyncio.Event()

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in ["Sure,", " here", " is"]:
            yield word
        await self.more.wait()
        yield " the rest of a long answer."


async def test_the_first_words_are_spoken_before_the_llm_is_done_and_a_barge_in_cancels_the_context(
        cartesia: FakeCartesiaServer) -> None:
    cartesia.hold_after_first_chunk = True
    llm = GatedLLM()
    session = AgentSession(Agent(instructions="You are a test agent."),
                           CascadingPipeline(stt=NoSTT(), llm=llm, tts=CartesiaTTS()))
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    try:
        await session.reply(wait_for_playback=False)
        await asyncio.wait_for(cartesia.context_opened.wait(), 5)
        (context,) = cartesia.contexts
        await asyncio.wait_for(context.audio_sent.wait(), 5)  # audio while the LLM is still generating
        assert not llm.more.is_set() and context.transcript == "Sure, here "
        await session.interrupt()
        await asyncio.wait_for(context.cancelled.wait(), 5)  # Cartesia was told to stop generating the rest
        assert not context.done and len(context.chunks) == 1
    finally:
        await session.close()
        await transport.close()
