"""Function tools: the decorator, argument validation and safe invocation (schemas: ``_tool_schema``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import functools
import inspect
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, overload

from ._tool_schema import (
    MISSING,
    Field,
    ObjectConv,
    SchemaBuilder,
    UnsupportedType,
    dump_json,
    json_type,
    parse_docstring,
    resolve_hints,
    to_jsonable,
)

__all__ = [
    "FunctionTool",
    "ToolError",
    "ToolResult",
    "collect_tools",
    "function_tool",
]

logger = logging.getLogger("agentsession.tools")

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolError(Exception):
    """Raised by a tool to report a clean error message to the model."""


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call, ready to be sent back to the model."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    duration: float = 0.0
    handoff: Any = field(default=None, repr=False, compare=False)  # the Agent a tool returned to hand over to


# --------------------------------------------------------------------------- FunctionTool


class _InvalidArguments(Exception):
    def __init__(self, details: list[str]) -> None:
        super().__init__("; ".join(details))
        self.details = details


class FunctionTool:
    """A callable exposed to the model, with a JSON schema derived from its signature.

    Also a descriptor: accessed on an instance, a method tool returns a copy bound to it.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None
    is_async: bool

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = 30.0,
        localns: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"function_tool expects a callable, got {fn!r}")
        qualname = getattr(fn, "__qualname__", None) or repr(fn)
        tool_name = name if name is not None else getattr(fn, "__name__", None)
        if not isinstance(tool_name, str) or not _NAME_RE.match(tool_name):
            raise ValueError(
                f"function_tool {qualname}: invalid tool name {tool_name!r} "
                "(1-64 characters among letters, digits, '_' and '-')"
            )
        if timeout is not None and timeout <= 0:
            raise ValueError(f"function_tool {qualname}: timeout must be > 0 or None")

        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        self._has_self = bool(params) and params[0].name == "self" and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
        if self._has_self:
            params = params[1:]
        try:
            hints = resolve_hints(fn, localns)
        except NameError as e:
            raise TypeError(f"function_tool {qualname}: cannot resolve type hints: {e}") from e
        summary, param_docs = parse_docstring(inspect.getdoc(fn))

        builder = SchemaBuilder(localns)
        fields: list[Field] = []
        for p in params:
            where = f"function_tool {qualname}: parameter {p.name!r}"
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"{where}: *args and **kwargs are not supported")
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise TypeError(f"{where}: positional-only parameters are not supported")
            if p.name not in hints:
                raise TypeError(f"{where} has no type annotation")
            try:
                conv = builder.build(hints[p.name])
            except UnsupportedType as e:
                raise TypeError(f"{where} has unsupported type {e}") from None
            conv = SchemaBuilder.with_doc(conv, param_docs.get(p.name))
            required = p.default is inspect.Parameter.empty
            fields.append(Field(p.name, conv, required, MISSING if required else p.default))

        functools.update_wrapper(self, fn)
        self._fn = fn
        self._instance: object | None = None
        self._args = ObjectConv(fields, None, what="argument")
        self.name = tool_name
        self.description = description if description is not None else summary
        self.parameters = self._args.schema()
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)

    # -- descriptor / binding

    def __get__(self, instance: object | None, owner: type | None = None) -> FunctionTool:
        return self if instance is None else self.bind(instance)

    def bind(self, instance: object) -> FunctionTool:
        """Return a copy of this method tool bound to instance (plain functions: self)."""
        if not self._has_self:
            return self
        bound = copy.copy(self)
        bound._instance = instance
        return bound

    @property
    def instance(self) -> object | None:
        """The object this tool is bound to, if any."""
        return self._instance

    @property
    def is_method(self) -> bool:
        """Whether the wrapped function takes ``self``."""
        return self._has_self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._instance is not None:
            return self._fn(self._instance, *args, **kwargs)
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        bound = f" bound to {self._instance!r}" if self._instance is not None else ""
        return f"<FunctionTool {self.name}{bound}>"

    # -- schema / invocation

    def schema(self) -> dict[str, Any]:
        """OpenAI-style function description: name, description, parameters."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }

    def parse_arguments(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        """Validate arguments and coerce them to Python values; raise ValueError on failure."""
        try:
            return self._parse(arguments)
        except _InvalidArguments as e:
            raise ValueError(f"invalid arguments for {self.name}: {e}") from None

    def _parse(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(arguments, str):
            if not arguments.strip():
                data: Any = {}
            else:
                try:
                    data = json.loads(arguments)
                except json.JSONDecodeError as e:
                    raise _InvalidArguments([f"could not parse JSON: {e}"]) from None
        else:
            data = arguments
        if not isinstance(data, Mapping):
            raise _InvalidArguments([f"arguments must be a JSON object, got {json_type(data)}"])
        errors: list[str] = []
        out = self._args.convert(data, "", errors)
        if errors:
            raise _InvalidArguments(errors)
        result: dict[str, Any] = out
        return result

    async def invoke(
        self,
        call_id: str,
        arguments: str | Mapping[str, Any],
        *,
        executor: concurrent.futures.Executor | None = None,
    ) -> ToolResult:
        """Validate arguments and run the tool; failures become error results, never exceptions.

        Sync tools run in ``executor`` (default: the loop's); on timeout they are abandoned,
        async tools are cancelled.
        """
        if self._has_self and self._instance is None:
            raise TypeError(f"tool {self.name!r} is a method: bind it to an instance first")
        loop = asyncio.get_running_loop()
        start = loop.time()

        def result(output: str, is_error: bool = False) -> ToolResult:
            return ToolResult(call_id, self.name, output, is_error, loop.time() - start)

        def error(message: str, **extra: Any) -> ToolResult:
            return result(dump_json({"error": message, **extra}), is_error=True)

        try:
            kwargs = self._parse(arguments)
        except _InvalidArguments as e:
            return error("invalid arguments", details=e.details)

        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                value = await self._run(kwargs, executor, loop)
        except ToolError as e:
            return error(str(e))
        except TimeoutError as e:
            if deadline.expired():
                return error(f"timed out after {self.timeout:g} s")
            return error(self._log_failure(call_id, e))
        except Exception as e:  # noqa: BLE001 - a failing tool must not break the session
            return error(self._log_failure(call_id, e))

        if isinstance(value, str):
            return result(value)
        from ._agent import Agent  # here: _agent imports this module

        if isinstance(value, Agent):
            return replace(result(json.dumps({"result": f"handed over to {type(value).__name__}"})), handoff=value)
        payload = {"result": None} if value is None else to_jsonable(value)
        try:
            return result(json.dumps(payload, ensure_ascii=False, default=str))
        except (TypeError, ValueError) as e:
            return error(self._log_failure(call_id, e))

    async def _run(
        self,
        kwargs: dict[str, Any],
        executor: concurrent.futures.Executor | None,
        loop: asyncio.AbstractEventLoop,
    ) -> Any:
        args = (self._instance,) if self._has_self else ()
        if self.is_async:
            return await self._fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self._fn, *args, **kwargs)
        value = await loop.run_in_executor(executor, call)
        if inspect.isawaitable(value):
            value = await value
        return value

    def _log_failure(self, call_id: str, exc: BaseException) -> str:
        logger.exception(
            "tool %r (call %s) failed", self.name, call_id, exc_info=(type(exc), exc, exc.__traceback__)
        )
        return f"{type(exc).__name__}: {exc}"


@overload
def function_tool(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
) -> FunctionTool: ...


@overload
def function_tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function or method into a FunctionTool (``@function_tool`` or ``@function_tool(...)``)."""
    if fn is not None:
        localns = sys._getframe(1).f_locals
        return FunctionTool(fn, name=name, description=description, timeout=timeout, localns=localns)

    def decorator(f: Callable[..., Any]) -> FunctionTool:
        localns = sys._getframe(1).f_locals
        return FunctionTool(f, name=name, description=description, timeout=timeout, localns=localns)

    return decorator


def collect_tools(obj: object) -> list[FunctionTool]:
    """All FunctionTools defined on obj's class (MRO order, overrides win), bound to obj."""
    seen: set[str] = set()
    tools: list[FunctionTool] = []
    names: dict[str, str] = {}
    for klass in type(obj).__mro__:
        for attr, value in vars(klass).items():
            if attr in seen:
                continue
            seen.add(attr)
            if not isinstance(value, FunctionTool):
                continue
            if value.name in names:
                raise ValueError(
                    f"duplicate tool name {value.name!r} on {type(obj).__qualname__} "
                    f"(attributes {names[value.name]!r} and {attr!r})"
                )
            names[value.name] = attr
            tools.append(value.bind(obj))
    return tools
