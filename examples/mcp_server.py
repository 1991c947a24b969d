"""A small MCP server (the official SDK's FastMCP) that examples/mcp_tools.py starts over stdio.

It can also be tried on its own: ``python examples/mcp_server.py`` speaks MCP on stdin/stdout.
"""

from __future__ import annotations

import time

from mcp.server.fastmcp import FastMCP

server = FastMCP("clock-and-weather")


@server.tool()
def get_time(zone: str = "UTC") -> str:
    """The current time.

    Args:
        zone: the time zone (only UTC here)
    """
    return time.strftime(f"It is %H:%M {zone}.", time.gmtime())


@server.tool()
def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city (made up: this server has no network)."""
    return {"city": city, "temp_c": 21, "sky": "clear"}


if __name__ == "__main__":
    server.run()  # stdio
