"""MCP tool servers through a real session: real FastMCP servers (stdio child processes, and HTTP on loopback),
reached through the official ``mcp`` SDK, their tools called by a scripted model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from test_cascade import FakeSTT, FakeTTS

from agentsession import (
    LLM,
    Agent,
    AgentSession,
    CascadingPipeline,
    ChatContext,
    FunctionCallOutput,
    FunctionTool,
    MCPServerHTTP,
    MCPServerStdio,
    ToolCall,
    function_tool,
)
from agentsession._mcp import detect_transport
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport
from core_helpers import started

SERVER = Path(__file__).resolve().parent / "mcp_servers" / "tools_server.py"


def stdio_server(pid_file: Path | None = None, **kwargs: Any) -> MCPServerStdio:
    args = [str(SERVER)] + (["--pid-file", str(pid_file)] if pid_file is not None else [])
    return MCPServerStdio(sys.executable, args, **kwargs)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


class WeatherAgent(Agent):
    def __init__(self, *servers: MCPServerStdio | MCPServerHTTP) -> None:
        super().__init__(instructions="You tell the weather.", mcp_servers=servers)

    @function_tool
    async def own_tool(self) -> str:
        """The agent's own tool."""
        return "mine"


async def test_the_servers_tools_are_offered_next_to_the_agents_and_a_call_runs_on_the_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    model = FakeRealtimeModel([
        FakeResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
                     then=FakeResponse(text="It is 21 degrees in Paris.")),
    ])
    session, transport, rec = await started(WeatherAgent(stdio_server(pid_file)), model)
    try:
        assert model.options is not None
        offered = {t.name: t for t in model.options.tools}
        assert sorted(offered) == ["broken", "crash", "get_time", "get_weather", "own_tool", "slow"]
        schema = offered["get_weather"].schema()
        assert schema["description"] == "Current weather for a city."
        assert schema["parameters"]["required"] == ["city"]
        assert schema["parameters"]["properties"]["unit"]["default"] == "c"
        assert alive(int(pid_file.read_text()))
        result = await session.run(user_input="Weather in Paris?")
        assert result.function_calls[0].name == "get_weather"
        assert json.loads(result.function_outputs[0].output) == {"city": "Paris", "temp": 21, "unit": "c"}
        assert "21 degrees" in result.text
        assert model.tool_results[0][0].is_error is False
        assert rec.of("error") == []
    finally:
        await session.close()
        await transport.close()
    assert not alive(int(pid_file.read_text())), "the server's process outlived the session"


async def test_a_failing_tool_bad_arguments_and_a_slow_tool_are_error_results(tmp_path: Path) -> None:
    model = FakeRealtimeModel([
        FakeResponse(tool_calls=[FakeToolCall("broken", {}), FakeToolCall("get_weather", {}),
                                 FakeToolCall("slow", {"seconds": 30})], then=FakeResponse(text="Sorry.")),
    ])
    session, transport, rec = await started(WeatherAgent(stdio_server(session_timeout=1.0)), model)
    try:
        result = await session.run(user_input="Weather?")
        broken, missing, slow = result.function_outputs
        assert broken.is_error and "the weather station is down" in broken.output
        assert missing.is_error and "city: missing required argument" in missing.output
        assert slow.is_error and "timed out after 1 s" in slow.output
        assert session.agent_state.value != "closing"
    finally:
        await session.close()
        await transport.close()


async def test_a_server_that_fails_to_start_is_an_error_and_the_conversation_goes_on() -> None:
    dead = MCPServerStdio(sys.executable, ["-c", "import sys; sys.exit(3)"], connection_timeout=20)
    model = FakeRealtimeModel([FakeResponse(tool_calls=[FakeToolCall("own_tool", {})], then=FakeResponse(text="ok"))])
    session, transport, rec = await started(WeatherAgent(dead), model)
    await asyncio.sleep(0)  # event callbacks run on the next loop turn
    try:
        (error,) = rec.of("error")
        assert error["code"] == "mcp_server_failed" and error["component"] == "mcp" and error["recoverable"]
        assert "failed to start" in error["message"]
        assert model.options is not None and [t.name for t in model.options.tools] == ["own_tool"]
        result = await session.run(user_input="Use your tool")
        assert result.function_outputs[0].output == "mine"
    finally:
        await session.close()
        await transport.close()


async def test_a_server_that_dies_is_an_error_and_its_tools_are_withdrawn(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    model = FakeRealtimeModel([
        FakeResponse(tool_calls=[FakeToolCall("crash", {})], then=FakeResponse(text="Oops.")),
        FakeResponse(tool_calls=[FakeToolCall("get_time", {})], then=FakeResponse(text="No clock.")),
    ])
    updated = asyncio.Event()
    update_agent = model.update_agent

    async def tools_changed(instructions: str, tools: Any) -> None:
        await update_agent(instructions, tools)
        updated.set()

    model.update_agent = tools_changed  # type: ignore[method-assign]
    session, transport, rec = await started(WeatherAgent(stdio_server(pid_file, session_timeout=10)), model)
    try:
        result = await session.run(user_input="Crash it")
        assert result.function_outputs[0].is_error  # the call whose server died under it
        await asyncio.wait_for(updated.wait(), 10)  # the model is told the tools that are left
        (error,) = [e for e in rec.of("error") if e.get("code") == "mcp_server_failed"]
        assert "stopped" in error["message"] and "withdrawn" in error["message"]
        assert not alive(int(pid_file.read_text()))
        assert model.agents[-1][1] == ["own_tool"]
        result = await session.run(user_input="What time is it?")
        assert result.function_outputs[0].is_error and "unknown tool" in result.function_outputs[0].output
    finally:
        await session.close()
        await transport.close()


class Receptionist(Agent):
    def __init__(self, pid_file: Path) -> None:
        super().__init__(instructions="You route calls.", mcp_servers=[stdio_server(pid_file)])

    @function_tool
    async def transfer(self) -> Agent:
        """Hand over to the weather desk."""
        return WeatherDesk()


class WeatherDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")


async def test_a_handoff_stops_the_old_agents_servers(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    model = FakeRealtimeModel([FakeResponse(tool_calls=[FakeToolCall("transfer", {})], then=FakeResponse(text="Hi"))])
    session, transport, rec = await started(Receptionist(pid_file), model)
    try:
        pid = int(pid_file.read_text())
        assert alive(pid)
        await session.run(user_input="Weather desk please")
        assert isinstance(session.agent, WeatherDesk)
        assert not alive(pid), "the old agent's MCP server outlived the handoff"
        assert model.agents[-1] == ("You tell the weather.", [])
    finally:
        await session.close()
        await transport.close()


@pytest.fixture(params=["streamable-http", "sse"])
def http_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A FastMCP server on a free loopback port, run by uvicorn in a subprocess; yields its MCP URL."""
    transport = request.param
    proc = subprocess.Popen([sys.executable, str(SERVER), transport], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())  # printed once the socket listens
        yield f"http://127.0.0.1:{port}/{'mcp' if transport == 'streamable-http' else 'sse'}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_an_http_server_on_loopback(http_server: str) -> None:
    server = MCPServerHTTP(http_server)
    assert server.transport_mode == ("streamable_http" if http_server.endswith("/mcp") else "sse")
    model = FakeRealtimeModel([
        FakeResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Oslo", "unit": "f"})],
                     then=FakeResponse(text="70 in Oslo.")),
    ])
    session, transport, rec = await started(WeatherAgent(server), model)
    try:
        assert "get_weather" in [t.name for t in model.options.tools]  # type: ignore[union-attr]
        result = await session.run(user_input="Weather in Oslo?")
        assert json.loads(result.function_outputs[0].output) == {"city": "Oslo", "temp": 70, "unit": "f"}
        assert rec.of("error") == []
    finally:
        await session.close()
        await transport.close()
    assert not server.running


async def test_an_http_server_that_is_not_there_is_an_error() -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = FakeRealtimeModel()
    session, transport, rec = await started(
        WeatherAgent(MCPServerHTTP(f"http://127.0.0.1:{port}/mcp", connection_timeout=5)), model)
    await asyncio.sleep(0)
    try:
        (error,) = rec.of("error")
        assert error["code"] == "mcp_server_failed" and "failed to start" in error["message"]
        assert [t.name for t in model.options.tools] == ["own_tool"]  # type: ignore[union-attr]
    finally:
        await session.close()
        await transport.close()


def test_transport_is_picked_by_the_url_as_videosdk_does() -> None:
    assert detect_transport("https://example.com/mcp") == "streamable_http"
    assert detect_transport("https://example.com/api/mcp/") == "streamable_http"
    assert detect_transport("https://example.com/sse") == "sse"
    assert detect_transport("https://example.com/zapier/abc") == "sse"
    assert MCPServerHTTP("http://h/x", transport="streamable_http").transport_mode == "streamable_http"


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="http"):
        MCPServerHTTP("localhost:8000")
    with pytest.raises(TypeError, match="list of arguments"):
        MCPServerStdio(sys.executable, "server.py")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session_timeout"):
        MCPServerStdio(sys.executable, ["s.py"], session_timeout=0)
    with pytest.raises(TypeError, match="mcp_servers"):
        Agent("x", mcp_servers=["server.py"])  # type: ignore[list-item]


def test_a_session_without_mcp_servers_does_not_load_the_sdk() -> None:
    code = ("import asyncio, sys\n"
            "from agentsession import Agent, AgentSession, RealTimePipeline\n"
            "from agentsession.testing import FakeRealtimeModel\n"
            "async def main():\n"
            "    s = AgentSession(Agent('x'), RealTimePipeline(FakeRealtimeModel()))\n"
            "    await s.start(); await s.close()\n"
            "asyncio.run(main())\n"
            "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


AGENT = Path(__file__).resolve().parent / "mcp_servers" / "mcp_agent.py"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.wav"


def test_a_file_mode_job_with_an_mcp_server_leaves_no_child_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    done = subprocess.run([sys.executable, str(AGENT), "file", "--input", str(HELLO), "--output",
                           str(tmp_path / "out.wav")], env={**os.environ, "MCP_TEST_PID_FILE": str(pid_file)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tool get_time -> It is 12:00 UTC." in done.stdout  # the model's call ran on the MCP server
    assert "error" not in done.stdout
    assert not alive(int(pid_file.read_text())), "the MCP server's process outlived the job"


def test_ctrl_c_ends_the_job_and_its_mcp_server(tmp_path: Path) -> None:
    import signal

    pid_file = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, str(AGENT), "file", "--input", str(HELLO)],
                            env={**os.environ, "MCP_TEST_PID_FILE": str(pid_file)}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "mcp ready"  # the server runs (its tools were listed)
        server = int(pid_file.read_text())
        assert alive(server)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) in (0, 130)  # the job ended by itself (DESIGN says 130; the CLI gives 0 today)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not alive(server), "the MCP server's process outlived Ctrl-C"


def test_the_mcp_example_runs(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "mcp_tools.py"
    done = subprocess.run([sys.executable, str(example), "file", "--input", str(HELLO), "--output",
                           str(tmp_path / "out.wav")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("MCP tool get_time({}) -> It is ") for line in lines), lines
    assert "ended: input done" in lines and not any(line.startswith("error") for line in lines)


async def test_closing_a_session_while_its_server_starts_leaves_no_process(tmp_path: Path) -> None:
    from agentsession import AgentSessionError, RealTimePipeline

    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    hung = MCPServerStdio(sys.executable, ["-c", f"import os, time; open({str(fifo)!r}, 'w').write(str(os.getpid()));"
                                                 " time.sleep(60)"])
    session = AgentSession(WeatherAgent(hung), RealTimePipeline(FakeRealtimeModel()))
    starting = asyncio.create_task(session.start())
    pid = int(await asyncio.to_thread(fifo.read_text))  # the server's process runs and never answers
    assert alive(pid)
    await session.close()
    with pytest.raises(AgentSessionError, match="closed while it was starting"):
        await starting
    assert not alive(pid)


class WeatherLLM(LLM):
    """A cascade LLM: calls ``get_weather`` for Paris, then reads the result out."""

    def __init__(self) -> None:
        self.offered: list[dict[str, Any]] = []

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        self.offered = [t.schema() for t in tools]
        outputs = [i for i in ctx.items if isinstance(i, FunctionCallOutput)]
        if outputs:
            yield f"It is {json.loads(outputs[-1].output)['temp']} degrees."
            return
        yield ToolCall("c1", "get_weather", json.dumps({"city": "Paris"}), response_id="llm-1")


async def test_a_cascade_offers_and_calls_the_servers_tools() -> None:
    llm, tts = WeatherLLM(), FakeTTS()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(WeatherAgent(stdio_server()), CascadingPipeline(stt=FakeSTT("?"), llm=llm, tts=tts))
    await session.start(transport=transport)
    try:
        result = await session.run(user_input="Weather in Paris?")
        assert json.loads(result.function_outputs[0].output)["temp"] == 21
        assert tts.spoken == ["It is 21 degrees."]
        weather = next(t for t in llm.offered if t["name"] == "get_weather")
        assert weather["parameters"]["required"] == ["city"]
    finally:
        await session.close()
        await transport.close()
