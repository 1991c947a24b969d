"""A cascade that speaks with ElevenLabs: OpenAI transcribes and answers (with a tool), ElevenLabs speaks the
answer as it streams in.

Needs `pip install agentsession-elevenlabs agentsession-openai`, ELEVENLABS_API_KEY and OPENAI_API_KEY
(ELEVENLABS_BASE_URL / OPENAI_BASE_URL point them at other servers).

    python plugins/elevenlabs/examples/elevenlabs_agent.py file --input in.wav --output out.wav
    python plugins/elevenlabs/examples/elevenlabs_agent.py console
"""

from __future__ import annotations

from typing import Any

from agentsession import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob, function_tool
from agentsession_elevenlabs import ElevenLabsTTS, VoiceSettings
from agentsession_openai import OpenAILLM, OpenAISTT


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a friendly weather assistant on a phone call. Answer in one or two "
                                      "short sentences.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! Ask me about the weather.")

    @function_tool
    async def get_weather(self, city: str) -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: the city's name
        """
        return {"city": city, "temp": 21, "sky": "sunny"}


async def entrypoint(ctx: JobContext) -> None:
    pipeline = CascadingPipeline(
        stt=OpenAISTT(model="whisper-1", language="en"),
        llm=OpenAILLM(model="gpt-4o-mini"),
        tts=ElevenLabsTTS(model="eleven_flash_v2_5", voice="ErXwobaYiN019PkySvjV", speed=1.0,
                          voice_settings=VoiceSettings(stability=0.6, similarity_boost=0.75)),
    )
    session = AgentSession(agent=WeatherAgent(), pipeline=pipeline)
    session.on("user_transcript", lambda d: d["final"] and print(f"user said: {d['text']}"))
    session.on("agent_transcript", lambda d: d["final"] and print(f"agent said: {d['text']}"))
    session.on("function_tool_called", lambda d: print(f"tool: {d['name']}({d['arguments']})"))
    await ctx.connect()
    await session.start()
    await ctx.wait_for_shutdown()
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="ElevenLabs"))).start()
