"""A cascading voice assistant on the Gemini API: GoogleSTT -> GoogleLLM (with a tool) -> GoogleTTS.
Needs GOOGLE_API_KEY (or GEMINI_API_KEY).

    python plugins/gemini/examples/google_cascade_agent.py console
    python plugins/gemini/examples/google_cascade_agent.py file --input examples/hello.wav --output google-out.wav
"""

from __future__ import annotations

from typing import Literal

from agentsession import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob, function_tool
from agentsession_gemini import GoogleLLM, GoogleSTT, GoogleTTS, GoogleVoiceConfig


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
    pipeline = CascadingPipeline(
        stt=GoogleSTT(languages="en-US"),
        llm=GoogleLLM(model="gemini-2.5-flash-lite", temperature=0.7, tool_choice="auto"),
        tts=GoogleTTS(voice_config=GoogleVoiceConfig(name="Kore")),
    )
    session = AgentSession(agent=Assistant(), pipeline=pipeline)
    session.on("user_transcript", lambda d: d["final"] and print(f"user said: {d['text']}"))
    session.on("agent_transcript", lambda d: d["final"] and print(f"agent said: {d['text']}"))
    session.on("function_tool_called", lambda d: print(f"tool: {d['name']}"))
    session.on("error", lambda d: print(f"error: {d['message']}"))
    await ctx.connect()
    await session.start()
    print(f"ended: {await ctx.wait_for_shutdown()}")
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Google"))).start()
