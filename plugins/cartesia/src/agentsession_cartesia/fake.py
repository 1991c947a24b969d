"""A local server that speaks Cartesia's text-to-speech websocket protocol, for tests and offline examples.

```python
async with FakeCartesiaServer() as server:         # needs agentsession-cartesia[fake] (aiohttp)
    os.environ |= {"CARTESIA_BASE_URL": server.base_url, "CARTESIA_API_KEY": API_KEY}
```

``GET /tts/websocket`` (``Authorization: Bearer <key>``, a ``Cartesia-Version`` header): generation requests
(``context_id``, ``model_id``, ``transcript``, ``voice``, ``output_format`` raw ``pcm_s16le``, ``continue``, ...)
and ``{"context_id": ..., "cancel": true}``. Each transcript is spoken as it arrives, no buffering: a tone of
``seconds_per_char`` per character, in ``chunk`` messages of ``chunk_seconds`` (base64 PCM at the requested rate),
with ``timestamps`` for its words when ``add_timestamps`` is set; ``done`` once the context's ``continue: false``
request is spoken. ``drop_connections()`` cuts the open websockets. ``hold_after_first_chunk`` makes each context wait after its first chunk until it is cancelled
(to test barge-in deterministically). Every message it sends is validated against the SDK's own types; anything
unexpected it gets lands in ``protocol_errors``. ``agentsession fakes cartesia`` serves one (``CartesiaFakes``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from aiohttp import WSMsgType, web
from cartesia.types.websocket_response import Chunk, Done, Error, Timestamps
from pydantic import BaseModel

from agentsession.plugin import FakeService

API_KEY = "sk_car_test_fake_0123456789abcdef"
_REQUIRED = ("context_id", "model_id", "transcript", "voice", "output_format")
_KNOWN = {*_REQUIRED, "continue", "language", "add_timestamps", "add_phoneme_timestamps", "generation_config",
          "speed", "pronunciation_dict_id", "max_buffer_delay_ms", "use_normalized_timestamps", "flush", "duration"}
_TYPES: dict[str, type[BaseModel]] = {"chunk": Chunk, "done": Done, "timestamps": Timestamps, "error": Error}


@dataclass
class Context:
    """One context: the requests that came for it, the chunks sent (loop time just before the send, seconds), and how
    it ended."""

    context_id: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[tuple[float, float]] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    audio_sent: asyncio.Event = field(default_factory=asyncio.Event)  # set once its first chunk is out
    done: bool = False
    spoken_seconds: float = 0.0  # the context's audio timeline (for word timestamps)

    @property
    def transcript(self) -> str:
        return "".join(r["transcript"] for r in self.requests)


@dataclass
class Connection:
    headers: dict[str, str]
    transport: asyncio.Transport | None = None
    contexts: dict[str, Context] = field(default_factory=dict)


class FakeCartesiaServer:
    """``async with FakeCartesiaServer() as server``; ``base_url`` is ``http://127.0.0.1:P``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.seconds_per_char = 0.02
        self.chunk_seconds = 0.1
        self.hold_after_first_chunk = False
        self.connections: list[Connection] = []
        self.protocol_errors: list[str] = []
        self.context_opened = asyncio.Event()  # set at each new context
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def contexts(self) -> list[Context]:
        return [c for conn in self.connections for c in conn.contexts.values()]

    async def __aenter__(self) -> FakeCartesiaServer:
        app = web.Application()
        app.router.add_get("/tts/websocket", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self._port = int(self._runner.addresses[0][1])
        return self

    def drop_connections(self) -> None:
        """Cut every open websocket (no close frame), as a network failure does."""
        for conn in self.connections:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.abort()

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": "Invalid API key"}, status=401)
        if not request.headers.get("Cartesia-Version"):
            self.protocol_errors.append("no Cartesia-Version header")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(dict(request.headers), request.transport)
        self.connections.append(conn)
        speaking: set[asyncio.Task[None]] = set()
        queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}

        async def send(message: dict[str, Any]) -> None:
            _TYPES[message["type"]].model_validate(message)  # the SDK's own schema
            if not ws.closed:
                await ws.send_str(json.dumps(message))

        async def speak(context: Context, requests: asyncio.Queue[dict[str, Any]]) -> None:
            """A context's requests in order: each one's audio as soon as it came, ``done`` after the last."""
            while True:
                req = await requests.get()
                fmt = req["output_format"]
                rate = int(fmt["sample_rate"])
                text = req["transcript"]
                seconds = self.seconds_per_char * len(text.strip())
                if req.get("add_timestamps") and text.strip():
                    words = text.split()
                    step = seconds / len(words)
                    start = context.spoken_seconds
                    await send({"type": "timestamps", "context_id": context.context_id, "status_code": 206,
                                "done": False, "word_timestamps": {
                                    "words": words, "start": [round(start + i * step, 3) for i in range(len(words))],
                                    "end": [round(start + (i + 1) * step, 3) for i in range(len(words))]}})
                sent = 0.0
                while sent < seconds - 1e-9:
                    if context.cancelled.is_set():
                        return
                    length = min(self.chunk_seconds, seconds - sent)
                    t = np.arange(int(round(length * rate))) / rate + sent
                    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
                    context.chunks.append((asyncio.get_running_loop().time(), length))
                    await send({"type": "chunk", "context_id": context.context_id, "status_code": 206, "done": False,
                                "data": base64.b64encode(pcm).decode(), "step_time": 1.0})
                    context.audio_sent.set()
                    sent += length
                    context.spoken_seconds += length
                    if self.hold_after_first_chunk and len(context.chunks) == 1:
                        await context.cancelled.wait()
                        return
                    await asyncio.sleep(0)
                if not req.get("continue", True):
                    context.done = True
                    await send({"type": "done", "context_id": context.context_id, "status_code": 200, "done": True})
                    return

        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    self.protocol_errors.append(f"unexpected {msg.type.name} message")
                    continue
                body = json.loads(msg.data)
                context_id = str(body.get("context_id") or "")
                if body.get("cancel") is True:
                    if context_id in conn.contexts:
                        conn.contexts[context_id].cancelled.set()
                    continue
                problems = [k for k in _REQUIRED if k not in body] + [k for k in body if k not in _KNOWN]
                fmt = body.get("output_format") or {}
                if problems or fmt.get("container") != "raw" or fmt.get("encoding") != "pcm_s16le":
                    self.protocol_errors.append(f"unexpected generation request {body} ({problems})")
                    await send({"type": "error", "context_id": context_id or None, "status_code": 400, "done": True,
                                "title": "Invalid request", "message": f"bad fields: {problems or fmt}"})
                    continue
                context = conn.contexts.get(context_id)
                if context is None:
                    context = conn.contexts[context_id] = Context(context_id)
                    self.context_opened.set()
                    queues[context_id] = asyncio.Queue()
                    task = asyncio.get_running_loop().create_task(speak(context, queues[context_id]))
                    speaking.add(task)
                    task.add_done_callback(speaking.discard)
                context.requests.append(body)
                queues[context_id].put_nowait(body)
        finally:
            for task in list(speaking):
                task.cancel()
            await asyncio.gather(*speaking, return_exceptions=True)
        return ws


class CartesiaFakes(FakeService):
    """``agentsession fakes cartesia``: one ``FakeCartesiaServer``."""

    description: ClassVar[str] = "Cartesia text to speech (/tts/websocket)"
    knobs: ClassVar[dict[str, str]] = {
        "seconds_per_char": "seconds of audio (a tone) per character of text spoken",
    }

    def __init__(self) -> None:
        self.seconds_per_char = 0.02
        self.server: FakeCartesiaServer | None = None

    async def start(self, host: str = "127.0.0.1") -> dict[str, str]:
        self.server = await FakeCartesiaServer(host).__aenter__()
        self.server.seconds_per_char = self.seconds_per_char
        return {"CARTESIA_BASE_URL": self.server.base_url, "CARTESIA_API_KEY": API_KEY}

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.__aexit__(None, None, None)
