"""A voice assistant on Gemini Live. Needs GOOGLE_API_KEY (or GEMINI_API_KEY).

    python plugins/gemini/examples/gemini_agent.py console
    python plugins/gemini/examples/gemini_agent.py file --input examples/hello.wav --output gemini-out.wav
"""

from __future__ import annotations

from typing import Literal

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob, function_tool
from agentsession_gemini import GeminiRealtime


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a friendly, brief voice assistant.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! How can I help you today?")

    @function_tool
    async def get_weather(self, city: str, unit: Literal["c", "f"] = "c") -> dict[str, object]:
        """Current weather for a city.

        Args:
            city: the city's name
            unit: temperature unit
        """
        return {"city": city, "temp": 21 if unit == "c" else 70, "unit": unit}


async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(agent=Assistant(), pipeline=RealTimePipeline(model=GeminiRealtime()))
    session.on("agent_state_changed", lambda d: print(f"agent: {d['previous'].value} -> {d['state'].value}"))
    session.on("user_transcript", lambda d: d["final"] and print(f"user said: {d['text']}"))
    session.on("agent_transcript", lambda d: d["final"] and print(f"agent said: {d['text']}"))
    session.on("error", lambda d: print(f"error: {d['message']}"))
    await ctx.connect()
    await session.start()
    print(f"ended: {await ctx.wait_for_shutdown()}")
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Gemini"))).start()
