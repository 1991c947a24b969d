"""``OpenAIReplayer``: a cassette's OpenAI traffic played back on one loopback port (``OPENAI_BASE_URL``).

Three links, as the plugin taps them: ``OpenAI Realtime`` and ``OpenAI transcription`` (websockets, each
connection played by core's ``ReplayScript``: recorded answers when the agent has sent what preceded them, with
their recorded delays) and ``OpenAI HTTP`` (chat completions, speech: each request answered by the next recorded
exchange of the same method and path, its body compared, the response streamed with its recorded timing). A
router on the port hands websocket upgrades to a websockets server and serves HTTP itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from agentsession.plugin import Replayer, TrafficRecord, WebSocketReplayer, diff_values

from ._http_tap import HTTP_LINK
from ._stt_stream import STT_LINK
from .fake.service import _pipe

#: the ``ProviderLink`` name of ``OpenAIRealtime``, as a cassette names its traffic
LINK_NAME = "OpenAI Realtime"
REPLAY_KEY = "sk-replay-agentsession"
#: the server's own log (websockets logs each connection at INFO): warnings only
_server_log = logging.getLogger("agentsession.openai.replay.server")
_server_log.setLevel(logging.WARNING)
_HEAD_LIMIT = 64 * 1024


def audio_size(message: Any) -> int | None:
    """Bytes of audio in an ``input_audio_buffer.append`` (``None`` for any other client event: a request)."""
    if isinstance(message, dict) and message.get("type") == "input_audio_buffer.append":
        try:
            return len(binascii.a2b_base64(message.get("audio") or ""))
        except (binascii.Error, TypeError):
            return 0
    return None


class _Channel(WebSocketReplayer):
    """One websocket link's connections, served by :class:`OpenAIReplayer`'s server."""

    async def listen(self) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        pass


@dataclass
class _Exchange:
    """One recorded HTTP request and its response."""

    request: dict[str, Any]
    t: float
    head: dict[str, Any] = field(default_factory=dict)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (delay after the one before, bytes)
    last: float = 0.0


def _exchanges(connections: list[list[TrafficRecord]]) -> dict[tuple[str, str], deque[_Exchange]]:
    by_id: dict[int, _Exchange] = {}
    order: list[_Exchange] = []
    for record in (r for conn in connections for r in conn):
        msg = record.msg
        if not isinstance(msg, dict) or "id" not in msg:
            continue
        if record.dir == "sent":
            by_id[msg["id"]] = exchange = _Exchange(msg, record.t, last=record.t)
            order.append(exchange)
            continue
        exchange = by_id[msg["id"]]
        if "status" in msg:
            exchange.head = msg
        elif "chunk" in msg:
            data = base64.b64decode(msg["chunk"]) if msg.get("binary") else str(msg["chunk"]).encode("utf-8")
            exchange.chunks.append((max(0.0, record.t - exchange.last), data))
        exchange.last = record.t
    queues: dict[tuple[str, str], deque[_Exchange]] = {}
    for exchange in order:
        queues.setdefault((exchange.request["method"], exchange.request["path"]), deque()).append(exchange)
    return queues


def _results_of(body: Any, found: list[str]) -> list[str]:
    """The tools whose results (chat ``tool`` messages) are among the differences ``found`` in ``body``."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return []
    names = {call.get("id"): (call.get("function") or {}).get("name") for m in messages if isinstance(m, dict)
             for call in m.get("tool_calls") or [] if isinstance(call, dict)}
    tools: list[str] = []
    for line in found:
        index = line.removeprefix("body.messages[").split("]", 1)[0]
        if line.startswith("body.messages[") and index.isdigit() and int(index) < len(messages):
            message = messages[int(index)]
            name = names.get(message.get("tool_call_id")) if isinstance(message, dict) else None
            if isinstance(name, str) and name not in tools:
                tools.append(name)
    return tools


class OpenAIReplayer(Replayer):
    """Serves a cassette's OpenAI Realtime, transcription and HTTP traffic at ``http://127.0.0.1:<port>/v1``."""

    def __init__(self) -> None:
        self._realtime = _Channel(LINK_NAME, audio_size)
        self._transcription = _Channel(STT_LINK, audio_size)
        self._http: dict[tuple[str, str], deque[_Exchange]] = {}
        self._http_sent = 0
        self._found: list[str] = []
        self._ws: Server | None = None
        self._router: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self, traffic: dict[str, list[list[TrafficRecord]]]) -> dict[str, str]:
        for channel in (self._realtime, self._transcription):
            channel.tolerance = self.tolerance
            await channel.start(traffic)
        self._http = _exchanges(traffic.get(HTTP_LINK, []))
        self._ws = await serve(self._dispatch, "127.0.0.1", 0, max_size=None, compression=None, logger=_server_log)
        self._router = await asyncio.start_server(self._route, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        port = self._router.sockets[0].getsockname()[1]
        return {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": REPLAY_KEY}

    async def stop(self) -> None:
        router, self._router = self._router, None
        if router is not None:
            router.close()
            for link in list(self._links):
                link.transport.abort()
            await router.wait_closed()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
            await ws.wait_closed()

    def differences(self) -> list[str]:
        found = [*self._realtime.differences(), *self._transcription.differences(), *self._found]
        for (method, path), left in self._http.items():
            found += [f"HTTP request {method} {path} was not sent: the agent sent it in the recording"
                      for _ in left]
        return found

    async def _dispatch(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        channel = self._transcription if "intent=transcription" in path else self._realtime
        await channel.handle(ws)

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if b"upgrade: websocket" in head.lower():
                    assert self._ws is not None
                    port = next(iter(self._ws.sockets)).getsockname()[1]
                    up_reader, upstream = await asyncio.open_connection("127.0.0.1", port)
                    self._links.add(upstream)
                    upstream.write(head)
                    await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
                    return
                await self._serve_http(head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError, ValueError, OSError):
            pass
        finally:
            for link in (writer, upstream):
                if link is not None:
                    self._links.discard(link)
                    link.close()

    async def _serve_http(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        content = await reader.readexactly(int(headers.get("content-length", "0")))
        self._http_sent += 1
        what = f"HTTP request {self._http_sent} ({method} {path})"
        queue = self._http.get((method, path))
        if not queue:
            self._found.append(f"{what} is new: the cassette has no answer for it, so that turn stops")
            body = json.dumps({"error": {"message": "the cassette has no answer for this request",
                                         "type": "invalid_request_error"}}).encode()
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            return
        exchange = queue.popleft()
        kind = headers.get("content-type", "")
        now: Any = content.decode("utf-8", "replace")
        if "json" in kind:
            with contextlib.suppress(ValueError):
                now = json.loads(content)
        found: list[str] = []
        diff_values(exchange.request.get("body"), now, "body", {}, found, self.tolerance)
        if found:
            tools = _results_of(now, found)
            named = f"{what[:-1]}, tool {', '.join(tools)})" if tools else what
            self._found += [f"{named} differs:", *(f"    {line}" for line in found)]
        status = int(exchange.head.get("status", 200))
        out = [f"HTTP/1.1 {status} OK", "transfer-encoding: chunked"]
        out += [f"{k}: {v}" for k, v in (exchange.head.get("headers") or {}).items()]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        for delay, data in exchange.chunks:
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
