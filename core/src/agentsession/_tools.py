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
import os
import queue
import re
import sys
import threading
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
    safe_str,
    to_jsonable,
    valid_text,
)

__all__ = [
    "MAX_OUTPUT",
    "FunctionTool",
    "RawFunctionTool",
    "ToolError",
    "ToolResult",
    "ToolThreads",
    "collect_tools",
    "function_tool",
    "tool_threads",
]

logger = logging.getLogger("agentsession.tools")

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: default bound on a tool's output, in characters: a longer one is cut, and the model is told
MAX_OUTPUT = 50_000
_MAX_DETAILS = 20  # validation errors listed in an "invalid arguments" result


# --------------------------------------------------------------------------- the sync tools' threads


class ToolThreads(concurrent.futures.Executor):
    """Where sync tools run: daemon threads that never hold the interpreter at exit.

    A sync tool that outlives its timeout can't be stopped (Python threads can't be killed): the call is
    answered with a timeout error and the thread is abandoned, still running, until the tool returns
    or the process exits. Unlike ``ThreadPoolExecutor``'s, whose threads are joined at exit (one hung
    tool and the process never ends), these are daemon threads: the process exits whatever they do.
    Threads are started on demand, up to ``max_workers``, and end after ``idle_timeout`` s unused.
    """

    def __init__(self, max_workers: int | None = None, *, idle_timeout: float = 60.0,
                 name: str = "agentsession-tool") -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self.idle_timeout = idle_timeout
        self.name = name
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...],
                                             dict[str, Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._pending = 0
        self._count = 0
        self._shutdown = False

    @property
    def threads(self) -> int:
        """Threads alive now (busy, idle, or abandoned by a timeout)."""
        with self._lock:
            return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot run a tool after the tool threads were shut down")
            self._queue.put((future, fn, args, kwargs))
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self.max_workers:
                self._count += 1
                thread = threading.Thread(target=self._work, name=f"{self.name}-{self._count}", daemon=True)
                self._threads.add(thread)
                thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; with ``cancel_futures`` drop queued ones. Never waits for a running tool."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        future, *_ = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    self._pending -= 1
                    future.cancel()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            try:
                future, fn, args, kwargs = self._queue.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._pending == 0:
                        self._threads.discard(me)
                        return
                continue  # a call came in as this thread was giving up
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - SystemExit from a tool is its error, not ours
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs


_threads: ToolThreads | None = None
_threads_lock = threading.Lock()


def tool_threads() -> ToolThreads:
    """The process's executor for sync tools (made on first use)."""
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = ToolThreads()
        return _threads


def _forget_threads_after_fork() -> None:
    global _threads, _threads_lock
    _threads = None
    _threads_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)


class ToolError(Exception):
    """Raised by a tool to report a clean error message to the model."""


class HandoffTarget:
    """What a tool returns to hand the conversation over to another agent: ``Agent`` is one (it lives above
    this module, which only needs to recognise it)."""

@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call, ready to be sent back to the model."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    duration: float = 0.0
    handoff: HandoffTarget | None = field(default=None, repr=False, compare=False)  # the Agent to hand over to


# --------------------------------------------------------------------------- FunctionTool


_CANCEL_GRACE = 1.0  # seconds a cancelled tool gets to finish before it is abandoned
_abandoned: set[asyncio.Task[Any]] = set()  # tools that ignored their cancellation: kept referenced


class _ToolExited(Exception):
    """A tool called ``sys.exit()``: its error, not the process's."""

    def __init__(self, exit: SystemExit) -> None:
        super().__init__(safe_str(exit))
        self.exit = exit


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
    max_output: int
    is_async: bool

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = 30.0,
        max_output: int = MAX_OUTPUT,
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
        if max_output < 1:
            raise ValueError(f"function_tool {qualname}: max_output must be >= 1 (characters)")

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
        self.max_output = max_output
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
                    data = json.loads(arguments, parse_constant=_reject_constant)
                except RecursionError:
                    raise _InvalidArguments(["could not parse JSON: nested too deeply"]) from None
                except ValueError as e:  # JSONDecodeError, NaN/Infinity, an integer with too many digits
                    raise _InvalidArguments([f"could not parse JSON: {safe_str(e, typed=False)}"]) from None
        else:
            data = arguments
        if not isinstance(data, Mapping):
            raise _InvalidArguments([f"arguments must be a JSON object, got {json_type(data)}"])
        errors: list[str] = []
        out = self._args.convert(data, "", errors)
        if errors:
            if len(errors) > _MAX_DETAILS:
                errors = [*errors[:_MAX_DETAILS], f"... and {len(errors) - _MAX_DETAILS} more"]
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
        """Validate arguments and run the tool; every failure is an error result, never an exception.

        The result's ``output`` is the tool's string, or its value as strict JSON (see ``to_jsonable``:
        ``NaN``/``Infinity`` become strings, invalid Unicode is repaired), at most ``max_output``
        characters. Failures (invalid arguments, an exception, a timeout, a value that can't be JSON,
        an output too long) are ``is_error`` results whose output is a JSON object with an ``"error"``.
        Sync tools run in ``executor`` (default: ``tool_threads()``, daemon threads): on timeout the
        thread is abandoned, still running; async tools are cancelled.
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

        # the tool runs in a task of its own, so that a tool that swallows its cancellation can't hold the
        # call past its timeout (it is abandoned instead, and logged)
        task = loop.create_task(self._run(kwargs, executor, loop), name=f"tool:{self.name}:{call_id}")
        try:
            await asyncio.wait([task], timeout=self.timeout)
        except asyncio.CancelledError:  # the session cancelled the call: the tool goes too
            await self._stop(task, call_id, "was cancelled")
            raise
        if not task.done():
            await self._stop(task, call_id, f"timed out after {self.timeout:g} s")
            return error(f"timed out after {self.timeout:g} s")
        try:
            value = task.result()
        except ToolError as e:
            return error(safe_str(e, typed=False))
        except _ToolExited as e:
            return error(self._log_failure(call_id, e.exit))
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - a failing tool must not break the session
            return error(self._log_failure(call_id, e))

        if isinstance(value, HandoffTarget):
            return replace(result(json.dumps({"result": f"handed over to {type(value).__name__}"})), handoff=value)
        try:
            if isinstance(value, str):
                output = valid_text(value)
            else:
                output = json.dumps({"result": None} if value is None else to_jsonable(value),
                                    ensure_ascii=False, allow_nan=False)
        except Exception as e:  # noqa: BLE001 - Unencodable, or user code (a property, __iter__) raising
            logger.error("tool %r (call %s): its result could not be converted to JSON: %s",
                         self.name, call_id, safe_str(e))
            return error(f"the tool's result could not be converted to JSON: {safe_str(e, typed=False)}")
        if len(output) > self.max_output:
            return self._too_long(output, result)
        return result(output)

    def _too_long(self, output: str, result: Callable[[str, bool], ToolResult]) -> ToolResult:
        logger.warning("tool %r: output of %d characters cut to %d", self.name, len(output), self.max_output)
        message = (f"the tool's output was too long ({len(output)} characters, the limit is {self.max_output}): "
                   "output_start is its beginning")
        keep = self.max_output
        while True:  # JSON escapes can make the start longer than it is: shrink until the whole fits
            text = dump_json({"error": message, "output_start": output[:keep]})
            excess = len(text) - self.max_output
            if excess <= 0 or keep == 0:
                return result(text, True)
            keep = max(0, keep - max(1, excess // 6))  # a character takes 1 to 6 in JSON: never cut too much

    async def _run(
        self,
        kwargs: dict[str, Any],
        executor: concurrent.futures.Executor | None,
        loop: asyncio.AbstractEventLoop,
    ) -> Any:
        args = (self._instance,) if self._has_self else ()
        try:
            if self.is_async:
                return await self._fn(*args, **kwargs)
            ctx = contextvars.copy_context()
            call = functools.partial(ctx.run, self._fn, *args, **kwargs)
            value = await loop.run_in_executor(executor or tool_threads(), call)
            if inspect.isawaitable(value):
                value = await value
            return value
        except SystemExit as e:  # out of a task, asyncio would re-raise it through the event loop
            raise _ToolExited(e) from None

    async def _stop(self, task: asyncio.Task[Any], call_id: str, why: str) -> None:
        """Cancel the tool's task; give it ``_CANCEL_GRACE`` s to finish, then abandon it (still referenced)."""
        task.cancel()
        await asyncio.shield(asyncio.wait([task], timeout=_CANCEL_GRACE))
        if task.done():
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                self._log_failure(call_id, exc)
            if why.startswith("timed out") and not self.is_async:
                logger.warning("sync tool %r (call %s) %s: its thread is abandoned, still running until the "
                               "tool returns", self.name, call_id, why)
            return
        logger.warning("tool %r (call %s) %s and ignored its cancellation for %g s: abandoned, still running",
                       self.name, call_id, why, _CANCEL_GRACE)
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)

    def _log_failure(self, call_id: str, exc: BaseException) -> str:
        logger.exception(
            "tool %r (call %s) failed", self.name, call_id, exc_info=(type(exc), exc, exc.__traceback__)
        )
        return safe_str(exc)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@overload
def function_tool(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    max_output: int = MAX_OUTPUT,
) -> FunctionTool: ...


@overload
def function_tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    max_output: int = MAX_OUTPUT,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    max_output: int = MAX_OUTPUT,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function or method into a FunctionTool (``@function_tool`` or ``@function_tool(...)``).

    ``timeout`` (seconds, or None) bounds each call; ``max_output`` (characters) bounds what goes back to the
    model. Whatever goes wrong in a call becomes an error result the model is told about, never an
    exception in the session. Async tools run on the event loop and are cancelled at the timeout. Sync
    tools run on ``tool_threads()``, daemon threads: a sync tool still running at its timeout can't be
    stopped, so its thread is abandoned (it runs until the tool returns, or the process exits, which it
    never delays). Prefer async tools for anything that can hang.
    """
    if fn is not None:
        localns = sys._getframe(1).f_locals
        return FunctionTool(fn, name=name, description=description, timeout=timeout, max_output=max_output,
                            localns=localns)

    def decorator(f: Callable[..., Any]) -> FunctionTool:
        localns = sys._getframe(1).f_locals
        return FunctionTool(f, name=name, description=description, timeout=timeout, max_output=max_output,
                            localns=localns)

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


# --------------------------------------------------------------------------- tools given by a raw JSON schema


class _RawArguments:
    """The arguments of a tool known only by its JSON schema: a JSON object with the schema's required keys
    (the tool's owner, an MCP server say, checks the rest)."""

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        required = parameters.get("required")
        self.required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []

    def convert(self, value: Mapping[str, Any], path: str, errors: list[str]) -> dict[str, Any]:
        errors.extend(f"{name}: missing required argument" for name in self.required if name not in value)
        return dict(value)


class RawFunctionTool(FunctionTool):
    """A tool given by name, description and a raw JSON schema (an MCP server's), not by a signature.

    ``fn(**arguments)`` is an async callable that gets the call's arguments as they came; they are checked
    only to be a JSON object with the schema's required keys. Everything else (timeouts, output limits,
    errors as results) is ``FunctionTool.invoke``'s.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        timeout: float | None = 30.0,
        max_output: int = MAX_OUTPUT,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"RawFunctionTool {name!r}: fn must be an async function")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"RawFunctionTool: invalid tool name {name!r} "
                             "(1-64 characters among letters, digits, '_' and '-')")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"RawFunctionTool {name!r}: timeout must be > 0 or None")
        if max_output < 1:
            raise ValueError(f"RawFunctionTool {name!r}: max_output must be >= 1 (characters)")
        schema = dict(parameters)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        self._fn = fn
        self._instance = None
        self._has_self = False
        self._args = _RawArguments(schema)  # type: ignore[assignment]
        self.name = name
        self.description = description
        self.parameters = schema
        self.timeout = timeout
        self.max_output = max_output
        self.is_async = True

    def __repr__(self) -> str:
        return f"<RawFunctionTool {self.name}>"
