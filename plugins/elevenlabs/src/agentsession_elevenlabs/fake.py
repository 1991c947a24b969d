"""A local ElevenLabs text-to-speech websocket for tests and offline examples: the multi-context protocol of
``/v1/text-to-speech/{voice_id}/multi-stream-input`` as the service speaks it, messages read and written with the
SDK's own types.

Point ``ElevenLabsTTS`` at it with ``ELEVENLABS_BASE_URL=server.base_url`` (or ``base_url=``) and ``API_KEY``.
Each context buffers the text it is sent and generates audio when the buffer reaches the context's
``chunk_length_schedule`` (the service's default without one), when flushed, and when closed after a flush: a
tone of ``seconds_per_char`` per character (or ``seconds_per_word`` per word, whatever its length), in messages of a few words, each with its characters' timings
(``alignment`` and ``normalizedAlignment``, relative to the message's audio, as the service sends them), then
``isFinal`` once the context is closed. Text buffered when a context is closed without a flush is never
generated (``Context.dropped``). Violations of the protocol land in ``protocol_errors``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from elevenlabs.types import (
    AudioOutputMulti,
    CloseContext,
    FinalOutputMulti,
    FlushContext,
    InitializeConnectionMulti,
    SendTextMulti,
)
from pydantic import ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["API_KEY", "Context", "FakeElevenLabs"]

API_KEY = "sk_test_fake_elevenlabs_0123456789abcdef"
DEFAULT_SCHEDULE = [120.0, 160.0, 250.0, 290.0]


@dataclass
class Context:
    """What the fake did with one context."""

    context_id: str
    voice_id: str
    voice_settings: dict[str, Any] | None = None
    schedule: list[float] = field(default_factory=lambda: list(DEFAULT_SCHEDULE))
    received: str = ""  # all the text sent to it
    generated: list[str] = field(default_factory=list)  # the pieces turned into audio (what is billed)
    dropped: str = ""  # text it was closed on before generating it
    closed: bool = False
    flushed: bool = False
    buffer: str = ""
    first_audio_sent: float | None = None  # perf_counter when its first audio message left


@dataclass
class Connection:
    voice_id: str
    query: dict[str, str]
    headers: Headers


class FakeElevenLabs:
    """``async with FakeElevenLabs() as server``; ``base_url`` is ``http://127.0.0.1:P``."""

    def __init__(self, seconds_per_char: float = 0.02, seconds_per_word: float | None = None) -> None:
        self.seconds_per_char = seconds_per_char
        self.seconds_per_word = seconds_per_word
        self.protocol_errors: list[str] = []
        self.connections: list[Connection] = []
        self.contexts: dict[str, Context] = {}
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is checked after each message the fake handles."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use it as `async with FakeElevenLabs() as server`"
        return f"http://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}"

    async def __aenter__(self) -> FakeElevenLabs:
        self._server = await serve(self._session, "127.0.0.1", 0, process_request=self._check)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("xi-api-key") != API_KEY:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid xi-api-key\n")
        parts = urllib.parse.urlsplit(request.path).path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "text-to-speech"] or parts[3] != "multi-stream-input":
            self.protocol_errors.append(f"unexpected path {request.path}")
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    # ------------------------------------------------------------------ a connection

    async def _session(self, ws: ServerConnection) -> None:
        split = urllib.parse.urlsplit(ws.request.path if ws.request else "")
        voice_id = urllib.parse.unquote(split.path.strip("/").split("/")[2])
        query = dict(urllib.parse.parse_qsl(split.query))
        self.connections.append(Connection(voice_id, query, ws.request.headers if ws.request else Headers()))
        output = query.get("output_format", "")
        if not output.startswith("pcm_"):
            self.protocol_errors.append(f"output_format {output!r}: the fake speaks raw PCM only")
            await ws.close(1008, "unsupported output_format")
            return
        rate = int(output.removeprefix("pcm_"))
        mine: dict[str, Context] = {}
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("close_socket"):
                    for context in mine.values():
                        if not context.closed:
                            await self._close(ws, context, rate)
                    await ws.close()
                    return
                await self._handle(ws, message, mine, voice_id, rate)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        except Exception as exc:
            self.protocol_errors.append(f"fake ElevenLabs server crashed: {exc!r}")

    async def _handle(self, ws: ServerConnection, message: dict[str, Any], mine: dict[str, Context], voice_id: str,
                      rate: int) -> None:
        context_id = message.get("context_id")
        if not isinstance(context_id, str):
            self.protocol_errors.append(f"message without a context_id: {message}")
            return
        context = mine.get(context_id)
        try:
            if context is None or context.closed:
                if message.get("close_context"):
                    return  # closing a context that is already closed (or was never opened) is harmless
                init = InitializeConnectionMulti.model_validate(message)
                if message.get("text") != " ":
                    self.protocol_errors.append(f"context {context_id} opened with {message.get('text')!r}, not ' '")
                context = Context(context_id, voice_id, message.get("voice_settings"))
                if init.generation_config and init.generation_config.chunk_length_schedule:
                    context.schedule = list(init.generation_config.chunk_length_schedule)
                mine[context_id] = self.contexts[context_id] = context
                return
            if message.get("close_context"):
                CloseContext.model_validate(message)
                await self._close(ws, context, rate)
            elif message.get("flush"):
                flush = FlushContext.model_validate(message)
                self._receive(context, flush.text or "")
                context.flushed = True
                await self._generate(ws, context, rate)
            else:
                text = SendTextMulti.model_validate(message).text
                if text and not text.endswith(" "):
                    self.protocol_errors.append(f"text {text!r} does not end with a space")
                self._receive(context, text)
                while context.buffer and len(context.buffer) >= context.schedule[0]:
                    if len(context.schedule) > 1:
                        context.schedule.pop(0)
                    await self._generate(ws, context, rate)
        except ValidationError as exc:
            self.protocol_errors.append(f"invalid message {message}: {exc}")

    def _receive(self, context: Context, text: str) -> None:
        context.received += text
        context.buffer += text

    async def _close(self, ws: ServerConnection, context: Context, rate: int) -> None:
        if context.flushed:
            await self._generate(ws, context, rate)
        context.dropped, context.buffer = context.buffer, ""
        context.closed = True
        final = FinalOutputMulti(is_final=True, context_id=context.context_id)
        await ws.send(final.model_dump_json(by_alias=True))

    def _durations(self, piece: str) -> list[int]:
        """Each character's milliseconds: ``seconds_per_char``, or ``seconds_per_word`` spread over a word's
        characters (its space included), so that long and short words take as long."""
        if self.seconds_per_word is None:
            return [round(self.seconds_per_char * 1000)] * len(piece)
        durations: list[int] = []
        for word in re.findall(r"\S+\s*", piece):
            whole, extra = divmod(round(self.seconds_per_word * 1000), len(word))
            durations += [whole + (n < extra) for n in range(len(word))]
        return durations

    async def _generate(self, ws: ServerConnection, context: Context, rate: int) -> None:
        text, context.buffer = context.buffer.lstrip(), ""
        if not text.strip():
            return
        context.generated.append(text.strip())
        words = text.split(" ")  # the text's trailing space makes a last, empty word
        for i in range(0, len(words) - 1, 3):  # a few words a message, each with the space after it
            piece = " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")
            durations = self._durations(piece)
            alignment = {"chars": list(piece), "charStartTimesMs": [sum(durations[:n]) for n in range(len(piece))],
                         "charDurationsMs": durations}
            t = np.arange(int(sum(durations) * rate / 1000)) / rate
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()
            out = AudioOutputMulti.model_validate({"audio": base64.b64encode(pcm).decode(), "alignment": alignment,
                                                   "normalizedAlignment": alignment, "contextId": context.context_id})
            if context.first_audio_sent is None:
                context.first_audio_sent = time.perf_counter()
            await ws.send(out.model_dump_json(by_alias=True, exclude_none=True))
            await asyncio.sleep(0)  # let the other contexts' messages through, as a real server interleaves
