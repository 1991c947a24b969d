"""``AnthropicLLM``: Claude over the Messages API (server-sent events), as the core's cascade ``LLM``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from anthropic import APIConnectionError, APIStatusError, AsyncAnthropic
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
    ToolUseBlock,
)

from agentsession.plugin import (
    LLM,
    ChatContext,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    ModelError,
    ToolCall,
    env_secret,
    mask,
    protect_secret,
    redact,
)

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"  # the SDK's own: read by ``AsyncAnthropic`` when no base_url is given

ToolChoice = Literal["auto", "required", "none"]


@dataclass
class Usage:
    """Tokens of the last answer; the cache counts show whether the instructions came from the prompt cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class AnthropicLLM(LLM):
    """Claude, streamed, with tools (the calls of one answer come together, after its text) and prompt caching.

    ``caching="ephemeral"`` (the default) marks the instructions (the system block) and the tool schemas with
    ``cache_control``, so a conversation's turns re-read them from Anthropic's prompt cache; ``None`` sends no
    marks. ``parallel_tool_calls=False`` asks for at most one tool call per answer. ``temperature``, ``top_k``
    and ``top_p`` are sent only when set (newest models take no sampling settings; the SDK has no argument for
    them since 1.0, so they go in the request body as its migration guide says). The API key is
    ``api_key`` or ``$ANTHROPIC_API_KEY`` (checked at the first request, never shown); the server is
    ``base_url`` or ``$ANTHROPIC_BASE_URL`` (the SDK's own setting) or Anthropic's.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "claude-haiku-4-5",
        base_url: str | None = None,
        temperature: float | None = None,
        tool_choice: ToolChoice = "auto",
        max_tokens: int = 1024,
        top_k: int | None = None,
        top_p: float | None = None,
        caching: Literal["ephemeral"] | None = "ephemeral",
        parallel_tool_calls: bool | None = None,
        client: AsyncAnthropic | None = None,
        max_retries: int = 0,
    ) -> None:
        """``client``: an SDK client of yours (its key and base URL are used; ``aclose`` leaves it open)."""
        if tool_choice not in ("auto", "required", "none"):
            raise ValueError(f"tool_choice must be 'auto', 'required' or 'none', got {tool_choice!r}")
        if caching not in ("ephemeral", None):
            raise ValueError(f"caching must be 'ephemeral' or None, got {caching!r}")
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.tool_choice: ToolChoice = tool_choice
        self.max_tokens = max_tokens
        self.top_k = top_k
        self.top_p = top_p
        self.caching = caching
        self.parallel_tool_calls = parallel_tool_calls
        self.max_retries = max_retries
        self.usage = Usage()
        self._api_key = api_key
        self._client: AsyncAnthropic | None = client
        self._owns_client = client is None

    @property
    def client(self) -> AsyncAnthropic:
        """The SDK client, made at first use (a ``ModelError`` naming ``ANTHROPIC_API_KEY`` without a key)."""
        if self._client is None:
            key = self._api_key or env_secret(API_KEY_ENV)
            if not key:
                raise ModelError(
                    f"AnthropicLLM needs an Anthropic API key: set the {API_KEY_ENV} environment variable "
                    "or pass api_key=... to AnthropicLLM()",
                    recoverable=False,
                    code="missing_api_key",
                )
            protect_secret(key)
            # base_url None: the SDK reads $ANTHROPIC_BASE_URL itself, else Anthropic's API
            self._client = AsyncAnthropic(api_key=key, base_url=self.base_url, max_retries=self.max_retries)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            client, self._client = self._client, None
            await client.close()

    def __repr__(self) -> str:
        return (f"AnthropicLLM(model={self.model!r}, api_key={mask(self._api_key)!r}, "
                f"base_url={self.base_url!r})")

    def request(self, ctx: ChatContext, tools: Sequence[FunctionTool] = ()) -> dict[str, Any]:
        """The Messages API request ``chat`` sends for ``ctx`` (streamed)."""
        system, messages = anthropic_messages(ctx, tool_blocks=bool(tools))
        cache = {"cache_control": {"type": self.caching}} if self.caching else {}
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "messages": messages,
                                  "stream": True}
        if system:
            kwargs["system"] = [{"type": "text", "text": text} for text in system]
            kwargs["system"][0].update(cache)  # the instructions: the stable prefix worth caching
        # the SDK (1.0 on) has no arguments for sampling; the API takes them, on models that still sample so
        sampling = {name: getattr(self, name) for name in ("temperature", "top_k", "top_p")
                    if getattr(self, name) is not None}
        if sampling:
            kwargs["extra_body"] = sampling
        if tools:
            kwargs["tools"] = [{"name": t.name, "description": t.description or t.name,
                                "input_schema": t.schema()["parameters"]} for t in tools]
            kwargs["tools"][-1].update(cache)
            choice: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "none": "none"}[self.tool_choice]}
            if self.parallel_tool_calls is not None and self.tool_choice != "none":
                choice["disable_parallel_tool_use"] = not self.parallel_tool_calls
            kwargs["tool_choice"] = choice
        return kwargs

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        """Stream the answer: text chunks as they come, then its tool calls together. A refused request or a
        failure mid-answer is a ``ModelError`` (recoverable when retrying may work: overload, rate limit, network)."""
        request = self.request(ctx, tools)
        try:
            stream = await self.client.messages.create(**request)
        except (APIStatusError, APIConnectionError) as exc:
            raise _model_error(exc) from None
        calls: dict[int, list[str]] = {}  # content block index -> [id, name, partial json]
        message_id = ""
        try:
            async for event in _events(stream):
                if isinstance(event, RawContentBlockDeltaEvent):
                    if isinstance(event.delta, TextDelta):
                        if event.delta.text:
                            yield event.delta.text
                    elif isinstance(event.delta, InputJSONDelta) and event.index in calls:
                        calls[event.index][2] += event.delta.partial_json
                elif isinstance(event, RawContentBlockStartEvent):
                    block = event.content_block
                    if isinstance(block, ToolUseBlock):
                        calls[event.index] = [block.id, block.name, ""]
                elif isinstance(event, RawMessageStartEvent):
                    message_id = event.message.id
                    usage = event.message.usage
                    self.usage = Usage(usage.input_tokens, usage.output_tokens,
                                       usage.cache_creation_input_tokens or 0, usage.cache_read_input_tokens or 0)
                elif isinstance(event, RawMessageDeltaEvent):
                    self.usage.output_tokens = event.usage.output_tokens
        finally:
            await stream.close()
        # the calls of one answer, together and in order; the cascade re-stamps the id of its response
        for call_id, name, arguments in (calls[i] for i in sorted(calls)):
            yield ToolCall(call_id, name, arguments or "{}", response_id=message_id)


async def _events(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The stream's events; an error event or a lost connection mid-answer as a ``ModelError``."""
    try:
        async for event in stream:
            yield event
    except (APIStatusError, APIConnectionError) as exc:
        raise _model_error(exc) from None


def _model_error(exc: APIStatusError | APIConnectionError) -> ModelError:
    if isinstance(exc, APIConnectionError):
        return ModelError(f"could not reach Anthropic: {redact(str(exc))}", recoverable=True, code="connection_failed")
    body = exc.body if isinstance(exc.body, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    kind = str(error.get("type") or f"http_{exc.status_code}")
    message = redact(str(error.get("message") or exc.message))
    retry = exc.status_code in (408, 429) or exc.status_code >= 500 or kind in ("overloaded_error", "api_error")
    hint = " (check ANTHROPIC_API_KEY)" if exc.status_code in (401, 403) else ""
    return ModelError(f"Anthropic refused the request: {kind}: {message}{hint}", recoverable=retry, code=kind)


def anthropic_messages(ctx: ChatContext, *, tool_blocks: bool = True) -> tuple[list[str], list[dict[str, Any]]]:
    """The history as the Messages API takes it: the system texts, and the messages.

    System messages before the conversation are the system blocks (the instructions); a system message
    later on (a reply's instructions, say) is user text where it stands, as the API has no system role in
    ``messages``. Consecutive items of one role share a message, so roles alternate; function calls are
    ``tool_use`` blocks of the assistant's message and their outputs ``tool_result`` blocks of the next user
    message (calls without an output, and outputs without a call, are left out). A conversation that starts
    with the agent speaking (or has not started) gets a short user message first, as the API wants one.
    ``tool_blocks=False`` (a request that offers no tools, which the API then refuses tool blocks in) tells the
    calls and their results as text instead.
    """
    called = {i.call_id for i in ctx.items if isinstance(i, FunctionCall)}
    answered = {i.call_id for i in ctx.items if isinstance(i, FunctionCallOutput)}
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, block: dict[str, Any]) -> None:
        if messages and messages[-1]["role"] == role:
            content = messages[-1]["content"]
            if block["type"] == "tool_result":  # results come first in a user message
                at = sum(1 for b in content if b["type"] == "tool_result")
                content.insert(at, block)
            else:
                content.append(block)
        else:
            messages.append({"role": role, "content": [block]})

    for item in ctx.items:
        if isinstance(item, ChatMessage):
            if not item.text:
                continue
            if item.role in ("system", "developer") and not messages:
                system.append(item.text)
            else:
                add("assistant" if item.role == "assistant" else "user", {"type": "text", "text": item.text})
        elif isinstance(item, FunctionCall):
            if item.call_id not in answered:
                continue
            if tool_blocks:
                add("assistant", {"type": "tool_use", "id": item.call_id, "name": item.name,
                                  "input": _arguments(item.arguments)})
            else:
                add("assistant", {"type": "text", "text": f"(called {item.name} with {item.arguments or '{}'})"})
        elif isinstance(item, FunctionCallOutput) and item.call_id in called:
            if tool_blocks:
                add("user", {"type": "tool_result", "tool_use_id": item.call_id, "content": item.output,
                             "is_error": item.is_error})
            else:
                failed = " (an error)" if item.is_error else ""
                add("user", {"type": "text", "text": f"({item.name} returned{failed}: {item.output})"})
    if not messages or messages[0]["role"] == "assistant":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": "(the call begins)"}]})
    return system, messages


def _arguments(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object ``tool_use.input`` is (``{}`` when they are not an object)."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
