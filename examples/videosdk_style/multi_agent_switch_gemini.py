# The agents of multi_agent_switch.py on Gemini Live, configured the way VideoSDK's examples configure it. Only the
# imports differ (videosdk.agents -> agentsession, videosdk.plugins.google -> agentsession_gemini).
#
#   GOOGLE_API_KEY=... python examples/videosdk_style/multi_agent_switch_gemini.py file --input in.wav --output out.wav
import asyncio

from multi_agent_switch import TravelAgent

from agentsession import AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob
from agentsession_gemini import GeminiLiveConfig, GeminiRealtime


async def entrypoint(ctx: JobContext):
    model = GeminiRealtime(
        model="gemini-2.0-flash-live-001",
        config=GeminiLiveConfig(
            voice="Leda",  # Puck, Charon, Kore, Fenrir, Aoede, Leda, Orus, and Zephyr.
            response_modalities=["AUDIO"],
        ),
    )
    pipeline = RealTimePipeline(model=model)
    session = AgentSession(agent=TravelAgent(), pipeline=pipeline)

    try:
        await ctx.connect()
        await session.start()
        await asyncio.Event().wait()
    finally:
        await session.close()
        await ctx.shutdown()


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Multi Agent Switch Agent (Gemini)", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
