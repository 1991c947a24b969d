"""Function tools: JSON schemas from type hints, argument validation and safe invocation."""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import copy
import dataclasses
import enum
import functools
import inspect
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

__all__ = [
    "FunctionTool",
    "ToolError",
    "ToolResult",
    "collect_tools",
    "function_tool",
]

logger = logging.getLogger("agentsession.tools")

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MISSING: Any = object()


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


# --------------------------------------------------------------------------- docstrings

_SECTION_RE = re.compile(r"^\s*([A-Z][A-Za-z ]*):\s*$")
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "attributes"}
_KNOWN_SECTIONS = _PARAM_SECTIONS | {
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "example",
    "examples",
    "note",
    "notes",
    "see also",
    "warning",
    "warnings",
    "todo",
    "keyword args",
    "keyword arguments",
    "other parameters",
}
_ENTRY_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {param: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    body: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    section_indent = 0
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        m = _SECTION_RE.match(line)
        if m and m.group(1).strip().lower() in _KNOWN_SECTIONS and (
            section is None or _indent(line) <= section_indent
        ):
            section = m.group(1).strip().lower()
            section_indent = _indent(line)
            entry_indent = None
            current = None
            continue
        if section is None:
            body.append(line.rstrip())
            continue
        if section not in _PARAM_SECTIONS or not line.strip():
            continue
        ind = _indent(line)
        if entry_indent is None or ind <= entry_indent:
            em = _ENTRY_RE.match(line.strip())
            if em:
                entry_indent = ind
                current = em.group(1)
                params[current] = em.group(2).strip()
                continue
        if current is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
    return "\n".join(body).strip(), params


# --------------------------------------------------------------------------- type converters


class _Unsupported(Exception):
    pass


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_jsonable(value: Any) -> Any:
    """Convert Enums, dataclasses, tuples and sets into plain JSON-compatible values."""
    if isinstance(value, enum.Enum):
        return _to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_to_jsonable(v) for v in value]
    return value


def _match_choice(value: object, choices: tuple[Any, ...]) -> Any:
    """Return the choice equal to value (bools never match numbers), or _MISSING."""
    for choice in choices:
        if isinstance(choice, bool) or isinstance(value, bool):
            if type(choice) is type(value) and choice == value:
                return choice
        elif isinstance(choice, int | float) and isinstance(value, int | float):
            if choice == value:
                return choice
        elif type(choice) is type(value) and choice == value:
            return choice
    return _MISSING


def _types_schema(values: tuple[Any, ...]) -> str | list[str]:
    kinds: list[str] = []
    for v in values:
        t = _json_type(v)
        if t not in ("null", "boolean", "integer", "number", "string"):
            raise _Unsupported(f"value {v!r} is not a JSON scalar")
        if t not in kinds:
            kinds.append(t)
    if "integer" in kinds and "number" in kinds:
        kinds.remove("integer")
    return kinds[0] if len(kinds) == 1 else kinds


class _Conv:
    """Schema generator + validator/coercer for one annotation."""

    labels: tuple[str, ...] = ()
    description: str | None = None
    fallback_description: str | None = None  # e.g. a dataclass docstring

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def full_schema(self) -> dict[str, Any]:
        s = self.schema()
        description = self.description or self.fallback_description
        if description:
            s["description"] = description
        return s

    def accepts(self, value: object) -> bool:
        return _json_type(value) in self.labels

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        raise NotImplementedError

    def _mismatch(self, value: object, path: str, errors: list[str]) -> Any:
        errors.append(f"{path}: expected {' or '.join(self.labels)}, got {_json_type(value)}")
        return _MISSING


class _Scalar(_Conv):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.labels = (kind,)

    def schema(self) -> dict[str, Any]:
        return {"type": self.kind}

    def accepts(self, value: object) -> bool:
        if self.kind == "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
        if self.kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        return _json_type(value) == self.kind

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not self.accepts(value):
            return self._mismatch(value, path, errors)
        if self.kind == "integer":
            return int(value)
        if self.kind == "number":
            return float(value)
        return value


class _Choices(_Conv):
    """Literal[...] values or Enum members."""

    def __init__(self, values: tuple[Any, ...], members: tuple[Any, ...]) -> None:
        self.values = values
        self.members = members
        t = _types_schema(values)
        self.type_schema = t
        self.labels = (t,) if isinstance(t, str) else tuple(t)

    def schema(self) -> dict[str, Any]:
        return {"type": self.type_schema, "enum": list(self.values)}

    def accepts(self, value: object) -> bool:
        t = _json_type(value)
        return t in self.labels or (t == "integer" and "number" in self.labels)

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not self.accepts(value):
            return self._mismatch(value, path, errors)
        match = _match_choice(value, self.values)
        if match is _MISSING:
            errors.append(f"{path}: {_dump(value)} is not one of {_dump(list(self.values))}")
            return _MISSING
        return self.members[self.values.index(match)]


class _Null(_Conv):
    labels = ("null",)

    def schema(self) -> dict[str, Any]:
        return {"type": "null"}

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        return None if value is None else self._mismatch(value, path, errors)


class _Union(_Conv):
    def __init__(self, options: list[_Conv]) -> None:
        self.options = options
        labels: list[str] = []
        for opt in options:
            labels.extend(lbl for lbl in opt.labels if lbl not in labels)
        self.labels = tuple(labels)

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [o.full_schema() for o in self.options]}

    def accepts(self, value: object) -> bool:
        return any(o.accepts(value) for o in self.options)

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        candidates = [o for o in self.options if o.accepts(value)]
        if not candidates:
            return self._mismatch(value, path, errors)
        first_errors: list[str] | None = None
        for opt in candidates:
            errs: list[str] = []
            out = opt.convert(value, path, errs)
            if not errs:
                return out
            if first_errors is None:
                first_errors = errs
        errors.extend(first_errors or ())
        return _MISSING


class _Array(_Conv):
    labels = ("array",)

    def __init__(self, item: _Conv, as_tuple: bool) -> None:
        self.item = item
        self.as_tuple = as_tuple

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.full_schema()}

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list | tuple):
            return self._mismatch(value, path, errors)
        n = len(errors)
        out = [self.item.convert(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        if len(errors) > n:
            return _MISSING
        return tuple(out) if self.as_tuple else out


class _Dict(_Conv):
    labels = ("object",)

    def __init__(self, value: _Conv) -> None:
        self.value = value

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.full_schema()}

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            return self._mismatch(value, path, errors)
        n = len(errors)
        out = {k: self.value.convert(v, f"{path}[{_dump(k)}]", errors) for k, v in value.items()}
        return _MISSING if len(errors) > n else out


@dataclass
class _Field:
    name: str
    conv: _Conv
    required: bool
    default: Any = _MISSING


class _Object(_Conv):
    """Dataclass, TypedDict or the top-level parameter object."""

    labels = ("object",)

    def __init__(
        self,
        fields: list[_Field],
        factory: Callable[..., Any] | None,
        what: str = "field",
    ) -> None:
        self.fields = {f.name: f for f in fields}
        self.factory = factory
        self.what = what

    def schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in self.fields.values():
            s = f.conv.full_schema()
            if f.default is not _MISSING:
                default = _to_jsonable(f.default)
                try:
                    json.dumps(default)
                except (TypeError, ValueError):
                    pass
                else:
                    s["default"] = default
            props[f.name] = s
        return {
            "type": "object",
            "properties": props,
            "required": [f.name for f in self.fields.values() if f.required],
            "additionalProperties": False,
        }

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, Mapping):
            return self._mismatch(value, path, errors)
        prefix = f"{path}." if path else ""
        n = len(errors)
        out: dict[str, Any] = {}
        for key in value:
            if key not in self.fields:
                errors.append(f"{prefix}{key}: unexpected {self.what}")
        for f in self.fields.values():
            if f.name in value:
                out[f.name] = f.conv.convert(value[f.name], prefix + f.name, errors)
            elif f.required:
                errors.append(f"{prefix}{f.name}: missing required {self.what}")
        if len(errors) > n:
            return _MISSING
        return self.factory(**out) if self.factory is not None else out


def _resolve_hints(obj: Any, localns: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except NameError:
        if localns is None:
            raise
        return typing.get_type_hints(obj, localns=dict(localns), include_extras=True)


class _Builder:
    def __init__(self, localns: Mapping[str, Any] | None) -> None:
        self.localns = localns
        self.building: set[type] = set()

    def build(self, tp: Any) -> _Conv:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            conv = self.build(args[0])
            for meta in args[1:]:
                if isinstance(meta, str):
                    conv = copy.copy(conv)
                    conv.description = meta
            return conv
        if origin is typing.Required or origin is typing.NotRequired:
            return self.build(args[0])
        if tp is None or tp is type(None):
            return _Null()
        if origin is typing.Union or origin is types.UnionType:
            options = [self.build(a) for a in args if a is not type(None)]
            if type(None) in args:
                options.append(_Null())
            return options[0] if len(options) == 1 else _Union(options)
        if origin is typing.Literal:
            return _Choices(args, args)
        if origin in (list, collections.abc.Sequence):
            return _Array(self.build(args[0]), as_tuple=False)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return _Array(self.build(args[0]), as_tuple=True)
            raise _Unsupported(f"{tp!r} (only tuple[X, ...] is supported)")
        if origin in (dict, collections.abc.Mapping):
            if args[0] is not str:
                raise _Unsupported(f"{tp!r} (dict keys must be str)")
            return _Dict(self.build(args[1]))
        if hasattr(tp, "__supertype__"):  # typing.NewType
            return self.build(tp.__supertype__)
        if isinstance(tp, type) and origin is None:
            if issubclass(tp, enum.Enum):
                members = tuple(tp)
                return _Choices(tuple(m.value for m in members), members)
            if tp is bool:
                return _Scalar("boolean")
            if tp is int:
                return _Scalar("integer")
            if tp is float:
                return _Scalar("number")
            if tp is str:
                return _Scalar("string")
            if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
                return self._object(tp)
        raise _Unsupported(repr(tp))

    def _object(self, cls: type) -> _Conv:
        if cls in self.building:
            raise _Unsupported(f"{cls.__qualname__} (recursive types are not supported)")
        self.building.add(cls)
        try:
            try:
                hints = _resolve_hints(cls, self.localns)
            except NameError as e:
                raise _Unsupported(f"{cls.__qualname__} (cannot resolve type hints: {e})") from e
            doc = cls.__doc__ or ""
            if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
                doc = ""  # auto-generated by @dataclass
            summary, field_docs = parse_docstring(doc)
            fields: list[_Field] = []
            factory: Callable[..., Any] | None = None
            if dataclasses.is_dataclass(cls):
                factory = cls
                for f in dataclasses.fields(cls):
                    if not f.init:
                        continue
                    conv = self._with_doc(self.build(hints[f.name]), f.metadata.get("description"))
                    conv = self._with_doc(conv, field_docs.get(f.name))
                    default: Any = _MISSING
                    if f.default is not dataclasses.MISSING:
                        default = f.default
                    required = default is _MISSING and f.default_factory is dataclasses.MISSING
                    fields.append(_Field(f.name, conv, required, default))
            else:
                required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
                for key, hint in hints.items():
                    # Required/NotRequired are invisible to __required_keys__ when
                    # annotations are strings, so look at the resolved hint as well.
                    origin = typing.get_origin(hint)
                    if origin is typing.Annotated:
                        origin = typing.get_origin(typing.get_args(hint)[0])
                    required = (
                        origin is typing.Required
                        or (origin is not typing.NotRequired and key in required_keys)
                    )
                    conv = self._with_doc(self.build(hint), field_docs.get(key))
                    fields.append(_Field(key, conv, required))
            obj = _Object(fields, factory)
            obj.fallback_description = summary or None
            return obj
        finally:
            self.building.discard(cls)

    @staticmethod
    def _with_doc(conv: _Conv, doc: object) -> _Conv:
        if isinstance(doc, str) and doc and not conv.description:
            conv = copy.copy(conv)
            conv.description = doc
        return conv


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
            hints = _resolve_hints(fn, localns)
        except NameError as e:
            raise TypeError(f"function_tool {qualname}: cannot resolve type hints: {e}") from e
        summary, param_docs = parse_docstring(inspect.getdoc(fn))

        builder = _Builder(localns)
        fields: list[_Field] = []
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
            except _Unsupported as e:
                raise TypeError(f"{where} has unsupported type {e}") from None
            conv = _Builder._with_doc(conv, param_docs.get(p.name))
            required = p.default is inspect.Parameter.empty
            fields.append(_Field(p.name, conv, required, _MISSING if required else p.default))

        functools.update_wrapper(self, fn)
        self._fn = fn
        self._instance: object | None = None
        self._args = _Object(fields, None, what="argument")
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
            raise _InvalidArguments([f"arguments must be a JSON object, got {_json_type(data)}"])
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
            return result(_dump({"error": message, **extra}), is_error=True)

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
        payload = {"result": None} if value is None else _to_jsonable(value)
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
