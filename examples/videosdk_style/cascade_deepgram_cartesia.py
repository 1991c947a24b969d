# VideoSDK's cascade_basic.py (Deepgram STT -> LLM -> Cartesia TTS) written for agentsession: only the imports
# differ, and the LLM is OpenAI's here. Keys from DEEPGRAM_API_KEY, OPENAI_API_KEY and CARTESIA_API_KEY;
# DEEPGRAM_BASE_URL, OPENAI_BASE_URL and CARTESIA_BASE_URL point the providers at a proxy or a fake server.
#
#   python examples/videosdk_style/cascade_deepgram_cartesia.py file --input in.wav --output out.wav
import asyncio

from agentsession import (
    Agent,
    AgentSession,
    CascadingPipeline,
    ConversationFlow,
    JobContext,
    RoomOptions,
    WorkerJob,
    function_tool,
)
from agentsession_cartesia import CartesiaTTS
from agentsession_deepgram import DeepgramSTT
from agentsession_openai import OpenAILLM


class MyVoiceAgent(Agent):
    def __init__(self):
        super().__init__(
            instructions="You are VideoSDK's Voice Agent. You are a helpful voice assistant that can answer "
            "questions about horoscopes and help with other tasks.",
        )

    async def on_enter(self) -> None:
        await self.session.say("Hello, how can I help you today?")

    async def on_exit(self) -> None:
        await self.session.say("Goodbye!")

    @function_tool
    async def get_horoscope(self, sign: str) -> dict:
        """Get today's horoscope for a given zodiac sign.

        Args:
            sign: The zodiac sign (e.g., Aries, Taurus, Gemini, etc.)
        """
        print("### Getting the horoscope for", sign)
        horoscopes = {
            "Aries": "Today is your lucky day!",
            "Taurus": "Focus on your goals today.",
            "Gemini": "Communication will be important today.",
        }
        return {"sign": sign, "horoscope": horoscopes.get(sign, "The stars are aligned for you today!")}


async def start_session(context: JobContext):
    agent = MyVoiceAgent()
    pipeline = CascadingPipeline(
        stt=DeepgramSTT(model="nova-2", language="en-US"),
        llm=OpenAILLM(model="gpt-4o-mini"),
        tts=CartesiaTTS(model="sonic-3.5", voice_id="f8f5f1b2-f02d-4d8e-a40d-fd850a487b3d"),
    )
    session = AgentSession(agent=agent, pipeline=pipeline, conversation_flow=ConversationFlow(agent))
    session.on("user_transcript", lambda data: data["final"] and print(f"User: {data['text']}"))
    try:
        await context.connect()
        await session.start()
        await asyncio.Event().wait()
    finally:
        await session.close()
        await context.shutdown()


def make_context() -> JobContext:
    return JobContext(room_options=RoomOptions(name="Cascade Agent", playground=True))


if __name__ == "__main__":
    WorkerJob(entrypoint=start_session, jobctx=make_context).start()
