"""Background and thinking audio, offline: music under the agent's voice, clicks while it thinks. No API key.

    python examples/background_music.py file --input examples/hello.wav --output music-out.wav --speed max

The parrot greets you with a built-in room noise playing under it (ducked while it speaks); your first
utterance counts as "play some music", which calls ``control_background_music``; while the agent thinks, its
thinking sound plays. ``music-out.wav`` has both signals where they overlap.
"""

from __future__ import annotations

from agentsession import (
    Agent,
    AgentSession,
    JobContext,
    ParrotModel,
    RealTimePipeline,
    RoomOptions,
    WorkerJob,
    function_tool,
)


class DJ(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You play music when asked.")
        self.set_thinking_audio(volume=0.3)  # the built-in key clicks (or file="thinking.wav")

    async def on_enter(self) -> None:
        await self.play_background_audio(volume=0.6, looping=True)  # the built-in room noise (or file=...)
        await self.session.say("Hello! Ask me for music.")

    @function_tool
    async def control_background_music(self, action: str = "play") -> str:
        """Play or stop the background music.

        Args:
            action: 'play' or 'stop'
        """
        if action == "stop":
            await self.stop_background_audio()
            return "Music stopped."
        await self.play_background_audio(volume=0.8, looping=True, override_thinking=False)
        return "Music started."


async def entrypoint(ctx: JobContext) -> None:
    model = ParrotModel(heard=["Play some music."], calls={"music": "control_background_music"})
    session = AgentSession(agent=DJ(), pipeline=RealTimePipeline(model))
    session.on("function_tool_called", lambda e: print(f"tool {e['name']} -> {e['result']}"))
    await session.start(wait_for_participant=True, run_until_shutdown=True)


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="DJ"))).start()
