# Two agents that hand the conversation over to each other, written the way VideoSDK's examples write them: a
# function tool returns the next Agent, which keeps the conversation (inherit_context=True) and greets the user
# in its on_enter. Only the imports differ (videosdk.agents -> agentsession, videosdk.plugins.openai ->
# agentsession_openai). multi_agent_switch_gemini.py runs the same agents on Gemini Live.
#
#   OPENAI_API_KEY=... python examples/videosdk_style/multi_agent_switch.py file --input in.wav --output out.wav
import asyncio

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob, function_tool
from agentsession_openai import OpenAIRealtime, OpenAIRealtimeConfig


class TravelAgent(Agent):
    def __init__(self):
        super().__init__(
            instructions="You are a travel assistant. Help with general travel questions and transfer the user "
            "to a booking specialist when they want to book something.",
        )

    async def on_enter(self) -> None:
        await self.session.reply(instructions="Greet the user and ask how you can help with their travel plans.")

    async def on_exit(self) -> None:
        await self.session.say("Let me connect you with our booking team.")

    @function_tool()
    async def transfer_to_booking(self) -> Agent:
        """Transfer the user to a booking specialist for reservations."""
        print("Transferring to the booking specialist")
        return BookingAgent(inherit_context=True)


class BookingAgent(Agent):
    def __init__(self, inherit_context: bool = False):
        super().__init__(
            instructions="You are a booking specialist. Help the user book or change flights and hotels.",
            inherit_context=inherit_context,
        )

    async def on_enter(self) -> None:
        print("BookingAgent: on_enter")
        await self.session.say("Hi, I'm the booking specialist. What would you like to book?")

    async def on_exit(self) -> None:
        await self.session.say("Your booking request is noted. Have a great trip!")

    @function_tool()
    async def book_flight(self, destination: str) -> dict:
        """Book a flight.

        Args:
            destination: Where the user flies to
        """
        return {"destination": destination, "status": "booked"}


async def entrypoint(ctx: JobContext):
    model = OpenAIRealtime(
        model="gpt-realtime-2025-08-28",
        config=OpenAIRealtimeConfig(voice="alloy", modalities=["audio"]),
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
    room_options = RoomOptions(room_id="<room_id>", name="Multi Agent Switch Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
