"""Agent tools' JSON schemas -> Gemini ``FunctionDeclaration``s (Gemini's OpenAPI-subset dialect).

Gemini's ``Schema`` has no ``additionalProperties``, ``$defs``/``$ref``, ``default``, ``const`` or type
lists; nullability is ``nullable``; ``enum`` only holds strings. The conversion inlines references,
turns ``anyOf [X, null]`` into ``X`` + ``nullable``, keeps non-string enums as a hint in the
description (the tool's own validation still checks the value), and drops what has no equivalent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.genai import types

from agentsession import FunctionTool

_PASS_THROUGH = ("format", "minimum", "maximum", "min_items", "max_items", "min_length", "max_length", "pattern")
_CAMEL = {"minItems": "min_items", "maxItems": "max_items", "minLength": "min_length", "maxLength": "max_length"}


def function_declarations(tools: Sequence[FunctionTool]) -> list[types.FunctionDeclaration]:
    """One ``FunctionDeclaration`` per tool, validated by the SDK's own types."""
    return [function_declaration(tool.schema()) for tool in tools]


def function_declaration(schema: Mapping[str, Any]) -> types.FunctionDeclaration:
    """Convert ``{"name", "description", "parameters"}`` (JSON schema) to a ``FunctionDeclaration``."""
    params = schema.get("parameters") or {}
    defs = {**params.get("definitions", {}), **params.get("$defs", {})}
    converted = convert_schema(params, defs) if params.get("properties") else None
    return types.FunctionDeclaration(
        name=schema["name"],
        description=schema.get("description") or None,
        parameters=types.Schema.model_validate(converted) if converted else None,
    )


def convert_schema(node: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One JSON schema node -> a dict that ``google.genai.types.Schema`` accepts (snake_case keys)."""
    return _convert(node, dict(defs or {}), ())


def _convert(node: Mapping[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            return {"type": "OBJECT", "description": node.get("description") or f"(see {name})"}
        target = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(target, defs, seen + (name,))
    out: dict[str, Any] = {}
    description = node.get("description")
    nullable = False

    options = node.get("anyOf") or node.get("oneOf")
    if options:
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        if len(non_null) == 1:
            out = _convert(non_null[0], defs, seen)
        else:
            out = {"any_of": [_convert(o, defs, seen) for o in non_null]}
    else:
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            nullable = len(kinds) < len(kind)
            if len(kinds) == 1:
                kind = kinds[0]
            else:
                out = {"any_of": [_convert({**node, "type": k}, defs, seen) for k in kinds]}
                kind = None
        if "const" in node:
            out.update(_enum([node["const"]], kind))
        elif "enum" in node:
            out.update(_enum(list(node["enum"]), kind))
        elif isinstance(kind, str):
            out["type"] = kind.upper()
        if kind == "object":
            props = node.get("properties") or {}
            if props:
                out["properties"] = {k: _convert(v, defs, seen) for k, v in props.items()}
                required = [r for r in node.get("required", []) if r in props]
                if required:
                    out["required"] = required
            elif isinstance(node.get("additionalProperties"), Mapping):
                value = _convert(node["additionalProperties"], defs, seen)
                out["description"] = _join(out.get("description"), f"A map from names to {_describe(value)}.")
        elif kind == "array" and isinstance(node.get("items"), Mapping):
            out["items"] = _convert(node["items"], defs, seen)
        for key, value in node.items():
            key = _CAMEL.get(key, key)
            if key in _PASS_THROUGH:
                out[key] = value
    if description:
        out["description"] = _join(description, out.get("description"))
    if nullable:
        out["nullable"] = True
    return out


def _enum(values: list[Any], kind: object) -> dict[str, Any]:
    if all(isinstance(v, str) for v in values):
        return {"type": "STRING", "enum": values}
    json_type = kind if isinstance(kind, str) else _json_type(values)
    hint = "One of: " + ", ".join(json.dumps(v) for v in values) + "."
    return {"type": json_type.upper(), "description": hint}


def _json_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def _describe(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    return f"{str(kind).lower()} values" if kind else "values"


def _join(first: str | None, second: str | None) -> str:
    return " ".join(p for p in (first, second) if p)
