"""A meeting assistant on OpenAI Realtime, with a tool, a wake-up prompt and live state monitoring.

Needs `pip install agentsession-openai` and OPENAI_API_KEY (OPENAI_BASE_URL points it at another server).

    python examples/assistant.py console                                   # microphone and speakers
    python examples/assistant.py playground                                # a local web page
    python examples/assistant.py file --input examples/hello.wav --output assistant-out.wav
    python examples/assistant.py                                           # a VideoSDK room
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from agentsession import (
    Agent,
    AgentSession,
    JobContext,
    RealTimePipeline,
    RoomOptions,
    WorkerJob,
    function_tool,
)
from agentsession_openai import OpenAIRealtime


class MyAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful meeting assistant. Keep your answers short.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self) -> None:
        print("assistant: goodbye")

    @function_tool
    async def get_weather(self, city: str, unit: Literal["c", "f"] = "c") -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: the city's name
            unit: temperature unit
        """
        return {"city": city, "temp": 21 if unit == "c" else 70, "unit": unit, "sky": "sunny"}


async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(agent=MyAgent(), pipeline=RealTimePipeline(model=OpenAIRealtime()), wake_up=10)

    async def on_wake_up() -> None:
        await session.say("Are you still there?")

    session.on_wake_up = on_wake_up
    session.on("agent_state_changed", lambda d: print(f"agent: {d['previous'].value} -> {d['state'].value}"))
    session.on("user_state_changed", lambda d: print(f"user:  {d['previous'].value} -> {d['state'].value}"))
    session.on("user_transcript", lambda d: d["final"] and print(f"user said: {d['text']}"))
    session.on("agent_transcript", lambda d: d["final"] and print(f"agent said: {d['text']}"))
    session.on("function_tool_called", lambda d: print(f"tool: {d['name']}({d['arguments']}) -> {d['result']}"))
    session.on("error", lambda d: print(f"error: {d['message']}", file=sys.stderr))
    await ctx.connect()
    await session.start()  # without OPENAI_API_KEY: "the job failed: ... set the OPENAI_API_KEY ..."
    print(f"ended: {await ctx.wait_for_shutdown()}")
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Assistant"))).start()
