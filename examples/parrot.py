"""The offline demo: an agent on ParrotModel, which repeats what you said. No API key, no network.

    python examples/parrot.py file --input examples/hello.wav --output parrot-out.wav --speed max
    python examples/parrot.py console         # with agentsession-console-io installed
    python examples/parrot.py console --text  # type; "what time is it?" runs the agent's get_time tool
    python examples/parrot.py playground      # with agentsession-webrtc installed

examples/clock.py is the same agent with a scripted question, so a tool runs in file mode too.
"""

from __future__ import annotations

import time

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


class ParrotAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Repeat what the user says; tell the time when asked.")

    async def on_enter(self) -> None:
        await self.session.say("Hello! Say something and I will repeat it.")

    @function_tool
    async def get_time(self) -> str:
        """The current time (UTC)."""
        return time.strftime("It is %H:%M UTC.", time.gmtime())


async def entrypoint(ctx: JobContext, model: ParrotModel | None = None) -> None:
    # typed text that mentions the time makes the parrot call get_time (examples/clock.py scripts a question)
    model = model or ParrotModel(calls={"time": "get_time"})
    session = AgentSession(agent=ParrotAgent(), pipeline=RealTimePipeline(model=model), wake_up=8)

    async def on_wake_up() -> None:
        await session.say("Are you still there?")

    session.on_wake_up = on_wake_up
    session.on("agent_state_changed", lambda d: print(f"agent: {d['previous'].value} -> {d['state'].value}"))
    session.on("user_state_changed", lambda d: print(f"user:  {d['previous'].value} -> {d['state'].value}"))
    session.on("user_transcript", lambda d: print(f"user said: {d['text']}"))
    session.on("agent_transcript", lambda d: d["final"] and print(f"agent said: {d['text']}"))
    session.on("function_tool_called", lambda d: print(f"tool {d['name']}({d['arguments']}) -> {d['result']}"))
    session.on("wake_up", lambda d: print(f"wake-up after {d['idle_s']:.0f} s of silence"))
    session.on(
        "metrics_collected",
        lambda m: print(
            f"turn {m['turn']} ({m['trigger']}): "
            + ", ".join(f"{k}={m[k] * 1000:.0f} ms" for k in ("eou_delay", "ttfa", "e2e") if m[k] is not None)
            + (" (interrupted)" if m["interrupted"] else "")
        ),
    )
    await ctx.connect()
    await session.start()
    print(f"ended: {await ctx.wait_for_shutdown()}")
    await session.close()
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="Parrot"))).start()
