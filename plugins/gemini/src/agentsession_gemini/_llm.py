"""``GeminiLLM``: a text chat ``LLM`` on ``google.genai``'s ``client.aio.models.generate_content_stream``."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from google.genai import errors, types

from agentsession import (
    LLM,
    ChatContext,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    ModelError,
    ToolCall,
)

from ._schema import function_declarations
from ._shared import Credentials, api_error, response_payload

DEFAULT_LLM_MODEL = "gemini-2.5-flash"
ToolChoice = Literal["auto", "required", "none"]
_TOOL_MODES = {"auto": types.FunctionCallingConfigMode.AUTO, "required": types.FunctionCallingConfigMode.ANY,
               "none": types.FunctionCallingConfigMode.NONE}
# finish reasons that mean the answer was refused or broken, when nothing came before them
_FAILED_FINISH = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL"}


@dataclass(frozen=True)
class _Call:
    """What the API said about a function call that ``ToolCall`` does not carry."""

    name: str
    api_id: str | None
    signature: bytes | None


class GeminiLLM(LLM):
    """Gemini (``streamGenerateContent``) as a cascade ``LLM``: text deltas and tool calls.

    System messages become ``system_instruction``; user/assistant messages become ``user``/``model``
    turns; ``FunctionCall``/``FunctionCallOutput`` items become ``function_call``/``function_response``
    parts (a model turn's calls together, their responses together in the next user turn). A call
    without an output (or an output without its call) is left out: Gemini rejects unmatched pairs.
    With no conversation yet (a greeting), the last system message is sent as the user turn.
    Function calls are streamed as ``ToolCall``s with the API's id, or a generated one; the API's id and
    thought signature are kept and sent back with the call. A sampling or thinking setting left at ``None``
    is not sent (the model's default applies); ``tool_choice`` is sent with requests that offer tools.
    """

    provider = "gemini"

    def __init__(
        self,
        *,
        model: str = DEFAULT_LLM_MODEL,
        api_key: str | None = None,
        vertexai: bool = False,
        project: str | None = None,
        location: str | None = None,
        temperature: float | None = None,
        http_options: types.HttpOptions | None = None,
        tool_choice: ToolChoice | None = None,
        max_output_tokens: int | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        seed: int | None = None,
        safety_settings: Sequence[types.SafetySetting | dict[str, Any]] | None = None,
        thinking_budget: int | None = None,
        thinking_level: str | None = None,
        include_thoughts: bool | None = None,
    ) -> None:
        if tool_choice is not None and tool_choice not in _TOOL_MODES:
            raise ValueError(f"tool_choice must be one of {sorted(_TOOL_MODES)} or None, got {tool_choice!r}")
        self.model = model
        self.vertexai = vertexai
        self.project = project
        self.location = location
        self.temperature = temperature
        self.tool_choice = tool_choice
        self.max_output_tokens = max_output_tokens
        self.top_p = top_p
        self.top_k = top_k
        self.presence_penalty = presence_penalty
        self.frequency_penalty = frequency_penalty
        self.seed = seed
        self.safety_settings = [types.SafetySetting.model_validate(s) for s in safety_settings or ()] or None
        self.thinking_budget = thinking_budget
        self.thinking_level = thinking_level
        self.include_thoughts = include_thoughts
        self._credentials = Credentials(
            "GeminiLLM", api_key=api_key, vertexai=vertexai, project=project, location=location,
            http_options=http_options,
        )
        self._calls: dict[str, _Call] = {}

    def __repr__(self) -> str:
        return f"<GeminiLLM model={self.model!r} key={self._credentials!r}>"

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        system, contents = self._convert(ctx)
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
            top_p=self.top_p,
            top_k=self.top_k,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            seed=self.seed,
            safety_settings=self.safety_settings,
            thinking_config=self._thinking(),
            tools=[types.Tool(function_declarations=function_declarations(tools))] if tools else None,
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=_TOOL_MODES[self.tool_choice])
            ) if tools and self.tool_choice else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        client = self._credentials.client()
        produced = False
        try:
            stream = await client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            try:
                response_id = ""
                async for chunk in stream:
                    response_id = response_id or chunk.response_id or f"gemini-{uuid.uuid4().hex[:12]}"
                    for out in self._outputs(chunk, produced, response_id):
                        produced = True
                        yield out
            finally:
                if isinstance(stream, AsyncGenerator):
                    await stream.aclose()
        except errors.APIError as exc:
            raise api_error(exc) from None
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"Gemini request failed: {self._credentials.describe(exc)}", recoverable=True) from None

    async def aclose(self) -> None:
        await self._credentials.aclose()

    # ------------------------------------------------------------------ helpers

    def _thinking(self) -> types.ThinkingConfig | None:
        if self.thinking_budget is None and self.thinking_level is None and self.include_thoughts is None:
            return None
        return types.ThinkingConfig.model_validate({
            "thinking_budget": self.thinking_budget, "thinking_level": self.thinking_level,
            "include_thoughts": self.include_thoughts,
        })

    def _outputs(self, chunk: types.GenerateContentResponse, produced: bool, response_id: str) -> list[str | ToolCall]:
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            why = feedback.block_reason_message or feedback.block_reason.value
            raise ModelError(f"Gemini blocked the prompt: {why}", recoverable=True, code="blocked")
        if not chunk.candidates:
            return []
        candidate = chunk.candidates[0]
        out: list[str | ToolCall] = []
        for part in (candidate.content.parts or []) if candidate.content else []:
            if part.function_call is not None:
                out.append(self._tool_call(part.function_call, part.thought_signature, response_id))
            elif part.text and not part.thought:
                out.append(part.text)
        finish = candidate.finish_reason.value if candidate.finish_reason else ""
        if not out and not produced and finish in _FAILED_FINISH:
            detail = f": {candidate.finish_message}" if candidate.finish_message else ""
            raise ModelError(f"Gemini stopped the answer ({finish}){detail}", recoverable=True, code=finish.lower())
        return out

    def _tool_call(self, call: types.FunctionCall, signature: bytes | None, response_id: str) -> ToolCall:
        call_id = call.id or f"call_{uuid.uuid4().hex[:12]}"
        name = call.name or ""
        self._calls[call_id] = _Call(name, call.id, signature)
        # the API's response id; the cascade re-stamps it with the id of the response it is generating
        return ToolCall(call_id, name, json.dumps(call.args or {}), response_id=response_id)

    def _convert(self, ctx: ChatContext) -> tuple[str, list[types.Content]]:
        """The system instruction and the turns for ``ctx``."""
        called = {i.call_id for i in ctx if isinstance(i, FunctionCall)}
        answered = {i.call_id for i in ctx if isinstance(i, FunctionCallOutput)}
        system: list[str] = []
        contents: list[types.Content] = []
        for item in ctx:
            if isinstance(item, ChatMessage):
                if item.role in ("system", "developer"):
                    if item.text.strip():
                        system.append(item.text)
                    continue
                if not item.text.strip():
                    continue
                role = "user" if item.role == "user" else "model"
                _add(contents, role, types.Part(text=item.text), "text")
            elif isinstance(item, FunctionCall):
                if item.call_id in answered:
                    _add(contents, "model", self._call_part(item), "call")
            elif isinstance(item, FunctionCallOutput) and item.call_id in called:
                _add(contents, "user", self._response_part(item), "response")
        if not contents and system:
            # Gemini needs a turn: with no conversation yet (a greeting), the latest instruction is the prompt
            contents.append(types.Content(role="user", parts=[types.Part(text=system.pop())]))
        return "\n\n".join(system), contents

    def _call_part(self, item: FunctionCall) -> types.Part:
        known = self._calls.get(item.call_id)
        try:
            args = json.loads(item.arguments) if item.arguments.strip() else {}
        except ValueError:
            args = {"arguments": item.arguments}
        return types.Part(
            function_call=types.FunctionCall(
                id=known.api_id if known else None,
                name=item.name or (known.name if known else ""),
                args=args if isinstance(args, dict) else {"arguments": args},
            ),
            thought_signature=known.signature if known else None,
        )

    def _response_part(self, item: FunctionCallOutput) -> types.Part:
        known = self._calls.get(item.call_id)
        return types.Part(
            function_response=types.FunctionResponse(
                id=known.api_id if known else None,
                name=item.name or (known.name if known else ""),
                response=response_payload(item.output, item.is_error),
            )
        )


def _add(contents: list[types.Content], role: str, part: types.Part, kind: str) -> None:
    """Append ``part`` to the last turn if it has the same role and compatible parts, else start a turn.

    A model turn holds its text, then its calls; a user turn holds either text or function responses.
    """
    last = contents[-1] if contents else None
    if last is not None and last.role == role and last.parts:
        has_responses = any(p.function_response is not None for p in last.parts)
        if role == "model" or has_responses == (kind == "response"):
            if kind == "text" and role == "model":
                # text the session recorded after the turn's calls still belongs before them
                at = next((i for i, p in enumerate(last.parts) if p.function_call is not None), len(last.parts))
                last.parts.insert(at, part)
            else:
                last.parts.append(part)
            return
    contents.append(types.Content(role=role, parts=[part]))
