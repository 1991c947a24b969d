"""MCP tool servers: ``MCPServerStdio`` and ``MCPServerHTTP`` (VideoSDK's names), on the official ``mcp`` SDK.

An agent given ``mcp_servers=[...]`` starts them with itself: each server's tools are listed and offered to the
model next to the agent's own ``@function_tool``s, as ``RawFunctionTool``s with the server's JSON schema; a call
runs on its server. The servers stop with the agent (the session closing, or a handoff to another agent): a
stdio server's process ends with it. A server that fails to start, or dies, is an ``error`` event
(``code="mcp_server_failed"``, ``component="mcp"``) and its tools are withdrawn; the conversation goes on.

The ``mcp`` SDK (``pip install 'agentsession[mcp]'``) is imported only when a server starts: a session whose
agent has no MCP server does not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ._secrets import redact
from ._tools import FunctionTool, RawFunctionTool, ToolError

if TYPE_CHECKING:
    from mcp import ClientSession

__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio", "MCPTools"]

logger = logging.getLogger("agentsession.mcp")

STOP_TIMEOUT = 5.0  # a server gets this long to stop (a stdio server's process is killed after ~2 s of it)

_INSTALL_HINT = "MCP servers need the mcp SDK: pip install 'agentsession[mcp]'"


def _require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


class MCPServer(ABC):
    """One MCP server an agent uses; subclasses say how to reach it (``MCPServerStdio``, ``MCPServerHTTP``).

    ``session_timeout`` bounds each tool call (seconds; the model gets an error result after it);
    ``connection_timeout`` bounds starting: connecting, the MCP handshake and listing the tools.
    """

    def __init__(self, *, session_timeout: float, connection_timeout: float) -> None:
        if session_timeout <= 0:
            raise ValueError(f"{type(self).__name__}: session_timeout must be > 0 (seconds), got {session_timeout!r}")
        if connection_timeout <= 0:
            raise ValueError(f"{type(self).__name__}: connection_timeout must be > 0 (seconds), "
                             f"got {connection_timeout!r}")
        self.session_timeout = session_timeout
        self.connection_timeout = connection_timeout
        self._client: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._tools: list[FunctionTool] = []

    @property
    @abstractmethod
    def name(self) -> str:
        """A short name for logs and events (the script, or the URL's host and path)."""

    @abstractmethod
    def _streams(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """The SDK's client transport: an async context manager giving ``(read, write, ...)`` streams."""

    def _fatal(self, item: object) -> bool:
        """Whether an exception the transport put on the read stream means the server is gone."""
        return False

    @property
    def running(self) -> bool:
        """Started and not stopped or lost."""
        return self._client is not None

    @property
    def tools(self) -> list[FunctionTool]:
        """Its tools while it runs (listed when it started)."""
        return list(self._tools) if self.running else []

    async def start(self, on_lost: Callable[[MCPServer, str], None]) -> list[FunctionTool]:
        """Start the server and list its tools; raise (``TimeoutError`` after ``connection_timeout``, or the
        SDK's error) when it cannot. ``on_lost(server, why)`` is called if it dies later."""
        _require_mcp()
        if self._task is not None and not self._task.done():
            raise RuntimeError(f"MCP server {self.name} is already running")
        self._stop = asyncio.Event()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._run(ready, on_lost), name=f"mcp:{self.name}")
        try:
            async with asyncio.timeout(self.connection_timeout):
                await asyncio.shield(ready)
        except BaseException:
            await self.stop()
            raise
        return self.tools

    async def stop(self) -> None:
        """Stop it (a stdio server's process ends); idempotent, bounded by ``STOP_TIMEOUT``."""
        task = self._task
        if task is None or task.done():
            return
        if self._client is None:
            task.cancel()  # still starting (or already lost): nothing to wind down; the SDK kills a child process
        else:
            self._stop.set()
        done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT)
        if not done:
            logger.warning("MCP server %s did not stop within %g s: cancelled", self.name, STOP_TIMEOUT)
            task.cancel()
            await asyncio.wait([task], timeout=STOP_TIMEOUT)

    async def _run(self, ready: asyncio.Future[None], on_lost: Callable[[MCPServer, str], None]) -> None:
        """Holds the SDK's context managers open (they must be left in the task that entered them)."""
        import anyio
        from mcp import ClientSession

        lost: str | None = None
        try:
            async with self._streams() as streams:
                read, write = streams[0], streams[1]
                to_client, from_server = anyio.create_memory_object_stream[Any](0)
                forward = asyncio.get_running_loop().create_task(self._forward(read, to_client))
                stop = asyncio.get_running_loop().create_task(self._stop.wait())
                try:
                    async with ClientSession(from_server, write) as client:
                        await client.initialize()
                        listed = await client.list_tools()
                        self._tools = self._make_tools(listed.tools)
                        self._client = client
                        ready.set_result(None)
                        await asyncio.wait([forward, stop], return_when=asyncio.FIRST_COMPLETED)
                        if not stop.done():
                            lost = forward.result() if not forward.cancelled() else "its connection ended"
                        self._client = None
                finally:
                    self._client = None
                    for task in (forward, stop):
                        task.cancel()
                    await asyncio.gather(forward, stop, return_exceptions=True)
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - an ExceptionGroup from the SDK's task groups, say
            if not ready.done():
                ready.set_exception(_plain(exc))
                return
            if lost is None and not self._stop.is_set():
                lost = _describe(exc)
        finally:
            self._client = None
        if lost is not None and not self._stop.is_set():
            logger.warning("MCP server %s stopped: %s", self.name, lost)
            on_lost(self, lost)

    async def _forward(self, read: Any, to_client: Any) -> str:
        """Pass the server's messages on to the client session; return why they ended (the server is gone)."""
        async with to_client:
            async for item in read:
                if isinstance(item, Exception) and self._fatal(item):
                    return _describe(item)
                await to_client.send(item)
        return "its connection ended (the server exited or closed it)"

    def _make_tools(self, listed: Sequence[Any]) -> list[FunctionTool]:
        tools: list[FunctionTool] = []
        for tool in listed:
            try:
                tools.append(RawFunctionTool(self._caller(tool.name), name=tool.name,
                                             description=tool.description or "",
                                             parameters=tool.inputSchema or {}, timeout=self.session_timeout))
            except (ValueError, TypeError) as exc:
                logger.warning("MCP server %s: tool %r skipped: %s", self.name, tool.name, exc)
        return tools

    def _caller(self, tool: str) -> Callable[..., Awaitable[Any]]:
        async def call(**arguments: Any) -> Any:
            client = self._client
            if client is None:
                raise ToolError(f"the MCP server {self.name} is not running")
            from mcp.shared.exceptions import McpError  # mcp 1.x's name

            try:
                result = await client.call_tool(tool, arguments)
            except McpError as exc:
                raise ToolError(f"the MCP server {self.name} refused the call: {redact(str(exc))}") from None
            text = _result_text(result.content)
            if result.isError:
                raise ToolError(text or f"the MCP tool {tool!r} failed")
            if text:
                return text
            structured = getattr(result, "structuredContent", None)
            return structured if structured is not None else {"result": None}

        call.__name__ = tool
        return call

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {'running' if self.running else 'stopped'}>"


class MCPServerStdio(MCPServer):
    """An MCP server run as a child process, spoken to over its stdin/stdout (VideoSDK's arguments).

    ``MCPServerStdio(sys.executable, ["my_server.py"])``. The process starts with the agent and ends with it.
    """

    def __init__(
        self,
        executable_path: str,
        process_arguments: Sequence[str] = (),
        environment_vars: Mapping[str, str] | None = None,
        working_directory: str | Path | None = None,
        session_timeout: float = 5.0,
        *,
        connection_timeout: float = 30.0,
    ) -> None:
        """``environment_vars``: added to the SDK's safe default environment (``PATH``, ``HOME``, ...);
        ``connection_timeout``: for the process to start and list its tools."""
        super().__init__(session_timeout=session_timeout, connection_timeout=connection_timeout)
        if not isinstance(executable_path, str | os.PathLike) or not str(executable_path):
            raise ValueError("MCPServerStdio needs the server's executable, e.g. MCPServerStdio(sys.executable, "
                             "['server.py'])")
        if isinstance(process_arguments, str):
            raise TypeError("process_arguments is a list of arguments, e.g. ['server.py'], not one string")
        self.executable_path = str(executable_path)
        self.process_arguments = [str(a) for a in process_arguments]
        self.environment_vars = dict(environment_vars) if environment_vars is not None else None
        self.working_directory = Path(working_directory) if working_directory is not None else None

    @property
    def name(self) -> str:
        args, exe = self.process_arguments, Path(self.executable_path).name
        if args[:1] == ["-m"] and len(args) > 1:
            return args[1]
        if args[:1] == ["-c"]:
            return f"{exe} -c"
        script = next((a for a in args if not a.startswith("-")), None)
        return Path(script).name if script else exe

    def _streams(self) -> contextlib.AbstractAsyncContextManager[Any]:
        from mcp import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self.executable_path, args=self.process_arguments,
                                       env=self.environment_vars, cwd=self.working_directory)
        return stdio_client(params)


class MCPServerHTTP(MCPServer):
    """An MCP server reached over HTTP: streamable HTTP when the URL's path ends in ``/mcp``, else SSE (as
    VideoSDK picks); ``transport="streamable_http"``/``"sse"`` overrides it."""

    def __init__(
        self,
        endpoint_url: str,
        request_headers: Mapping[str, Any] | None = None,
        connection_timeout: float = 10.0,
        stream_read_timeout: float = 300.0,
        session_timeout: float = 5.0,
        *,
        transport: str | None = None,
    ) -> None:
        super().__init__(session_timeout=session_timeout, connection_timeout=connection_timeout)
        parsed = urlparse(endpoint_url if isinstance(endpoint_url, str) else "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"MCPServerHTTP needs an http(s) URL, e.g. http://localhost:8000/mcp; got "
                             f"{redact(str(endpoint_url))!r}")
        if transport not in (None, "streamable_http", "sse"):
            raise ValueError(f"MCPServerHTTP transport must be 'streamable_http' or 'sse', got {transport!r}")
        self.endpoint_url = endpoint_url
        self.request_headers = dict(request_headers or {})
        self.stream_read_timeout = stream_read_timeout
        self.transport_mode = transport or detect_transport(endpoint_url)

    @property
    def name(self) -> str:
        parsed = urlparse(self.endpoint_url)
        return f"{parsed.hostname}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"

    def _streams(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.transport_mode == "streamable_http":
            return self._streamable_http()
        from mcp.client.sse import sse_client

        return sse_client(self.endpoint_url, headers=self.request_headers, timeout=self.connection_timeout,
                          sse_read_timeout=self.stream_read_timeout)

    @contextlib.asynccontextmanager
    async def _streamable_http(self) -> AsyncIterator[Any]:
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx.Timeout(self.connection_timeout, read=self.stream_read_timeout)
        async with httpx.AsyncClient(headers=self.request_headers, timeout=timeout, follow_redirects=True) as http:
            async with streamable_http_client(self.endpoint_url, http_client=http) as streams:
                yield streams

    def _fatal(self, item: object) -> bool:
        import httpx

        return isinstance(item, httpx.HTTPError)

    def __repr__(self) -> str:
        return f"<MCPServerHTTP {self.name} ({self.transport_mode}) {'running' if self.running else 'stopped'}>"


def detect_transport(url: str) -> str:
    """``"streamable_http"`` when the URL's last path segment is ``mcp``, else ``"sse"`` (VideoSDK's rule)."""
    segments = urlparse(url.lower()).path.strip("/").split("/")
    return "streamable_http" if segments[-1] == "mcp" else "sse"


class MCPTools:
    """The running agent's MCP servers (one per session): started with it, stopped with it.

    ``on_failure(message)`` reports a server that could not start or died; ``on_withdrawn()`` is called after a
    running server's tools were withdrawn (the session then offers the model what is left).
    """

    def __init__(self, on_failure: Callable[[str], None], on_withdrawn: Callable[[], Awaitable[None]]) -> None:
        self._servers: list[MCPServer] = []
        self._on_failure = on_failure
        self._on_withdrawn = on_withdrawn
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def tools(self) -> list[FunctionTool]:
        """The tools of the servers running now, in the servers' order (a name seen before is skipped)."""
        out: dict[str, FunctionTool] = {}
        for server in self._servers:
            for tool in server.tools:
                out.setdefault(tool.name, tool)
        return list(out.values())

    async def start(self, servers: Sequence[MCPServer]) -> None:
        """Stop the servers running now, then start ``servers`` together; a failure is reported, not raised."""
        await self.stop()
        if not servers:
            return
        self._servers = list(servers)
        from ._clock import VirtualClockEventLoop

        if isinstance(asyncio.get_running_loop(), VirtualClockEventLoop):
            logger.warning("MCP servers run on real time: on a virtual clock (file mode's --speed max) their "
                           "timeouts expire at once; run without --speed max")
        results = await asyncio.gather(*(s.start(self._lost) for s in self._servers), return_exceptions=True)
        for server, result in zip(self._servers, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                why = f"no answer within {server.connection_timeout:g} s" if isinstance(result, TimeoutError) \
                    else _describe(result)
                logger.warning("MCP server %s failed to start: %s", server.name, why)
                self._on_failure(f"MCP server {server.name} failed to start ({why}); its tools are not offered")
            else:
                logger.info("MCP server %s started: %d tools (%s)", server.name, len(result),
                            ", ".join(t.name for t in result))

    async def stop(self) -> None:
        """Stop every server (their processes end); idempotent."""
        servers, self._servers = self._servers, []
        if servers:
            await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _lost(self, server: MCPServer, why: str) -> None:
        if server not in self._servers:
            return
        self._on_failure(f"MCP server {server.name} stopped ({why}); its tools are withdrawn")
        task = asyncio.get_running_loop().create_task(self._withdraw(), name=f"mcp-withdraw:{server.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _withdraw(self) -> None:
        try:
            await self._on_withdrawn()
        except Exception:
            logger.exception("withdrawing an MCP server's tools failed")


def _result_text(content: Sequence[Any]) -> str:
    """The text a call gave: its text parts joined; other parts (images, resources) as JSON without their data."""
    parts: list[str] = []
    for item in content:
        if getattr(item, "type", None) == "text":
            parts.append(str(item.text))
            continue
        dumped = item.model_dump(mode="json", exclude_none=True) if hasattr(item, "model_dump") else {"value": str(item)}
        if isinstance(dumped.get("data"), str):
            dumped["data"] = f"<{len(dumped['data'])} characters of base64>"
        parts.append(json.dumps(dumped, ensure_ascii=False))
    return "\n".join(parts)


def _plain(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    exc = _plain(exc)
    text = str(exc).strip()
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

