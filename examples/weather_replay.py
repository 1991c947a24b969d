# A weather agent on OpenAI Realtime (WEATHER_MODEL=gemini: Gemini Live; WEATHER_MODEL=cascade: OpenAI's
# transcription, chat completions and speech), to record once and replay as a regression test
# (docs/testing-your-agent.md).
#
#   record:  AGENTSESSION_RECORD=1 OPENAI_API_KEY=... python examples/weather_replay.py file --input in.wav
#   replay:  python examples/weather_replay.py replay recordings/<name>.cassette --speed max
#
# WEATHER_FAKES=1 serves the scripted fakes (`agentsession fakes openai`/`gemini`) inside this process, so the whole
# thing runs offline, at --speed max too. WEATHER_TEMP and WEATHER_INSTRUCTIONS change what the agent sends: a
# replay then reports the change and exits 1.
from __future__ import annotations

import os

from agentsession import (
    Agent,
    AgentSession,
    CascadingPipeline,
    JobContext,
    Pipeline,
    RealTimePipeline,
    WorkerJob,
    function_tool,
)


@function_tool
async def get_weather(city: str) -> dict[str, object]:
    """The weather in a city.

    Args:
        city: The name of the city
    """
    return {"city": city, "temperature": int(os.environ.get("WEATHER_TEMP", "18")), "sky": "cloudy"}


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=os.environ.get("WEATHER_INSTRUCTIONS", "You tell the weather, briefly."),
                         tools=[get_weather])

    async def on_enter(self) -> None:
        await self.session.say("Hi! Ask me about the weather.")


def pipeline(kind: str) -> Pipeline:
    if kind == "gemini":
        from agentsession_gemini import GeminiRealtime

        return RealTimePipeline(GeminiRealtime())
    if kind == "cascade":
        from agentsession_openai import OpenAILLM, OpenAISTT, OpenAITTS

        return CascadingPipeline(stt=OpenAISTT(), llm=OpenAILLM(), tts=OpenAITTS())
    from agentsession_openai import OpenAIRealtime

    return RealTimePipeline(OpenAIRealtime())


async def entrypoint(ctx: JobContext) -> None:
    kind = os.environ.get("WEATHER_MODEL", "openai")
    gemini = kind == "gemini"
    if os.environ.get("WEATHER_FAKES") == "1":
        if gemini:
            from agentsession_gemini.fake import GeminiFakes as Fakes
        else:
            from agentsession_openai.fake.service import OpenAIFakes as Fakes
        fakes = Fakes()
        fakes.heard = "What is the weather in Paris? get_weather"
        fakes.reply_audio = float(os.environ.get("WEATHER_FAKES_AUDIO", "1"))  # seconds of each spoken answer
        os.environ.update(await fakes.start())
        ctx.add_shutdown_callback(fakes.stop)
    session = AgentSession(WeatherAgent(), pipeline(kind))
    await session.start(wait_for_participant=True, run_until_shutdown=True)


if __name__ == "__main__":
    WorkerJob(entrypoint).start()
