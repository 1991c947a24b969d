# A realtime agent with function tools, written the way VideoSDK's documentation writes one: only the imports
# differ (videosdk.agents -> agentsession, videosdk.plugins.openai -> agentsession_openai).
#
#   OPENAI_API_KEY=... python examples/videosdk_style/realtime_tools.py file --input in.wav --output out.wav
#   OPENAI_API_KEY=... python examples/videosdk_style/realtime_tools.py console
import asyncio

from openai.types.beta.realtime.session import TurnDetection

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob, function_tool
from agentsession_openai import OpenAIRealtime, OpenAIRealtimeConfig


@function_tool
async def get_weather(city: str):
    """Called when the user asks about the weather in a city.

    Args:
        city: The name of the city
    """
    print(f"### Getting weather for {city}")
    return {"city": city, "temperature": 18, "temperature_unit": "Celsius", "sky": "cloudy"}


class WeatherAgent(Agent):
    def __init__(self):
        super().__init__(
            instructions="You are a friendly voice assistant. You can tell the weather and today's horoscope.",
            tools=[get_weather],
        )

    async def on_enter(self) -> None:
        await self.session.say("Hi there! Ask me about the weather or your horoscope.")

    async def on_exit(self) -> None:
        await self.session.say("Goodbye, have a nice day!")

    @function_tool
    async def get_horoscope(self, sign: str) -> dict:
        """Today's horoscope for a zodiac sign.

        Args:
            sign: The zodiac sign, e.g. Aries or Leo
        """
        print(f"### Horoscope for {sign}")
        return {"sign": sign, "horoscope": "A good day to start something new."}

    @function_tool
    async def end_call(self) -> None:
        """End the call when the user asks to hang up."""
        print("### Ending the call")
        await self.session.say("Thanks for calling.")
        await asyncio.sleep(1)
        await self.session.leave()


async def start_session(context: JobContext):
    model = OpenAIRealtime(
        model="gpt-realtime-2025-08-28",
        config=OpenAIRealtimeConfig(
            voice="alloy",
            modalities=["audio"],
            turn_detection=TurnDetection(
                type="server_vad",
                threshold=0.5,
                prefix_padding_ms=300,
                silence_duration_ms=400,
            ),
            tool_choice="auto",
        ),
    )
    pipeline = RealTimePipeline(model=model)
    session = AgentSession(agent=WeatherAgent(), pipeline=pipeline)

    try:
        await context.connect()
        await session.start()
        # Keep the session running until manually terminated
        await asyncio.Event().wait()
    finally:
        # Clean up resources when done
        await session.close()
        await context.shutdown()


def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Weather Agent", playground=True)
    return JobContext(room_options=room_options)


if __name__ == "__main__":
    job = WorkerJob(entrypoint=start_session, jobctx=make_context)
    job.start()
