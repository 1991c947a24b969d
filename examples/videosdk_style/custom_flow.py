# A cascading agent with its own ConversationFlow, written the way VideoSDK's examples write one: ``run(transcript)``
# is overridden to clean up the user's text before the LLM sees it and to fix the pronunciation of technical terms
# in what goes to the TTS; ``on_turn_start``/``on_turn_end`` track the turn. Only the imports differ
# (videosdk.agents -> agentsession, videosdk.plugins.openai -> agentsession_openai).
#
#   OPENAI_API_KEY=... python examples/videosdk_style/custom_flow.py file --input in.wav --output out.wav
import asyncio
import os
import re
from collections.abc import AsyncIterator

from agentsession import (
    Agent,
    AgentSession,
    CascadingPipeline,
    ChatRole,
    ConversationFlow,
    JobContext,
    RoomOptions,
    WorkerJob,
)
from agentsession_openai import OpenAILLM, OpenAISTT, OpenAITTS


class VoiceAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful voice assistant that answers questions about technology.")

    async def on_enter(self) -> None:
        await self.session.say("Hello, ask me anything about technology.")

    async def on_exit(self) -> None:
        await self.session.say("Goodbye!")


class PronunciationFlow(ConversationFlow):
    def __init__(self, agent, stt=None, llm=None, tts=None):
        super().__init__(agent, stt, llm, tts)
        self.is_turn_active = False
        self.turns = 0
        self.pronunciation_map = {
            "nginx": "engine x",
            "API": "A P I",
            "SQL": "sequel",
            "VideoSDK": "Video SDK",
        }

    def pronounce_text(self, text: str) -> str:
        for word, pronunciation in self.pronunciation_map.items():
            text = re.sub(rf"\b{word}\b", pronunciation, text, flags=re.IGNORECASE)
        return text

    async def run(self, transcript: str) -> AsyncIterator[str]:
        """Handle one user turn: preprocess the transcript, then post-process the LLM's answer."""
        processed_transcript = transcript.lower().strip().rstrip("?!.")
        self.agent.chat_context.add_message(role=ChatRole.USER, content=processed_transcript)

        async for response_chunk in self.process_with_llm():
            yield self.pronounce_text(response_chunk)

    async def on_turn_start(self, transcript: str) -> None:
        self.is_turn_active = True
        self.turns += 1
        print(f"Turn {self.turns} started: {transcript}")

    async def on_turn_end(self) -> None:
        self.is_turn_active = False
        print(f"Turn {self.turns} ended")


async def entrypoint(ctx: JobContext):
    agent = VoiceAgent()
    conversation_flow = PronunciationFlow(agent)

    pipeline = CascadingPipeline(
        stt=OpenAISTT(api_key=os.getenv("OPENAI_API_KEY")),
        llm=OpenAILLM(api_key=os.getenv("OPENAI_API_KEY")),
        tts=OpenAITTS(api_key=os.getenv("OPENAI_API_KEY")),
    )
    session = AgentSession(
        agent=agent,
        pipeline=pipeline,
        conversation_flow=conversation_flow,
    )

    try:
        await ctx.connect()
        await session.start()
        await asyncio.Event().wait()
    except KeyboardInterrupt:
        print("\nShutting down gracefully...")
    finally:
        await session.close()
        await ctx.shutdown()


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Pronunciation Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
