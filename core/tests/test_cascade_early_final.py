"""The cascade with a streaming STT that ends utterances itself (Deepgram's endpointing), sooner than the cascade's
VAD hears the silence: the turn still ends, from where the VAD heard the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from agentsession import (
    LLM,
    STT,
    TTS,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    FunctionTool,
    SpeechEvent,
    SpeechStream,
    ToolCall,
)
from agentsession.testing import FakeTransport, tone, virtual_clock
from core_helpers import QuietAgent, settle


class SentenceTTS(TTS):
    sample_rate = 16000

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield tone(0.1, self.sample_rate)


class SlowLLM(LLM):
    """Streams one word per 0.2 s (loop time)."""

    def __init__(self, words: list[str]) -> None:
        self.words = words

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in self.words:
            await asyncio.sleep(0.2)
            yield word


def utterance(seconds: float) -> AudioFrame:
    silence = np.zeros((int(0.3 * 16000), 1), np.int16)
    return AudioFrame(np.concatenate([silence, tone(seconds, 16000, 300).data, silence, silence, silence]), 16000)


class EarlySTT(STT):
    """A streaming STT that ends utterances itself: the final comes 0.1 s into the silence after a speech (before the
    cascade's VAD, 0.5 s, hears the end), with a speech start first."""

    streaming = True

    def __init__(self, text: str) -> None:
        self.text = text

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise AssertionError("streaming")

    def stream(self, *, language: str | None = None) -> SpeechStream:
        stt = self

        class Stream(SpeechStream):
            def __init__(self) -> None:
                super().__init__()
                self.loud = 0.0
                self.quiet = 0.0
                self.count = 0

            def push_audio(self, frame: AudioFrame) -> None:
                if np.abs(frame.data).max() > 1000:
                    if self.loud == 0.0:
                        self.count += 1
                        self._emit(SpeechEvent("speech_started", utterance_id=f"u{self.count}", position=0.0))
                    self.loud += frame.duration
                    self.quiet = 0.0
                elif self.loud:
                    self.quiet += frame.duration
                    if self.quiet >= 0.1:
                        self.loud = 0.0
                        self._emit(SpeechEvent("final", stt.text, f"u{self.count}"))

            def flush(self) -> None:
                raise AssertionError("this STT ends its utterances itself")

            def end_input(self) -> None:
                self._finish()

        return Stream()


@virtual_clock
async def test_a_final_that_comes_before_the_vad_hears_the_end_still_ends_the_turn() -> None:
    llm = SlowLLM(["Sure."])
    asked: list[float] = []
    original = llm.chat

    def chat(ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        asked.append(asyncio.get_running_loop().time())
        return original(ctx, tools=tools)

    llm.chat = chat  # type: ignore[method-assign]
    session = AgentSession(QuietAgent(), CascadingPipeline(stt=EarlySTT("Hello there."), llm=llm, tts=SentenceTTS()))
    heard: list[dict] = []
    session.on("user_transcript", heard.append)
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))  # 0.3 s silence, 1 s speech, 0.9 s silence
    await settle(2)
    assert [(h["text"], h["end_of_turn"]) for h in heard if h["final"]] == [("Hello there.", "silence")]
    # the VAD heard the end 0.5 s after the speech; the turn ended min_endpointing_delay (0.5 s) later
    assert len(asked) == 1 and asked[0] == pytest.approx(0.3 + 1.0 + 0.5 + 0.5, abs=0.1)
    await session.close()
    await transport.close()
