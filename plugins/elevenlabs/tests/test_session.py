"""ElevenLabsTTS in a session's cascade, against the fake service: an answer interrupted mid-sentence is cut in the
history at the words ElevenLabs' timings say were heard, and its context is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np

from agentsession import (
    LLM,
    STT,
    Agent,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    ChatMessage,
    FunctionTool,
    ToolCall,
)
from agentsession.testing import FakeTransport
from agentsession_elevenlabs import ElevenLabsTTS
from agentsession_elevenlabs.fake import API_KEY, FakeElevenLabs

ANSWER = "Unquestionably, meteorologically speaking, it is a fine day to go out and see it all as it is."


class Answering(LLM):
    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in ANSWER.split(" "):
            yield word + " "


class Deaf(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return ""


class Listening(FakeTransport):
    """Sets ``heard`` once ``seconds`` of the agent's audio have been played."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.heard = asyncio.Event()
        self._seconds = seconds

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        super().on_output(samples, real, at)
        if len(self.output) >= self._seconds * self.sample_rate:
            self.heard.set()


async def test_an_interruption_cuts_the_history_at_the_words_heard(elevenlabs_server: FakeElevenLabs) -> None:
    elevenlabs_server.seconds_per_word = 0.15  # long and short words alike: their share of the text is not their time
    transport = Listening(0.5)
    await transport.start()
    tts = ElevenLabsTTS(api_key=API_KEY)
    session = AgentSession(Agent(instructions="Be brief."), CascadingPipeline(stt=Deaf(), llm=Answering(), tts=tts))
    await session.start(transport=transport)
    await session.reply(wait_for_playback=False)
    await asyncio.wait_for(transport.heard.wait(), 10)
    await session.interrupt()
    (item,) = [i for i in session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
    heard = item.audio_duration or 0.0
    words = ANSWER.split(" ")
    assert item.interrupted and 0.5 <= heard < 0.15 * len(words)
    # word i (and the space after it) is spoken from 0.15 i to 0.15 (i + 1) seconds
    expected = " ".join(words[: int((heard + 1e-6) // 0.15)])
    assert item.text == expected and ANSWER.startswith(item.text) and item.text
    await session.close()
    await transport.close()
    (context,) = elevenlabs_server.contexts.values()
    assert context.closed  # the barge-in closed it
