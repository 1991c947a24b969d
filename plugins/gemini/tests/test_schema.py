"""Tool schemas in Gemini's dialect."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from google.genai import types

from agentsession import function_tool
from agentsession_gemini import convert_schema, function_declaration, function_declarations


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    """A postal address.

    Attributes:
        street: street and number
    """

    street: str
    zip_code: str | None = None


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_agent_tool_schema_becomes_a_valid_gemini_declaration() -> None:
    @function_tool
    def book(
        city: str,
        unit: Literal["c", "f"] = "c",
        nights: int | None = None,
        level: Level = Level.LOW,
        address: Address | None = None,
        guests: list[Address] | None = None,
        tags: dict[str, int] | None = None,
    ) -> str:
        """Book a room.

        Args:
            city: the city's name
            unit: temperature unit
        """
        return ""

    declaration = function_declaration(book.schema())
    assert declaration.name == "book" and declaration.description == "Book a room."
    params = declaration.parameters
    assert params is not None
    dumped = params.model_dump(exclude_none=True)
    assert not _keys(dumped) & {"additional_properties", "default", "defs", "ref", "any_of"}
    assert params.type == types.Type.OBJECT and params.required == ["city"]
    props = params.properties
    assert props is not None
    assert props["city"].type == types.Type.STRING and props["city"].description == "the city's name"
    assert props["unit"].enum == ["c", "f"] and props["unit"].type == types.Type.STRING
    assert props["nights"].type == types.Type.INTEGER and props["nights"].nullable
    level = props["level"]
    assert level.type == types.Type.INTEGER and level.enum is None and "One of: 1, 2" in (level.description or "")
    address = props["address"]
    assert address.type == types.Type.OBJECT and address.nullable
    assert address.properties is not None and address.required == ["street"]
    assert address.properties["street"].description == "street and number"
    assert address.properties["zip_code"].nullable
    guests = props["guests"]
    assert guests.type == types.Type.ARRAY and guests.items is not None
    assert guests.items.type == types.Type.OBJECT and guests.items.properties is not None
    assert props["tags"].type == types.Type.OBJECT and "integer values" in (props["tags"].description or "")


def test_tool_without_parameters_has_none() -> None:
    @function_tool
    def now() -> str:
        """The time."""
        return ""

    (declaration,) = function_declarations([now])
    assert declaration.parameters is None


def test_refs_type_lists_and_unions() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A"},
            "b": {"type": ["string", "null"]},
            "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "d": {"const": "fixed"},
            "e": {"type": "array", "items": {"type": "number"}, "minItems": 1},
        },
        "required": ["a", "missing"],
        "additionalProperties": False,
        "$defs": {"A": {"type": "object", "properties": {"x": {"type": "boolean", "default": True}}}},
    }
    out = convert_schema(schema, schema["$defs"])
    assert out["properties"]["a"] == {"type": "OBJECT", "properties": {"x": {"type": "BOOLEAN"}}}
    assert out["properties"]["b"] == {"type": "STRING", "nullable": True}
    assert out["properties"]["c"] == {"any_of": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert out["properties"]["d"] == {"type": "STRING", "enum": ["fixed"]}
    assert out["properties"]["e"] == {"type": "ARRAY", "items": {"type": "NUMBER"}, "min_items": 1}
    assert out["required"] == ["a"]
    types.Schema.model_validate(out)
