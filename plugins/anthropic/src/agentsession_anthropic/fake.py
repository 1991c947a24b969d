"""A local Anthropic Messages API server for tests and offline examples: ``POST /v1/messages`` streamed as the
real API streams it (``message_start``, ``ping``, ``content_block_start``/``delta``/``stop``, ``message_delta``,
``message_stop`` server-sent events), events built from the SDK's own types.

Point the official SDK at it with its own setting, ``ANTHROPIC_BASE_URL=server.base_url`` (or
``AnthropicLLM(base_url=server.base_url)``), and use ``API_KEY``. What it answers:

- a user message holding tool results: ``The answer is <results>. Anything else?``;
- a user message naming offered tools (``... use get_weather``): a call to each of them, in one answer (parallel
  calls), with ``tool_arguments[name]`` as input, after ``Let me check.``;
- anything else: ``You said: <text>``.

``fail_mid_answer`` (an ``{"type": ..., "message": ...}`` error) fails the next answer after its first word with
an ``error`` event, as the API does when overloaded mid-stream.

Requests are validated against the SDK's param types and the API's rules (roles alternate and start with the
user, every ``tool_use`` is answered by a ``tool_result`` first in the next user message); violations land in
``protocol_errors``. The instructions' ``cache_control`` is honoured as a prompt cache: the first request writes
it (``cache_creation_input_tokens``), the next ones with the same tools and instructions read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["API_KEY", "FakeAnthropic"]

API_KEY = "sk-ant-test-fake-0123456789abcdef"

_BLOCKS: dict[str, TypeAdapter[Any]] = {
    "text": TypeAdapter(TextBlockParam),
    "tool_use": TypeAdapter(ToolUseBlockParam),
    "tool_result": TypeAdapter(ToolResultBlockParam),
}
_MESSAGE: TypeAdapter[Any] = TypeAdapter(MessageParam)
_TOOL: TypeAdapter[Any] = TypeAdapter(ToolParam)
_REQUIRED = ("model", "max_tokens", "messages")


class FakeAnthropic:
    """``async with FakeAnthropic() as server``; ``base_url`` is ``http://127.0.0.1:P`` (the SDK adds ``/v1``)."""

    def __init__(self) -> None:
        self.protocol_errors: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.tool_arguments: dict[str, dict[str, Any]] = {}
        self.fail_mid_answer: dict[str, str] | None = None  # next answer: this error event after its first word
        self.first_text_sent: list[float] = []  # perf_counter as each answer's first text delta is sent
        self._cached: set[str] = set()
        self._server: asyncio.Server | None = None
        self._ids = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use it as `async with FakeAnthropic() as server`"
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> FakeAnthropic:
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
            while line := (await reader.readline()).decode().strip():
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if API_KEY not in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer ")):
                await self._error(writer, 401, "authentication_error", "invalid x-api-key")
            elif (method, path.split("?")[0]) != ("POST", "/v1/messages"):
                self.protocol_errors.append(f"unexpected request {method} {path}")
                await self._error(writer, 404, "not_found_error", f"{method} {path}")
            else:
                if not headers.get("anthropic-version"):
                    self.protocol_errors.append("request without an anthropic-version header")
                self.headers.append(headers)
                await self._messages(writer, json.loads(body))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left (a stream closed early)
        except Exception as exc:
            self.protocol_errors.append(f"fake Anthropic server crashed: {exc!r}")
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _error(self, writer: asyncio.StreamWriter, status: int, kind: str, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    # ------------------------------------------------------------------ the request

    def _validate(self, request: dict[str, Any]) -> None:
        errors = self.protocol_errors
        errors += [f"request without {key!r}" for key in _REQUIRED if key not in request]
        if request.get("stream") is not True:
            errors.append("request not streamed (stream: true)")
        for block in request.get("system", []) if isinstance(request.get("system"), list) else []:
            self._block(block, "system")
        for tool in request.get("tools", []):
            try:
                _TOOL.validate_python(tool)
            except ValidationError as exc:
                errors.append(f"invalid tool: {exc}")
        messages = request.get("messages", [])
        if not messages or messages[0].get("role") != "user":
            errors.append("the first message is not the user's")
        pending: set[str] = set()  # tool_use ids the next user message must answer
        for i, message in enumerate(messages):
            try:
                _MESSAGE.validate_python(message)
            except ValidationError as exc:
                errors.append(f"invalid message {i}: {exc}")
                continue
            if i and message["role"] == messages[i - 1]["role"]:
                errors.append(f"message {i}: two {message['role']} messages in a row")
            content = message["content"] if isinstance(message["content"], list) else []
            for block in content:
                self._block(block, f"message {i}")
            kinds = [b.get("type") for b in content]
            if message["role"] == "user":
                answered = {b.get("tool_use_id") for b in content if b.get("type") == "tool_result"}
                if pending - answered:
                    errors.append(f"message {i}: tool_use {sorted(pending - answered)} not answered")
                if answered - pending:
                    errors.append(f"message {i}: tool_result for {sorted(answered - pending)} without a tool_use")
                if kinds != sorted(kinds, key=lambda kind: kind != "tool_result"):
                    errors.append(f"message {i}: a tool_result after other content")
                pending = set()
            else:
                if "tool_result" in kinds:
                    errors.append(f"message {i}: tool_result in an assistant message")
                pending = {b["id"] for b in content if b.get("type") == "tool_use"}
        if pending:
            errors.append("the last message's tool_use is not answered")
        used = {b.get("type") for m in messages if isinstance(m.get("content"), list) for b in m["content"]
                if isinstance(b, dict)}
        if not request.get("tools") and used & {"tool_use", "tool_result"}:
            errors.append("tool_use/tool_result blocks in a request that defines no tools")

    def _block(self, block: Any, where: str) -> None:
        adapter = _BLOCKS.get(block.get("type") if isinstance(block, dict) else None)  # type: ignore[arg-type]
        if adapter is None:
            self.protocol_errors.append(f"{where}: unexpected block {block!r}")
            return
        try:
            adapter.validate_python(block)
        except ValidationError as exc:
            self.protocol_errors.append(f"{where}: invalid {block.get('type')} block: {exc}")

    # ------------------------------------------------------------------ the answer

    async def _messages(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        self._validate(request)
        self.requests.append(request)
        self._ids += 1
        message_id = f"msg_fake{self._ids:04d}"
        text, calls = self._decide(request)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Connection: close\r\n\r\n")
        usage = {"input_tokens": 10, "output_tokens": 1, **self._cache_usage(request)}
        await self._send(writer, RawMessageStartEvent.model_validate({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "content": [], "model": request.get("model"),
            "stop_reason": None, "stop_sequence": None, "usage": usage}}))
        writer.write(b'event: ping\ndata: {"type": "ping"}\n\n')
        index = 0
        if text:
            await self._send(writer, RawContentBlockStartEvent.model_validate(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))
            for i, word in enumerate(text.split(" ")):
                delta = RawContentBlockDeltaEvent.model_validate(
                    {"type": "content_block_delta", "index": index,
                     "delta": {"type": "text_delta", "text": (" " if i else "") + word}})
                if i == 0:
                    self.first_text_sent.append(time.perf_counter())
                await self._send(writer, delta)
                if self.fail_mid_answer is not None:  # the API's way to fail a stream already under way
                    error, self.fail_mid_answer = self.fail_mid_answer, None
                    writer.write(f"event: error\ndata: {json.dumps({'type': 'error', 'error': error})}\n\n".encode())
                    await writer.drain()
                    return
            await self._send(writer, RawContentBlockStopEvent(type="content_block_stop", index=index))
            index += 1
        for n, (name, arguments) in enumerate(calls):
            await self._send(writer, RawContentBlockStartEvent.model_validate(
                {"type": "content_block_start", "index": index, "content_block": {
                    "type": "tool_use", "id": f"toolu_fake{self._ids:04d}{n}", "name": name, "input": {}}}))
            half = len(arguments) // 2  # the input arrives as partial JSON, split anywhere
            for part in (arguments[:half], arguments[half:]):
                await self._send(writer, RawContentBlockDeltaEvent.model_validate(
                    {"type": "content_block_delta", "index": index,
                     "delta": {"type": "input_json_delta", "partial_json": part}}))
            await self._send(writer, RawContentBlockStopEvent(type="content_block_stop", index=index))
            index += 1
        await self._send(writer, RawMessageDeltaEvent.model_validate(
            {"type": "message_delta", "delta": {"stop_reason": "tool_use" if calls else "end_turn",
                                                "stop_sequence": None},
             "usage": {"output_tokens": 5 + len(text.split()) + 10 * len(calls)}}))
        await self._send(writer, RawMessageStopEvent(type="message_stop"))

    async def _send(self, writer: asyncio.StreamWriter, event: BaseModel) -> None:
        data = event.model_dump_json(exclude_unset=True)
        writer.write(f"event: {event.type}\ndata: {data}\n\n".encode())  # type: ignore[attr-defined]
        await writer.drain()

    def _decide(self, request: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        """The answer's text, and its tool calls (name, JSON input)."""
        messages = request.get("messages") or [{"role": "user", "content": ""}]
        content = messages[-1]["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        results = [_text(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        said = " ".join(b["text"] for b in blocks if b.get("type") == "text")
        if results:
            return f"The answer is {' and '.join(results)}. Anything else?", []
        offered = [tool["name"] for tool in request.get("tools", [])]
        calls = [(name, json.dumps(self.tool_arguments.get(name, {}))) for name in offered
                 if re.search(rf"\b{re.escape(name)}\b", said)]
        if calls:
            return "Let me check.", calls
        return f"You said: {said}", []

    def _cache_usage(self, request: dict[str, Any]) -> dict[str, int]:
        system = request.get("system")
        if not isinstance(system, list) or not system or "cache_control" not in system[0]:
            return {}
        key = json.dumps([request.get("tools", []), system[0]], sort_keys=True)
        tokens = len(key) // 4
        if key in self._cached:
            return {"cache_read_input_tokens": tokens, "cache_creation_input_tokens": 0}
        self._cached.add(key)
        return {"cache_read_input_tokens": 0, "cache_creation_input_tokens": tokens}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)
