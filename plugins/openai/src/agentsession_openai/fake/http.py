"""A local OpenAI HTTP server for the cascade classes: chat completions (SSE), transcriptions, speech.

Responses are built from the SDK's own types (``ChatCompletionChunk``, ``Transcription``) and requests
are validated against the SDK's request param types; violations land in ``protocol_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.parser
import io
import json
import re
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai.types.audio import Transcription
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming
from pydantic import TypeAdapter, ValidationError

from agentsession.plugin import example_arguments

CHAT_REQUEST: TypeAdapter[Any] = TypeAdapter(CompletionCreateParamsStreaming)
API_KEY = "sk-test-fake-http-0123456789abcdef"


@dataclass
class Upload:
    sample_rate: int
    channels: int
    seconds: float
    fields: dict[str, str] = field(default_factory=dict)


class FakeOpenAIHTTP:
    """``async with FakeOpenAIHTTP() as server``; ``base_url`` is ``http://127.0.0.1:P/v1``."""

    def __init__(self) -> None:
        self.protocol_errors: list[str] = []
        self.chat_requests: list[dict[str, Any]] = []
        self.uploads: list[Upload] = []
        self.speech_requests: list[dict[str, Any]] = []
        #: what each transcription request hears; a list: one per request in turn, its last one for the rest
        self.transcript: str | list[str] = "What is the weather in Paris? Use get_weather."
        self.tool_arguments: dict[str, dict[str, Any]] = {}
        self.example_arguments = False  # a tool without tool_arguments is called with example ones (from its schema)
        self.api_key = API_KEY  # the key a client must send
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def __aenter__(self) -> FakeOpenAIHTTP:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("authorization") != f"Bearer {self.api_key}":
                await self._respond(writer, 401, "application/json", b'{"error": {"message": "bad key"}}')
            elif (method, path) == ("POST", "/v1/chat/completions"):
                await self._chat(writer, json.loads(body))
            elif (method, path) == ("POST", "/v1/audio/transcriptions"):
                await self._transcription(writer, headers["content-type"], body)
            elif (method, path) == ("POST", "/v1/audio/speech"):
                await self._speech(writer, json.loads(body))
            else:
                self.protocol_errors.append(f"unexpected request {method} {path}")
                await self._respond(writer, 404, "application/json", b'{"error": {"message": "not found"}}')
        except Exception as exc:
            self.protocol_errors.append(f"fake HTTP server crashed: {exc!r}")
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _respond(self, writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes) -> None:
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    # ------------------------------------------------------------------ chat completions

    async def _chat(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        try:
            CHAT_REQUEST.validate_python(request)
        except ValidationError as exc:
            self.protocol_errors.append(f"invalid chat request: {exc}")
        self.chat_requests.append(request)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for delta in self._decide(request):
            chunk = ChatCompletionChunk.model_validate({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": request["model"], "choices": [{"index": 0, **delta}]})
            writer.write(f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n".encode())
            await writer.drain()
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    def _decide(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        last = request["messages"][-1]
        tools = [t["function"]["name"] for t in request.get("tools", [])]
        if last["role"] == "tool":
            words = f"The answer is {last['content']}. Anything else?".split(" ")
        else:
            for name in tools:
                if last["role"] == "user" and re.search(rf"\b{re.escape(name)}\b", last["content"]):
                    schema = next(t["function"].get("parameters") or {} for t in request["tools"]
                                  if t["function"]["name"] == name)
                    use_example = self.example_arguments and name not in self.tool_arguments
                    args = json.dumps(example_arguments(schema) if use_example else self.tool_arguments.get(name, {}))
                    half = len(args) // 2
                    return [
                        {"delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                   "function": {"name": name, "arguments": args[:half]}}]}},
                        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}},
                        {"delta": {}, "finish_reason": "tool_calls"},
                    ]
            words = f"You said: {last['content']}".split(" ")
        deltas: list[dict[str, Any]] = [{"delta": {"role": "assistant", "content": ""}}]
        deltas += [{"delta": {"content": (" " if i else "") + w}} for i, w in enumerate(words)]
        return deltas + [{"delta": {}, "finish_reason": "stop"}]

    # ------------------------------------------------------------------ audio

    async def _transcription(self, writer: asyncio.StreamWriter, content_type: str, body: bytes) -> None:
        message = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields: dict[str, str] = {}
        upload: Upload | None = None
        for part in message.get_payload():
            assert isinstance(part, email.message.Message)
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            if name == "file":
                with wave.open(io.BytesIO(data), "rb") as wav:
                    upload = Upload(wav.getframerate(), wav.getnchannels(), wav.getnframes() / wav.getframerate())
            else:
                fields[str(name)] = data.decode()
        if upload is None or "model" not in fields:
            self.protocol_errors.append(f"transcription request without file or model: {fields}")
            return
        upload.fields = fields
        self.uploads.append(upload)
        heard = self.transcript
        result = Transcription(text=heard if isinstance(heard, str) else heard[min(len(self.uploads), len(heard)) - 1])
        await self._respond(writer, 200, "application/json", result.model_dump_json().encode())

    async def _speech(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        self.speech_requests.append(request)
        if request.get("response_format") != "pcm":
            self.protocol_errors.append(f"speech format {request.get('response_format')!r}, expected pcm")
        seconds = 0.02 * len(request["input"])
        t = np.arange(int(seconds * 24000)) / 24000
        pcm = (0.3 * 32767 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n")
        for i in range(0, len(pcm), 1001):  # odd sizes: samples split across chunks
            piece = pcm[i : i + 1001]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
