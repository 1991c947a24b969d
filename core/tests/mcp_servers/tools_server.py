"""A real MCP server for the tests, written with the official SDK's FastMCP.

``python tools_server.py [--pid-file F]`` serves over stdio; ``python tools_server.py streamable-http|sse
[--pid-file F]`` serves over HTTP on a free loopback port, printed as the first line of stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from pathlib import Path

from mcp.server.fastmcp import FastMCP

server = FastMCP("test-tools")


@server.tool()
def get_weather(city: str, unit: str = "c") -> dict[str, object]:
    """Current weather for a city."""
    return {"city": city, "temp": 21 if unit == "c" else 70, "unit": unit}


@server.tool()
def get_time() -> str:
    """The current time (fixed for the tests)."""
    return "It is 12:00 UTC."


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ValueError("the weather station is down")


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after ``seconds``."""
    await asyncio.sleep(seconds)
    return "finally done"


@server.tool()
def crash() -> str:
    """Ends the server's process at once."""
    os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", nargs="?", default="stdio", choices=["stdio", "streamable-http", "sse"])
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    if args.transport == "stdio":
        server.run()
        return
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    app = server.streamable_http_app() if args.transport == "streamable-http" else server.sse_app()
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    main()
