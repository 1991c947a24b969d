"""A cascade whose end of turn is Smart Turn's (the test's agent, run through the CLI's file mode).

The STT, LLM and TTS are stand-ins (the turn detector is what is tested): utterance n is transcribed as
"part<n>", the LLM repeats what the user said, the TTS speaks 20 ms of tone per character. Each user turn is
printed with the reason it ended. ``SILENCE_ONLY=1`` leaves the detector out, to show what it changes.

    python cascade_agent.py file --input in.wav --output out.wav
"""

from __future__ import annotations

import os
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
    ChatMessage,
    Endpointing,
    EnergyVAD,
    FunctionTool,
    JobContext,
    RoomOptions,
    ToolCall,
    WorkerJob,
)
from agentsession.testing import tone
from agentsession_turn_detector import TurnDetector, pre_download_model


class CountingSTT(STT):
    sample_rate = 16000

    def __init__(self) -> None:
        self.count = 0

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        self.count += 1
        return f"part{self.count}"


class EchoLLM(LLM):
    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        said = [i.text for i in ctx.items if isinstance(i, ChatMessage) and i.role == "user"]
        yield f"You said {said[-1]}."


class ToneTTS(TTS):
    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield tone(0.02 * len(text), self.sample_rate)


async def entrypoint(ctx: JobContext) -> None:
    # three readings: the model's one answer at the cascade's exact cut can swing with a millisecond of where it
    # falls (0.31 or 0.9+ for this recording's last sentence, by onnxruntime version; README, "Readings")
    detector = None if os.environ.get("SILENCE_ONLY") else TurnDetector(readings=3)
    pipeline = CascadingPipeline(
        stt=CountingSTT(), llm=EchoLLM(), tts=ToneTTS(), vad=EnergyVAD(min_silence=0.2), turn_detector=detector,
        endpointing=Endpointing(min_endpointing_delay=0.3, max_endpointing_delay=3.0),
    )
    session = AgentSession(agent=Agent(instructions="Repeat what the user says."), pipeline=pipeline)
    session.on("user_transcript", lambda d: d["final"] and print(f"turn: {d['text']} ({d.get('end_of_turn')})"))
    session.on("error", lambda d: print(f"error: {d['message']}"))
    await ctx.connect()
    await session.start()
    await ctx.wait_for_shutdown()
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    pre_download_model()
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Turns"))).start()
