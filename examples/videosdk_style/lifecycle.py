# Session lifecycle management as VideoSDK's documentation writes it: connect, start, keep the session running until
# the room (here: the input file) ends or Ctrl-C, then close the session (on_exit says goodbye) and shut the job down
# (shutdown callbacks run). State changes are printed as they happen. Only the imports differ (videosdk.agents ->
# agentsession, videosdk.plugins.openai -> agentsession_openai).
#
#   OPENAI_API_KEY=... python examples/videosdk_style/lifecycle.py file --input in.wav --output out.wav
import asyncio

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob
from agentsession_openai import OpenAIRealtime, OpenAIRealtimeConfig


class MyVoiceAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful voice assistant. Keep your answers short.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self) -> None:
        print("Agent is leaving: saying goodbye")
        await self.session.say("Goodbye, talk to you soon!")


async def entrypoint(ctx: JobContext):
    model = OpenAIRealtime(
        model="gpt-4o-realtime-preview",
        config=OpenAIRealtimeConfig(voice="alloy", modalities=["text", "audio"]),
    )
    pipeline = RealTimePipeline(model=model)
    session = AgentSession(agent=MyVoiceAgent(), pipeline=pipeline)

    def on_user_state_changed(data):
        print(f"User state changed to: {data['state']}")

    def on_agent_state_changed(data):
        print(f"Agent state changed to: {data['state']}")

    session.on("user_state_changed", on_user_state_changed)
    session.on("agent_state_changed", on_agent_state_changed)

    async def cleanup():
        print("Shutdown callback: cleaning up")

    ctx.add_shutdown_callback(cleanup)

    try:
        await ctx.connect()
        await session.start()
        # Keep the session running until manually terminated
        await asyncio.Event().wait()
    finally:
        # Clean up resources when done
        await session.close()
        await ctx.shutdown()


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Lifecycle Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=make_context).start()
