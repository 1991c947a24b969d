"""``agentsession fakes openai``: the Realtime, transcription and HTTP fakes behind one ``OPENAI_BASE_URL``.

A small router on one port reads each request's first line and hands the connection to the fake that serves
that path (``/v1/realtime?intent=transcription``, ``/v1/realtime?model=...``, everything else), byte for byte,
so the SDK talks to each fake exactly as it would to OpenAI.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from agentsession.plugin import FakeService

from .http import FakeOpenAIHTTP
from .realtime import FakeRealtimeServer
from .transcription import FakeTranscriptionServer

#: the key the fakes take (a placeholder: the fakes need one, the SDK sends it)
FAKE_KEY = "sk-fake-agentsession-openai"
_HEAD_LIMIT = 64 * 1024


class OpenAIFakes(FakeService):
    """OpenAI's Realtime websocket, Realtime transcription, Chat Completions, transcriptions and speech."""

    description: ClassVar[str] = "OpenAI Realtime, Chat Completions, transcription and speech"
    knobs: ClassVar[dict[str, str]] = {
        "heard": "what the fakes hear the user say (Realtime input transcription, transcriptions); name one of "
                 "the agent's tools in it (get_weather) and the model calls that tool",
        "reply_audio": "seconds of audio (a tone) in each spoken Realtime answer",
        "tool_arguments": 'each tool call\'s arguments, by tool name ({"get_weather": {"city": "Rome"}}); a tool '
                          "not listed is called with example arguments made from its schema",
        "preamble": "what a Realtime answer says before its tool calls (\"Let me check.\"); empty: nothing",
    }

    def __init__(self) -> None:
        self.heard = "hello there"
        self.reply_audio = 1.0
        self.tool_arguments: dict[str, Any] = {}
        self.preamble = ""
        self.realtime: FakeRealtimeServer | None = None
        self.transcription: FakeTranscriptionServer | None = None
        self.http: FakeOpenAIHTTP | None = None
        self._stack = contextlib.AsyncExitStack()
        self._router: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1") -> dict[str, str]:
        self.realtime = await self._stack.enter_async_context(FakeRealtimeServer())
        self.transcription = await self._stack.enter_async_context(FakeTranscriptionServer())
        self.http = await self._stack.enter_async_context(FakeOpenAIHTTP())
        self.realtime.transcript, self.realtime.reply_audio = self.heard, self.reply_audio
        self.realtime.tool_arguments, self.realtime.preamble = self.tool_arguments, self.preamble
        self.http.transcript, self.http.tool_arguments = self.heard, self.tool_arguments
        self.transcription.default = self.heard
        self.realtime.example_arguments = self.http.example_arguments = True
        self.realtime.api_key = self.transcription.api_key = self.http.api_key = FAKE_KEY
        self._router = await asyncio.start_server(self._route, host, 0, limit=_HEAD_LIMIT)
        port = self._router.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        return {"OPENAI_BASE_URL": f"http://{shown}:{port}/v1", "OPENAI_API_KEY": FAKE_KEY}

    async def stop(self) -> None:
        if self._router is not None:
            self._router.close()
            for link in list(self._links):
                link.transport.abort()
            await self._router.wait_closed()
            self._router = None
        await self._stack.aclose()

    def _backend(self, path: str) -> str:
        if path.startswith("/v1/realtime?intent=transcription"):
            fake: Any = self.transcription
        elif path.startswith("/v1/realtime"):
            fake = self.realtime
        else:
            fake = self.http
        return str(fake.base_url)

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("latin-1")
            base = self._backend(path)  # http://127.0.0.1:PORT/v1
            host, port = base.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
            up_reader, upstream = await asyncio.open_connection(host, int(port))
            self._links.add(upstream)
            upstream.write(head)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError, OSError):
            pass
        finally:
            for link in (writer, upstream):
                if link is not None:
                    self._links.discard(link)
                    link.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until it ends, then end ``sink``'s side (a half-close where possible)."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()
