# "Basic usage" of VideoSDK's AgentSession documentation: the entrypoint connects, starts the session and returns;
# the session runs until it is stopped or the meeting (here: the input file) ends. Only the imports differ
# (videosdk.agents -> agentsession, videosdk.plugins.openai -> agentsession_openai).
#
#   OPENAI_API_KEY=... python examples/videosdk_style/basic_usage.py file --input in.wav --output out.wav
from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob
from agentsession_openai import OpenAIRealtime


class MyVoiceAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful voice assistant.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self) -> None:
        await self.session.say("Goodbye!")


async def entrypoint(ctx: JobContext):
    agent = MyVoiceAgent()
    pipeline = RealTimePipeline(model=OpenAIRealtime(model="gpt-4o-realtime-preview"))
    session = AgentSession(agent=agent, pipeline=pipeline)

    session.on("agent_state_changed", lambda data: print(f"Agent state changed to: {data['state']}"))

    await ctx.connect()
    await session.start()
    # Session runs until manually stopped or meeting ends


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Basic Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=make_context).start()
