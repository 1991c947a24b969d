from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import enum
import functools
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Required, TypedDict

import pytest

from agentsession._tool_schema import parse_docstring
from agentsession._tools import (
    MAX_OUTPUT,
    FunctionTool,
    ToolError,
    ToolResult,
    ToolThreads,
    collect_tools,
    function_tool,
)
from agentsession.testing import virtual_clock

# --------------------------------------------------------------------------- fixtures / types


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    x: int
    y: Annotated[float, "vertical position"] = 0.0


@dataclass
class Route:
    """A route between points."""

    name: str
    points: list[Point]
    closed: bool = False
    tags: list[str] = field(default_factory=list)


class Filters(TypedDict, total=False):
    query: Required[str]
    limit: int


class Opaque:
    pass


def params_of(tool: FunctionTool) -> dict[str, Any]:
    return tool.parameters


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def error_of(result: ToolResult) -> dict[str, Any]:
    assert result.is_error
    data: dict[str, Any] = json.loads(result.output)
    return data


# --------------------------------------------------------------------------- schemas


def test_scalars_and_schema_shape() -> None:
    @function_tool
    def f(s: str, i: int, x: float, b: bool) -> None:
        """Scalars."""

    assert isinstance(f, FunctionTool)
    assert f.schema() == {
        "name": "f",
        "description": "Scalars.",
        "parameters": obj(
            {
                "s": {"type": "string"},
                "i": {"type": "integer"},
                "x": {"type": "number"},
                "b": {"type": "boolean"},
            },
            ["s", "i", "x", "b"],
        ),
    }
    assert f.parameters == f.schema()["parameters"]
    assert f.timeout == 30.0
    assert f.is_async is False


def test_literal_and_enum() -> None:
    @function_tool
    async def f(
        mode: Literal["fast", "slow"],
        n: Literal[1, 2, 3],
        unit: Unit,
        level: Level = Level.LOW,
    ) -> None:
        pass

    assert f.is_async is True
    assert params_of(f) == obj(
        {
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "n": {"type": "integer", "enum": [1, 2, 3]},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "level": {"type": "integer", "enum": [1, 2], "default": 1},
        },
        ["mode", "n", "unit"],
    )


def test_optional_forms() -> None:
    @function_tool
    def f(a: int | None, b: Optional[str] = None) -> None:  # noqa: UP045
        pass

    assert params_of(f) == obj(
        {
            "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        ["a"],
    )


def test_arrays_and_dicts() -> None:
    @function_tool
    def f(
        a: list[str],
        b: Sequence[int],
        c: tuple[float, ...],
        d: dict[str, bool],
        e: list[list[int]] = [],  # noqa: B006
    ) -> None:
        pass

    assert params_of(f) == obj(
        {
            "a": {"type": "array", "items": {"type": "string"}},
            "b": {"type": "array", "items": {"type": "integer"}},
            "c": {"type": "array", "items": {"type": "number"}},
            "d": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "e": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer"}},
                "default": [],
            },
        },
        ["a", "b", "c", "d"],
    )


POINT_SCHEMA = obj(
    {
        "x": {"type": "integer"},
        "y": {"type": "number", "description": "vertical position", "default": 0.0},
    },
    ["x"],
)


def test_dataclass_and_typeddict() -> None:
    @function_tool
    def f(route: Route, filters: Filters, origin: Point | None = None) -> None:
        pass

    route_schema = obj(
        {
            "name": {"type": "string"},
            "points": {"type": "array", "items": POINT_SCHEMA},
            "closed": {"type": "boolean", "default": False},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        ["name", "points"],
    )
    route_schema["description"] = "A route between points."
    assert params_of(f) == obj(
        {
            "route": route_schema,
            "filters": obj({"query": {"type": "string"}, "limit": {"type": "integer"}}, ["query"]),
            "origin": {"anyOf": [POINT_SCHEMA, {"type": "null"}], "default": None},
        },
        ["route", "filters"],
    )


def test_annotated_descriptions_and_defaults() -> None:
    @function_tool
    def f(
        city: Annotated[str, "The city"],
        days: Annotated[int, "How many days"] = 3,
        unit: Unit = Unit.CELSIUS,
        tags: Annotated[list[Annotated[str, "a tag"]], "Tags"] = (),  # type: ignore[assignment]
    ) -> None:
        pass

    assert params_of(f) == obj(
        {
            "city": {"type": "string", "description": "The city"},
            "days": {"type": "integer", "description": "How many days", "default": 3},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "description": "a tag"},
                "description": "Tags",
                "default": [],
            },
        },
        ["city"],
    )


def test_docstring_descriptions() -> None:
    @function_tool
    def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: Annotated[int, "Days"] = 1) -> str:
        """Get the weather for a city.

        Uses the forecast service.

        Args:
            city: The city name,
                for example Paris.
            unit (Unit): Temperature unit.
            days: Ignored: Annotated wins.

        Returns:
            A forecast.

        Raises:
            ToolError: on failure.
        """
        return ""

    assert get_weather.description == "Get the weather for a city.\n\nUses the forecast service."
    props = params_of(get_weather)["properties"]
    assert props["city"] == {"type": "string", "description": "The city name, for example Paris."}
    assert props["unit"]["description"] == "Temperature unit."
    assert props["days"]["description"] == "Days"


def test_parse_docstring_direct() -> None:
    assert parse_docstring(None) == ("", {})
    desc, params = parse_docstring(
        """Summary line.

        Args:
            a: First.
            b (list[int]): Second,
                continued
                twice.
            *args: Extra.
        Raises:
            ValueError: not a param.
        """
    )
    assert desc == "Summary line."
    assert params == {"a": "First.", "b": "Second, continued twice.", "args": "Extra."}


def test_decorator_options_override() -> None:
    @function_tool(name="lookup", description="Look it up.", timeout=None)
    def f(q: str) -> str:
        """Ignored docstring."""
        return q

    assert f.name == "lookup"
    assert f.description == "Look it up."
    assert f.timeout is None
    assert set(f.schema()) == {"name", "description", "parameters"}
    assert f(q="x") == "x"  # still callable directly


def test_no_parameters_and_no_docstring() -> None:
    @function_tool
    def ping() -> str:
        return "pong"

    assert ping.schema() == {"name": "ping", "description": "", "parameters": obj({}, [])}


def test_local_types_resolved() -> None:
    @dataclass
    class Local:
        v: int

    @function_tool
    def f(x: Local) -> None:
        pass

    assert params_of(f)["properties"]["x"] == obj({"v": {"type": "integer"}}, ["v"])


# --------------------------------------------------------------------------- decoration errors


def _bad_opaque(x: Opaque) -> None:
    pass


def _bad_nested(x: list[Opaque]) -> None:
    pass


def _bad_varargs(*items: str) -> None:
    pass


def _bad_kwargs(**items: str) -> None:
    pass


def _bad_missing(x) -> None:  # type: ignore[no-untyped-def]
    pass


def _bad_bare_list(x: list) -> None:  # type: ignore[type-arg]
    pass


def _bad_dict_key(x: dict[int, str]) -> None:
    pass


def _bad_fixed_tuple(x: tuple[int, str]) -> None:
    pass


def _bad_any(x: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("fn", "param"),
    [
        (_bad_opaque, "x"),
        (_bad_nested, "x"),
        (_bad_varargs, "items"),
        (_bad_kwargs, "items"),
        (_bad_missing, "x"),
        (_bad_bare_list, "x"),
        (_bad_dict_key, "x"),
        (_bad_fixed_tuple, "x"),
        (_bad_any, "x"),
    ],
)
def test_unsupported_parameters_raise_type_error(fn: Any, param: str) -> None:
    with pytest.raises(TypeError) as info:
        function_tool(fn)
    assert fn.__name__ in str(info.value)
    assert repr(param) in str(info.value)


def test_invalid_name_and_timeout() -> None:
    def f() -> None:
        pass

    with pytest.raises(ValueError, match="invalid tool name"):
        function_tool(name="has space")(f)
    with pytest.raises(ValueError, match="timeout"):
        function_tool(timeout=0)(f)


# --------------------------------------------------------------------------- invoke: validation


@function_tool
async def plan(
    route: Route,
    mode: Literal["walk", "drive"] = "walk",
    unit: Unit = Unit.CELSIUS,
    speed: float = 1.0,
    count: int = 1,
    waypoints: tuple[Point, ...] = (),
    note: str | None = None,
    filters: Filters | None = None,
) -> dict[str, Any]:
    return {
        "route": route,
        "mode": mode,
        "unit": unit,
        "speed": speed,
        "count": count,
        "waypoints": waypoints,
        "note": note,
        "filters": filters,
    }


@pytest.mark.asyncio
async def test_invoke_coerces_values() -> None:
    captured: dict[str, Any] = {}

    @function_tool
    def f(
        route: Route,
        unit: Unit,
        level: Level,
        mode: Literal["walk", "drive"],
        speed: float,
        count: int,
        pts: tuple[Point, ...],
        filters: Filters,
        scores: dict[str, float],
        note: str | None = "n",
    ) -> None:
        captured.update(locals())

    args = {
        "route": {"name": "r", "points": [{"x": 1, "y": 2}], "closed": True},
        "unit": "fahrenheit",
        "level": 2,
        "mode": "drive",
        "speed": 3,
        "count": 4.0,
        "pts": [{"x": 5}],
        "filters": {"query": "q"},
        "scores": {"a": 1},
        "note": None,
    }
    result = await f.invoke("c1", json.dumps(args))
    assert result == ToolResult("c1", "f", '{"result": null}', False, result.duration)
    assert captured["route"] == Route("r", [Point(1, 2.0)], closed=True)
    assert captured["unit"] is Unit.FAHRENHEIT
    assert captured["level"] is Level.HIGH
    assert captured["mode"] == "drive"
    assert captured["speed"] == 3.0 and isinstance(captured["speed"], float)
    assert captured["count"] == 4 and isinstance(captured["count"], int)
    assert captured["pts"] == (Point(5),)
    assert captured["filters"] == {"query": "q"}
    assert captured["scores"] == {"a": 1.0} and isinstance(captured["scores"]["a"], float)
    assert captured["note"] is None


@pytest.mark.asyncio
async def test_invoke_accepts_mapping_and_uses_python_defaults() -> None:
    result = await plan.invoke("c2", {"route": {"name": "r", "points": []}})
    assert not result.is_error
    assert json.loads(result.output) == {
        "route": {"name": "r", "points": [], "closed": False, "tags": []},
        "mode": "walk",
        "unit": "celsius",
        "speed": 1.0,
        "count": 1,
        "waypoints": [],
        "note": None,
        "filters": None,
    }
    assert result.call_id == "c2" and result.name == "plan" and result.duration >= 0


@pytest.mark.asyncio
async def test_invoke_reports_all_validation_errors() -> None:
    args = {
        "route": {"name": 1, "points": [{"x": 1}, {"x": 1.5, "z": 0}], "closed": 1},
        "mode": "fly",
        "unit": "kelvin",
        "speed": True,
        "count": False,
        "waypoints": {"x": 1},
        "note": 3,
        "filters": {"limit": "ten"},
        "extra": 1,
    }
    err = error_of(await plan.invoke("c3", json.dumps(args)))
    assert err["error"] == "invalid arguments"
    assert sorted(err["details"]) == sorted(
        [
            "extra: unexpected argument",
            "route.name: expected string, got integer",
            "route.points[1].z: unexpected field",
            "route.points[1].x: expected integer, got number",
            "route.closed: expected boolean, got integer",
            'mode: "fly" is not one of ["walk", "drive"]',
            'unit: "kelvin" is not one of ["celsius", "fahrenheit"]',
            "speed: expected number, got boolean",
            "count: expected integer, got boolean",
            "waypoints: expected array, got object",
            "note: expected string or null, got integer",
            "filters.limit: expected integer, got string",
            "filters.query: missing required field",
        ]
    )


@pytest.mark.asyncio
async def test_invoke_missing_required_and_null() -> None:
    err = error_of(await plan.invoke("c", "{}"))
    assert err == {"error": "invalid arguments", "details": ["route: missing required argument"]}
    err = error_of(await plan.invoke("c", {"route": None}))
    assert err["details"] == ["route: expected object, got null"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        ("{not json", "could not parse JSON"),
        ("[1, 2]", "arguments must be a JSON object, got array"),
        ("42", "arguments must be a JSON object, got integer"),
    ],
)
async def test_invoke_bad_json(arguments: str, detail: str) -> None:
    err = error_of(await plan.invoke("c", arguments))
    assert err["error"] == "invalid arguments"
    assert len(err["details"]) == 1 and err["details"][0].startswith(detail)


@pytest.mark.asyncio
async def test_empty_arguments_string_means_no_arguments() -> None:
    @function_tool
    def ping() -> str:
        return "pong"

    assert (await ping.invoke("c", "")).output == "pong"
    assert (await ping.invoke("c", "{}")).output == "pong"


@pytest.mark.asyncio
async def test_integral_float_for_int_but_not_fraction() -> None:
    @function_tool
    def f(n: int) -> int:
        return n * 2

    assert (await f.invoke("c", '{"n": 3.0}')).output == "6"
    err = error_of(await f.invoke("c", '{"n": 3.5}'))
    assert err["details"] == ["n: expected integer, got number"]


def test_parse_arguments_public_helper() -> None:
    assert plan.parse_arguments('{"route": {"name": "r", "points": []}, "unit": "celsius"}') == {
        "route": Route("r", []),
        "unit": Unit.CELSIUS,
    }
    with pytest.raises(ValueError, match="mode"):
        plan.parse_arguments({"route": {"name": "r", "points": []}, "mode": "x"})


# --------------------------------------------------------------------------- invoke: execution

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.mark.asyncio
async def test_sync_tool_runs_in_executor_thread_with_context() -> None:
    seen: dict[str, Any] = {}

    @function_tool
    def work(x: int) -> int:
        seen["thread"] = threading.get_ident()
        seen["name"] = threading.current_thread().name
        seen["request_id"] = request_id.get()
        return x + 1

    request_id.set("req-7")
    result = await work.invoke("c", {"x": 1})
    assert result.output == "2" and not result.is_error
    assert seen["thread"] != threading.get_ident()
    assert seen["request_id"] == "req-7"

    with concurrent.futures.ThreadPoolExecutor(thread_name_prefix="tools-test") as pool:
        await work.invoke("c", {"x": 1}, executor=pool)
    assert seen["name"].startswith("tools-test")


@pytest.mark.asyncio
async def test_async_tool_runs_on_loop_thread() -> None:
    seen: list[int] = []

    @function_tool
    async def work() -> None:
        seen.append(threading.get_ident())

    await work.invoke("c", {})
    assert seen == [threading.get_ident()]


@pytest.mark.asyncio
async def test_timeout_cancels_async_tool() -> None:
    never = asyncio.Event()
    state: list[str] = []

    @function_tool(timeout=0.05)
    async def hang() -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            state.append("cancelled")
            raise
        return "unreachable"

    result = await hang.invoke("c", {})
    assert error_of(result) == {"error": "timed out after 0.05 s"}
    assert state == ["cancelled"]
    assert result.duration >= 0.04


@pytest.mark.asyncio
async def test_tool_raising_timeout_error_is_not_a_timeout() -> None:
    @function_tool
    async def f() -> None:
        raise TimeoutError("upstream")

    assert error_of(await f.invoke("c", {})) == {"error": "TimeoutError: upstream"}


@pytest.mark.asyncio
async def test_raising_tool_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    @function_tool
    def boom(x: int) -> None:
        raise RuntimeError(f"bad {x}")

    with caplog.at_level(logging.ERROR, logger="agentsession.tools"):
        result = await boom.invoke("call-9", {"x": 1})
    assert error_of(result) == {"error": "RuntimeError: bad 1"}
    records = [r for r in caplog.records if r.name == "agentsession.tools"]
    assert len(records) == 1
    assert "boom" in records[0].getMessage() and "call-9" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError


@pytest.mark.asyncio
async def test_tool_error_gives_clean_message(caplog: pytest.LogCaptureFixture) -> None:
    @function_tool
    async def f() -> None:
        raise ToolError("City not found, try another spelling")

    with caplog.at_level(logging.ERROR, logger="agentsession.tools"):
        result = await f.invoke("c", {})
    assert error_of(result) == {"error": "City not found, try another spelling"}
    assert not [r for r in caplog.records if r.name == "agentsession.tools"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain text", "plain text"),
        (None, '{"result": null}'),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        ([1, "x"], '[1, "x"]'),
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
        (Unit.FAHRENHEIT, '"fahrenheit"'),
        (Point(1, 2.0), '{"x": 1, "y": 2.0}'),
        ({"p": Point(1), "u": Unit.CELSIUS, "t": (1, 2)}, '{"p": {"x": 1, "y": 0.0}, "u": "celsius", "t": [1, 2]}'),
        ({"o": Opaque}, json.dumps({"o": str(Opaque)})),
        ("é", "é"),
    ],
)
async def test_return_value_serialization(value: Any, output: str) -> None:
    @function_tool
    def f() -> Any:
        return value

    result = await f.invoke("c", {})
    assert result.output == output and not result.is_error


# --------------------------------------------------------------------------- methods / binding


class Assistant:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting
        self.calls: list[str] = []

    @function_tool
    async def greet(self, name: Annotated[str, "Who to greet"]) -> str:
        """Greet someone."""
        self.calls.append(name)
        return f"{self.greeting}, {name}!"

    @function_tool(timeout=5)
    def add(self, a: int, b: int = 1) -> int:
        """Add numbers."""
        return a + b

    def not_a_tool(self) -> None:
        pass


class Polite(Assistant):
    @function_tool(description="Greet very politely.")
    async def greet(self, name: str) -> str:
        return f"Dear {name}"

    @function_tool
    def farewell(self) -> str:
        return f"bye from {self.greeting}"


class NoAdd(Assistant):
    add = None  # type: ignore[assignment]


def test_bound_method_tools() -> None:
    a = Assistant("Hello")
    assert isinstance(Assistant.greet, FunctionTool)
    assert Assistant.greet.instance is None and Assistant.greet.is_method
    bound = a.greet
    assert isinstance(bound, FunctionTool) and bound.instance is a
    assert bound.schema() == Assistant.greet.schema() == {
        "name": "greet",
        "description": "Greet someone.",
        "parameters": obj({"name": {"type": "string", "description": "Who to greet"}}, ["name"]),
    }
    assert a.add(2, b=3) == 5  # sync: plain call
    assert a.add.timeout == 5
    assert Assistant("x").add.instance is not a.add.instance


@pytest.mark.asyncio
async def test_bound_method_direct_call_and_invoke() -> None:
    a, b = Assistant("Hello"), Assistant("Hi")
    assert await a.greet(name="Paris") == "Hello, Paris!"
    result = await b.greet.invoke("c", '{"name": "Bob"}')
    assert result.output == "Hi, Bob!"
    assert (a.calls, b.calls) == (["Paris"], ["Bob"])
    assert (await a.add.invoke("c", {"a": 1})).output == "2"
    assert await Assistant.greet(a, "Zed") == "Hello, Zed!"  # unbound: pass self explicitly
    with pytest.raises(TypeError, match="bind"):
        await Assistant.greet.invoke("c", {"name": "x"})


def test_plain_function_tool_as_class_attribute_is_not_bound() -> None:
    @function_tool
    def helper(x: int) -> int:
        return x

    class Holder:
        tool = helper

    assert Holder().tool is helper
    assert helper.bind(object()) is helper


def test_collect_tools() -> None:
    a = Assistant("Hello")
    tools = collect_tools(a)
    assert [t.name for t in tools] == ["greet", "add"]
    assert all(t.instance is a for t in tools)

    p = Polite("Yo")
    tools = collect_tools(p)
    assert [t.name for t in tools] == ["greet", "farewell", "add"]
    assert tools[0].description == "Greet very politely."
    assert tools[1]() == "bye from Yo"

    assert [t.name for t in collect_tools(NoAdd("x"))] == ["greet"]
    assert collect_tools(object()) == []


def test_collect_tools_duplicate_names() -> None:
    class Dup:
        @function_tool(name="search")
        def a(self) -> None:
            pass

        @function_tool(name="search")
        def b(self) -> None:
            pass

    with pytest.raises(ValueError, match="duplicate tool name 'search'"):
        collect_tools(Dup())


# --------------------------------------------------------------------------- invoke: every failure is an answer


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class ReprOnly:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        return "<ReprOnly>"


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("the message itself is broken")


def strict_json(text: str) -> Any:
    """Parse as strict JSON (no NaN/Infinity), and check it can go on the wire as UTF-8."""
    text.encode("utf-8")

    def reject(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def self_referencing() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1, "inner": {"list": []}}
    d["inner"]["list"].append(d)
    return d


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (self_referencing(), "circular reference at $.inner.list[0]"),
        (Unprintable(), "Unprintable"),
        ({"x": [Unprintable()]}, "$.x[0]"),
        ({Unprintable(): 1}, "key"),
        (10 ** 5000, "integer"),
        (functools.reduce(lambda acc, _: [acc], range(100_000), []), "nested"),
    ],
    ids=["self-referencing", "str-and-repr-raise", "nested-unprintable", "unprintable-key", "5000-digit-int",
         "nested-100k"],
)
async def test_an_unencodable_result_is_a_structured_error(
    value: Any, needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    @function_tool
    def f() -> Any:
        return value

    with caplog.at_level(logging.ERROR, logger="agentsession.tools"):
        result = await f.invoke("call-1", {})
    assert result.is_error and result.call_id == "call-1" and result.name == "f"
    error = strict_json(result.output)["error"]
    assert "could not be converted to JSON" in error and needle in error, error
    assert any("call-1" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_an_object_whose_str_raises_falls_back_to_its_repr() -> None:
    @function_tool
    def f() -> Any:
        return {"thing": ReprOnly()}

    result = await f.invoke("c", {})
    assert not result.is_error and strict_json(result.output) == {"thing": "<ReprOnly>"}


@pytest.mark.asyncio
async def test_an_exception_whose_str_raises_is_still_reported() -> None:
    @function_tool
    def f() -> None:
        raise UnprintableError

    result = await f.invoke("c", {})
    assert strict_json(result.output)["error"].startswith("UnprintableError")
    assert result.is_error


@pytest.mark.asyncio
async def test_a_tool_calling_sys_exit_is_an_error_result() -> None:
    @function_tool
    def quit_now() -> None:
        sys.exit(3)

    @function_tool
    async def quit_async() -> None:
        sys.exit(4)

    assert strict_json((await quit_now.invoke("c", {})).output) == {"error": "SystemExit: 3"}
    assert strict_json((await quit_async.invoke("c", {})).output) == {"error": "SystemExit: 4"}


@pytest.mark.asyncio
async def test_nan_and_infinity_in_a_result_are_strict_json_strings() -> None:
    @function_tool
    def f() -> Any:
        return {"nan": float("nan"), "values": [float("inf"), -float("inf"), 1.5]}

    result = await f.invoke("c", {})
    assert not result.is_error
    assert strict_json(result.output) == {"nan": "NaN", "values": ["Infinity", "-Infinity", 1.5]}

    @function_tool
    def g() -> float:
        return float("nan")

    assert strict_json((await g.invoke("c", {})).output) == "NaN"


@pytest.mark.asyncio
async def test_strings_that_are_not_valid_unicode_are_repaired() -> None:
    broken = b"caf\xe9 ok".decode("utf-8", "surrogateescape")  # a lone surrogate: not encodable as UTF-8

    @function_tool
    def text() -> str:
        return broken

    @function_tool
    def data() -> Any:
        return {broken: [broken], "raw": b"caf\xe9"}

    out = (await text.invoke("c", {})).output
    assert out == "caf\ufffd ok"
    assert strict_json((await data.invoke("c", {})).output) == {"caf\ufffd ok": ["caf\ufffd ok"], "raw": "caf\ufffd"}


@pytest.mark.asyncio
async def test_huge_outputs_are_bounded() -> None:
    @function_tool(max_output=1000)
    def text() -> str:
        return "x" * 1_000_000

    @function_tool
    def data() -> Any:
        return list(range(1_000_000))

    @function_tool(max_output=1000)
    def escaped() -> str:
        return '"\n' * 1000  # each character takes two in JSON

    for tool, limit, start in ((text, 1000, "x" * 800), (data, MAX_OUTPUT, "[0, 1, 2"), (escaped, 1000, '"\n' * 200)):
        result = await tool.invoke("c", {})
        assert result.is_error and len(result.output) <= limit
        payload = strict_json(result.output)
        assert "too long" in payload["error"] and str(limit) in payload["error"]
        assert payload["output_start"].startswith(start)
    assert text.max_output == 1000 and data.max_output == MAX_OUTPUT
    with pytest.raises(ValueError, match="max_output"):
        function_tool(max_output=0)(text)


@dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"x": ' + "9" * 5000 + "}", "digits"),
        ('{"x": NaN}', "NaN"),
        ('{"x": -Infinity}', "Infinity"),
    ],
    ids=["nested-100k", "nested-100k-in-object", "5000-digit-int", "nan", "infinity"],
)
async def test_unparsable_arguments_are_a_structured_error(arguments: str, detail: str) -> None:
    ran: list[Any] = []

    @function_tool
    def f(x: int = 0) -> None:
        ran.append(x)

    result = await f.invoke("c", arguments)
    payload = strict_json(result.output)
    assert payload["error"] == "invalid arguments" and detail in payload["details"][0], payload
    assert ran == []


@pytest.mark.asyncio
async def test_a_constructor_that_rejects_an_argument_is_a_validation_error() -> None:
    @function_tool
    def f(p: Positive) -> int:
        return p.n

    assert (await f.invoke("c", {"p": {"n": 2}})).output == "2"
    payload = strict_json((await f.invoke("c", {"p": {"n": -1}})).output)
    assert payload == {"error": "invalid arguments", "details": ["p: ValueError: n must be positive"]}


@pytest.mark.asyncio
async def test_many_validation_errors_are_bounded() -> None:
    @function_tool
    def f(x: int) -> None:
        pass

    payload = strict_json((await f.invoke("c", {f"k{i}": i for i in range(10_000)})).output)
    assert len(payload["details"]) <= 21 and "more" in payload["details"][-1]


@pytest.mark.asyncio
async def test_sync_tools_run_on_daemon_threads_of_their_own_executor() -> None:
    seen: list[threading.Thread] = []

    @function_tool
    def work() -> None:
        seen.append(threading.current_thread())

    await work.invoke("c", {})
    assert seen[0].daemon and seen[0].name.startswith("agentsession-tool")


HUNG_SYNC_TOOL = """
import asyncio, sys, threading, time
from agentsession import Agent, AgentSession, RealTimePipeline, function_tool
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport

class Hung(Agent):
    def __init__(self):
        super().__init__(instructions="test")

    @function_tool(timeout=0.2)
    def hang(self) -> str:
        threading.Event().wait()  # never returns
        return "unreachable"

async def main():
    model = FakeRealtimeModel([FakeResponse(tool_calls=[FakeToolCall("hang", {})], then=FakeResponse(text="Sorry."))])
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(Hung(), RealTimePipeline(model))
    await session.start(transport=transport)
    await session.run(user_input="go")
    assert model.tool_results and "timed out" in model.tool_results[0][0].output, model.tool_results
    await session.close()
    print("closed", flush=True)

asyncio.run(main())
"""


def test_a_hung_sync_tool_does_not_keep_the_process_alive() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", HUNG_SYNC_TOOL], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed"
    assert time.monotonic() - started < 20  # the abandoned thread did not hold the interpreter at exit


def test_tool_threads_are_bounded_reused_and_end_when_idle() -> None:
    pool = ToolThreads(max_workers=2, idle_timeout=0.05, name="bounded-test")
    gate = threading.Event()
    futures = [pool.submit(gate.wait) for _ in range(3)]  # the third waits for a free thread
    assert pool.threads == 2
    gate.set()
    assert [f.result(timeout=10) for f in futures] == [True, True, True]
    assert pool.submit(lambda: 7).result(timeout=10) == 7 and pool.threads <= 2
    for thread in [t for t in threading.enumerate() if t.name.startswith("bounded-test")]:
        thread.join(timeout=10)  # idle threads end by themselves
    assert pool.threads == 0
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


@virtual_clock
async def test_an_async_tool_that_ignores_its_cancellation_is_abandoned_at_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    finished: list[str] = []

    @function_tool(timeout=5)
    async def stubborn() -> str:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()
        finished.append("done")
        return "late"

    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, logger="agentsession.tools"):
        result = await stubborn.invoke("c", {})
    assert strict_json(result.output) == {"error": "timed out after 5 s"}
    assert 5 <= loop.time() <= 7  # the timeout, and the grace the tool had to stop
    assert "ignored its cancellation" in caplog.text and finished == []
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert finished == ["done"]  # it was kept alive, not garbage-collected mid-run


@pytest.mark.asyncio
async def test_cancelling_the_call_cancels_the_tool_before_returning() -> None:
    entered = asyncio.Event()
    state: list[str] = []

    @function_tool
    async def slow() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    call = asyncio.ensure_future(slow.invoke("c", {}))
    await entered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert state == ["cancelled"]
