import os
from agentsession import Agent, AgentSession, Pipeline, WorkerJob, JobContext, RoomOptions
from agentsession.plugins import GoogleSTT, SileroVAD, TurnDetector, pre_download_model, AnthropicLLM, GoogleTTS
import logging
logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s", handlers=[logging.StreamHandler()])

pre_download_model()
class VoiceAgent(Agent):
    def __init__(self):
        super().__init__(
            instructions="You are a helpful voice assistant that can answer questions and help with tasks and help with horoscopes and weather.",
        )
        
    async def on_enter(self) -> None:
        await self.session.say("Hello, how can I help you today?")
    
    async def on_exit(self) -> None:
        await self.session.say("Goodbye!")

async def entrypoint(ctx: JobContext):
    
    agent = VoiceAgent()
    
    pipeline = Pipeline(
        stt= GoogleSTT(api_key=os.getenv("GOOGLE_API_KEY")),
        llm=AnthropicLLM(api_key=os.getenv("ANTHROPIC_API_KEY")),
        tts=GoogleTTS(api_key=os.getenv("GOOGLE_API_KEY")),
        vad=SileroVAD(),
        turn_detector=TurnDetector(threshold=0.8)
    )
    session = AgentSession(
        agent=agent, 
        pipeline=pipeline,
        wake_up=15
    )
    
    async def on_wake_up():
        await session.say("Hello, are you there?")
    
    session.on_wake_up = on_wake_up

    await session.start(wait_for_participant=True, run_until_shutdown=True)
    
def make_context() -> JobContext:
    room_options = RoomOptions(room_id="<room_id>", name="Sandbox Agent", playground=True)
    
    return JobContext(room_options=room_options)

if __name__ == "__main__":

    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
