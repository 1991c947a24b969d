"""An agent whose tools come from an MCP server (examples/mcp_server.py, run over stdio). No API key.

    pip install 'agentsession[mcp]'
    python examples/mcp_tools.py file --input examples/hello.wav --output mcp-out.wav

The server starts with the agent and stops with it; its tools (``get_time``, ``get_weather``) are offered to the
model next to the agent's own. ParrotModel stands in for a real model: your first utterance counts as "What time
is it?" and it calls ``get_time``, which runs on the MCP server. Use real time here (no ``--speed max``): the MCP
server is a real process, its timeouts are on the wall clock.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentsession import (
    Agent,
    AgentSession,
    JobContext,
    MCPServerStdio,
    ParrotModel,
    RealTimePipeline,
    RoomOptions,
    WorkerJob,
)

SERVER = Path(__file__).resolve().parent / "mcp_server.py"


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(
            instructions="You are a helpful assistant. Use your tools for the time and the weather.",
            mcp_servers=[MCPServerStdio(sys.executable, [str(SERVER)], session_timeout=10)],
        )

    async def on_enter(self) -> None:
        await self.session.say("Hello! Ask me the time.")


async def entrypoint(ctx: JobContext) -> None:
    model = ParrotModel(heard=["What time is it?"], calls={"time": "get_time"})  # or OpenAIRealtime()
    session = AgentSession(agent=Assistant(), pipeline=RealTimePipeline(model=model))
    session.on("user_transcript", lambda e: e["final"] and print(f"user: {e['text']}"))
    session.on("agent_transcript", lambda e: e["final"] and print(f"agent: {e['text']}"))
    session.on("function_tool_called", lambda e: print(f"MCP tool {e['name']}({e['arguments']}) -> {e['result']}"))
    session.on("error", lambda e: print(f"error ({e.get('component')}): {e['message']}"))
    await ctx.connect()
    await session.start()  # the MCP server runs from here on; its tools were listed
    print(f"ended: {await ctx.wait_for_shutdown()}")
    await session.close()  # the MCP server's process ends here
    await ctx.shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="MCP tools"))).start()
