"""An agent with an MCP server (tools_server.py over stdio), run by the tests through the CLI's file mode.

The server writes its pid to ``$MCP_TEST_PID_FILE``; the agent prints ``mcp ready`` once the session started
(its tools are listed by then) and each tool call's result.
"""

from __future__ import annotations

import os
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

SERVER = Path(__file__).resolve().parent / "tools_server.py"


class ClockAgent(Agent):
    def __init__(self) -> None:
        server = MCPServerStdio(sys.executable, [str(SERVER), "--pid-file", os.environ["MCP_TEST_PID_FILE"]])
        super().__init__(instructions="You tell the time.", mcp_servers=[server])


async def entrypoint(ctx: JobContext) -> None:
    model = ParrotModel(heard=["What time is it?"], calls={"time": "get_time"})
    session = AgentSession(agent=ClockAgent(), pipeline=RealTimePipeline(model=model))
    session.on("function_tool_called", lambda e: print(f"tool {e['name']} -> {e['result']}", flush=True))
    session.on("error", lambda e: print(f"error: {e['message']}", flush=True))
    await ctx.connect()
    await session.start()
    print("mcp ready", flush=True)
    await ctx.wait_for_shutdown()


if __name__ == "__main__":
    WorkerJob(entrypoint=entrypoint, jobctx=lambda: JobContext(room_options=RoomOptions(name="MCP"))).start()
