"""Fallback providers in a cascade: the first LLM and the first TTS are down, the backups answer. No API key.

    python examples/fallback.py file --input examples/hello.wav --output fallback-out.wav --speed max

Offline stand-ins play the providers (swap in real ones: ``FallbackLLM([OpenAILLM(), GeminiLLM()])``): the STT
hears every utterance as "What's the weather like?", the primary LLM and TTS always fail, the backups work. Each
switch is an ``error`` event (``recoverable``, ``code="fallback_switch"``, the ``component``); the user still hears
the answer. After ``temporary_disable_sec`` a failed provider is tried again; after
``permanent_disable_after_attempts`` failures in a row it is dropped for good.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from agentsession import (
    LLM,
    STT,
    TTS,
    Agent,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    FallbackLLM,
    FallbackSTT,
    FallbackTTS,
    FunctionTool,
    JobContext,
    RoomOptions,
    ToolCall,
    WorkerJob,
)
from agentsession.testing import tone


class ScriptedSTT(STT):
    provider = "scripted-stt"

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return "What's the weather like?"


class DownLLM(LLM):
    provider = "primary-llm"

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        raise ConnectionError("503 Service Unavailable")
        yield ""  # (an async generator)


class BackupLLM(LLM):
    provider = "backup-llm"

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in "It is sunny and 21 degrees. Anything else?".split(" "):
            yield word + " "


class DownTTS(TTS):
    provider = "primary-tts"

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        raise TimeoutError("no audio")
        yield AudioFrame.silence(0.02, self.sample_rate)  # (an async generator)


class BeepTTS(TTS):
    """A beep per word, at 16 kHz (the fallback resamples it to the first provider's 24 kHz)."""

    provider = "backup-tts"
    sample_rate = 16000

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        for _ in text.split():
            yield tone(0.15, self.sample_rate, 660.0)
            yield AudioFrame.silence(0.05, self.sample_rate)


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")


async def entrypoint(ctx: JobContext) -> None:
    pipeline = CascadingPipeline(
        stt=FallbackSTT([ScriptedSTT()]),
        llm=FallbackLLM([DownLLM(), BackupLLM()], temporary_disable_sec=30.0, permanent_disable_after_attempts=3),
        tts=FallbackTTS([DownTTS(), BeepTTS()], temporary_disable_sec=30.0, permanent_disable_after_attempts=3),
    )
    session = AgentSession(agent=Assistant(), pipeline=pipeline)
    session.on("user_transcript", lambda e: e["final"] and print(f"user: {e['text']}"))
    session.on("agent_transcript", lambda e: e["final"] and print(f"agent: {e['text']}"))
    session.on("error", lambda e: print(f"{e['code']} ({e.get('component')}): {e['message']}"))
    session.on("metrics_collected", lambda m: print(f"turn {m['turn']}: {m['audio_played'] or 0:.2f} s heard"))
    await ctx.connect()
    await session.start()
    print(f"ended: {await ctx.wait_for_shutdown()}")
    print(f"LLM fallback: {pipeline.llm.stats}")  # type: ignore[attr-defined]
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Fallback"))).start()
