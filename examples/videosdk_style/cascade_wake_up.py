# A cascading (STT -> LLM -> TTS) agent that wakes a quiet user up, written the way VideoSDK's documentation
# writes one: only the imports differ (videosdk.agents -> agentsession, videosdk.plugins.openai -> agentsession_openai).
#
#   OPENAI_API_KEY=... python examples/videosdk_style/cascade_wake_up.py file --input in.wav --output out.wav
import asyncio
import os

from agentsession import (
    Agent,
    AgentSession,
    CascadingPipeline,
    ConversationFlow,
    JobContext,
    RoomOptions,
    WorkerJob,
)
from agentsession_openai import OpenAILLM, OpenAISTT, OpenAITTS


class VoiceAgent(Agent):
    def __init__(self):
        super().__init__(
            instructions="You are a helpful voice assistant that can answer questions and help with tasks.",
        )

    async def on_enter(self) -> None:
        await self.session.say("Hello, how can I help you today?")

    async def on_exit(self) -> None:
        await self.session.say("Goodbye!")


async def entrypoint(ctx: JobContext):
    agent = VoiceAgent()
    conversation_flow = ConversationFlow(agent)

    pipeline = CascadingPipeline(
        stt=OpenAISTT(api_key=os.getenv("OPENAI_API_KEY"), model="whisper-1", language="en"),
        llm=OpenAILLM(
            api_key=os.getenv("OPENAI_API_KEY"),
            model="gpt-4o",
            temperature=0.7,
            tool_choice="auto",
            max_completion_tokens=1000,
        ),
        tts=OpenAITTS(
            api_key=os.getenv("OPENAI_API_KEY"),
            model="tts-1",
            voice="alloy",
            speed=1.0,
            response_format="pcm",
        ),
    )
    session = AgentSession(
        agent=agent,
        pipeline=pipeline,
        conversation_flow=conversation_flow,
        wake_up=3,
    )

    async def on_wake_up():
        print("Wake up: the user has been quiet")
        await session.say("Are you still there?")

    session.on_wake_up = on_wake_up

    try:
        await ctx.connect()
        print("Waiting for participant...")
        await ctx.room.wait_for_participant()
        print("Participant joined")
        await session.start()
        await asyncio.Event().wait()
    except KeyboardInterrupt:
        print("\nShutting down gracefully...")
    finally:
        await session.close()
        await ctx.shutdown()


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Wake-up Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
