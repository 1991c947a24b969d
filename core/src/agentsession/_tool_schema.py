"""Tool schemas: JSON schemas and argument conversion from type hints, and docstrings (Google, reST, NumPy)."""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import enum
import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docstring_parser

MISSING: Any = object()  # no value: a missing argument, or a conversion that failed


# --------------------------------------------------------------------------- docstrings


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into (description, {param: description}); Google, reST (``:param x:``) and NumPy
    styles are told apart by ``docstring-parser``, as VideoSDK's tools do. A parameter's description is one
    line (its whitespace collapsed); ``*args`` is ``args``."""
    if not doc:
        return "", {}
    parsed = docstring_parser.parse(inspect.cleandoc(doc))  # AUTO: the style that reads it best
    parts = [p.strip() for p in (parsed.short_description, parsed.long_description) if p and p.strip()]
    description = ("\n\n" if parsed.blank_after_short_description else "\n").join(parts)
    params = {p.arg_name.lstrip("*"): " ".join((p.description or "").split()) for p in parsed.params}
    return description, params


# --------------------------------------------------------------------------- type converters


class UnsupportedType(Exception):
    pass


def json_type(value: object) -> str:
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


class Unencodable(ValueError):
    """A value that cannot be converted to JSON; the message says what and where (``$.a[0]``)."""


#: containers nested deeper than this are not converted (a tool's result, an argument's default)
MAX_DEPTH = 100


def dump_json(value: object) -> str:
    """Strict JSON text (no NaN, valid Unicode) for ``value``; never raises."""
    try:
        return json.dumps(to_jsonable(value), ensure_ascii=False, allow_nan=False)
    except Exception:  # noqa: BLE001 - only used for messages: a placeholder is better than a crash
        return json.dumps(f"<{type(value).__name__} that cannot be shown as JSON>")


def to_jsonable(value: Any, *, fallback: bool = True) -> Any:
    """Plain, strict-JSON data for ``value``; raises ``Unencodable`` saying what and where.

    Enums become their values, dataclasses objects, tuples and sets arrays, bytes text (UTF-8, bad bytes
    replaced). ``NaN``, ``Infinity`` and ``-Infinity`` become those strings (strict JSON has no such
    numbers). Strings that are not valid Unicode (lone surrogates) get U+FFFD in their place. Any other
    object becomes its ``str()`` (its ``repr()`` if ``str()`` raises); with ``fallback=False`` it is
    ``Unencodable`` instead. Circular references, containers nested deeper than ``MAX_DEPTH``, and
    integers longer than Python converts to text are ``Unencodable``.
    """
    return _Encoder(fallback).convert(value, "$", 0)


def valid_text(text: str) -> str:
    """``text`` as an exact ``str`` that encodes as UTF-8: lone surrogates become U+FFFD."""
    text = str.__str__(text)  # an exact str, whatever a subclass's __str__ does
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


_FLOATS = {math.inf: "Infinity", -math.inf: "-Infinity"}


class _Encoder:
    def __init__(self, fallback: bool) -> None:
        self.fallback = fallback
        self.active: set[int] = set()  # containers on the path being converted: a repeat is a cycle

    def convert(self, value: Any, path: str, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return valid_text(value)
        if isinstance(value, int):
            if value.bit_length() > 1000:  # str() has a digit limit (sys.get_int_max_str_digits)
                try:
                    int.__repr__(value)
                except ValueError:
                    raise Unencodable(f"the integer at {path} has too many digits to be written") from None
            return int(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "NaN"
            return _FLOATS.get(value, float(value))
        if isinstance(value, enum.Enum):
            return self.convert(value.value, path, depth)
        if isinstance(value, bytes | bytearray | memoryview):
            return valid_text(bytes(value).decode("utf-8", "replace"))
        is_dataclass = dataclasses.is_dataclass(value) and not isinstance(value, type)
        if not (is_dataclass or isinstance(value, Mapping | list | tuple | set | frozenset)):
            return self._other(value, path)
        if depth >= MAX_DEPTH:
            raise Unencodable(f"nested deeper than {MAX_DEPTH} levels at {path}")
        if id(value) in self.active:
            raise Unencodable(f"circular reference at {path}")
        self.active.add(id(value))
        try:
            if is_dataclass:
                return {f.name: self.convert(getattr(value, f.name), f"{path}.{f.name}", depth + 1)
                        for f in dataclasses.fields(value)}
            if isinstance(value, Mapping):
                out: dict[str, Any] = {}
                for k, v in value.items():
                    key = self._key(k, path)
                    out[key] = self.convert(v, f"{path}.{key[:40]}", depth + 1)
                return out
            return [self.convert(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        finally:
            self.active.discard(id(value))

    def _key(self, key: Any, path: str) -> str:
        if isinstance(key, str):
            return valid_text(key)
        try:
            return valid_text(str(key))
        except Exception as e:  # noqa: BLE001 - any failure of user code is reported, not raised
            raise Unencodable(f"a {type(key).__name__} key at {path} cannot be written: {safe_str(e)}") from None

    def _other(self, value: Any, path: str) -> str:
        if not self.fallback:
            raise Unencodable(f"a {type(value).__name__} at {path} is not JSON data")
        for show in (str, repr):
            try:
                text = show(value)
            except Exception:  # noqa: BLE001, S112 - try the next way of showing it
                continue
            if isinstance(text, str):
                return valid_text(text)
        raise Unencodable(f"a {type(value).__name__} at {path} has no text form (its str() and repr() raise)")


def safe_str(exc: BaseException, *, typed: bool = True) -> str:
    """``"Type: message"`` for an exception (``typed=False``: the message alone), even when its ``str()``
    raises (then the type's name); at most 2000 characters of valid Unicode."""
    name = type(exc).__name__
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error itself
        return name
    text = valid_text((f"{name}: {message}" if typed else message) if message else name)
    return text if len(text) <= 2000 else text[:1999] + "…"


def _match_choice(value: object, choices: tuple[Any, ...]) -> Any:
    """Return the choice equal to value (bools never match numbers), or MISSING."""
    for choice in choices:
        if isinstance(choice, bool) or isinstance(value, bool):
            if type(choice) is type(value) and choice == value:
                return choice
        elif isinstance(choice, int | float) and isinstance(value, int | float):
            if choice == value:
                return choice
        elif type(choice) is type(value) and choice == value:
            return choice
    return MISSING


def _types_schema(values: tuple[Any, ...]) -> str | list[str]:
    kinds: list[str] = []
    for v in values:
        t = json_type(v)
        if t not in ("null", "boolean", "integer", "number", "string"):
            raise UnsupportedType(f"value {v!r} is not a JSON scalar")
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
        return json_type(value) in self.labels

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        raise NotImplementedError

    def _mismatch(self, value: object, path: str, errors: list[str]) -> Any:
        errors.append(f"{path}: expected {' or '.join(self.labels)}, got {json_type(value)}")
        return MISSING


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
        return json_type(value) == self.kind

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
        t = json_type(value)
        return t in self.labels or (t == "integer" and "number" in self.labels)

    def convert(self, value: Any, path: str, errors: list[str]) -> Any:
        if not self.accepts(value):
            return self._mismatch(value, path, errors)
        match = _match_choice(value, self.values)
        if match is MISSING:
            errors.append(f"{path}: {dump_json(value)} is not one of {dump_json(list(self.values))}")
            return MISSING
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
        return MISSING


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
            return MISSING
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
        out = {k: self.value.convert(v, f"{path}[{dump_json(k)}]", errors) for k, v in value.items()}
        return MISSING if len(errors) > n else out


@dataclass
class Field:
    name: str
    conv: _Conv
    required: bool
    default: Any = MISSING


class ObjectConv(_Conv):
    """Dataclass, TypedDict or the top-level parameter object."""

    labels = ("object",)

    def __init__(
        self,
        fields: list[Field],
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
            if f.default is not MISSING:
                try:
                    s["default"] = to_jsonable(f.default, fallback=False)
                except Unencodable:
                    pass
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
            return MISSING
        if self.factory is None:
            return out
        try:
            return self.factory(**out)
        except Exception as e:  # noqa: BLE001 - e.g. a dataclass's __post_init__ rejecting a value
            errors.append(f"{path or self.what}: {safe_str(e)}")
            return MISSING


def resolve_hints(obj: Any, localns: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except NameError:
        if localns is None:
            raise
        return typing.get_type_hints(obj, localns=dict(localns), include_extras=True)


class SchemaBuilder:
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
            raise UnsupportedType(f"{tp!r} (only tuple[X, ...] is supported)")
        if origin in (dict, collections.abc.Mapping):
            if args[0] is not str:
                raise UnsupportedType(f"{tp!r} (dict keys must be str)")
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
        raise UnsupportedType(repr(tp))

    def _object(self, cls: type) -> _Conv:
        if cls in self.building:
            raise UnsupportedType(f"{cls.__qualname__} (recursive types are not supported)")
        self.building.add(cls)
        try:
            try:
                hints = resolve_hints(cls, self.localns)
            except NameError as e:
                raise UnsupportedType(f"{cls.__qualname__} (cannot resolve type hints: {e})") from e
            doc = cls.__doc__ or ""
            if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
                doc = ""  # auto-generated by @dataclass
            summary, field_docs = parse_docstring(doc)
            fields: list[Field] = []
            factory: Callable[..., Any] | None = None
            if dataclasses.is_dataclass(cls):
                factory = cls
                for f in dataclasses.fields(cls):
                    if not f.init:
                        continue
                    conv = self.with_doc(self.build(hints[f.name]), f.metadata.get("description"))
                    conv = self.with_doc(conv, field_docs.get(f.name))
                    default: Any = MISSING
                    if f.default is not dataclasses.MISSING:
                        default = f.default
                    required = default is MISSING and f.default_factory is dataclasses.MISSING
                    fields.append(Field(f.name, conv, required, default))
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
                    conv = self.with_doc(self.build(hint), field_docs.get(key))
                    fields.append(Field(key, conv, required))
            obj = ObjectConv(fields, factory)
            obj.fallback_description = summary or None
            return obj
        finally:
            self.building.discard(cls)

    @staticmethod
    def with_doc(conv: _Conv, doc: object) -> _Conv:
        if isinstance(doc, str) and doc and not conv.description:
            conv = copy.copy(conv)
            conv.description = doc
        return conv
