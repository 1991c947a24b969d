"""Scripted provider servers on loopback (``agentsession fakes``), offered by plugins through ``agentsession_fakes``.

A plugin's fake speaks its provider's real wire protocol, so an agent reaches it through the provider's real
SDK, configured only by the SDK's documented environment (``OPENAI_BASE_URL``, ...): every example runs offline.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any, ClassVar


class FakeService:
    """One plugin's fake servers, as ``agentsession fakes`` runs them.

    ``knobs`` names the script's settings, each with what it does; their values are this object's attributes
    of the same name (the defaults are set in ``__init__``), changed with :meth:`set` before :meth:`start`.
    ``start`` returns the environment that points the provider's SDK at the servers; ``stop`` ends them.
    """

    #: one line: what it serves
    description: ClassVar[str] = ""
    #: knob name -> what it does
    knobs: ClassVar[Mapping[str, str]] = {}

    async def start(self, host: str = "127.0.0.1") -> dict[str, str]:
        """Serve on ``host`` (ports picked by the system); the environment variables to give the agent."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop serving; idempotent."""
        raise NotImplementedError

    def values(self) -> dict[str, Any]:
        """Each knob's current value."""
        return {name: getattr(self, name) for name in self.knobs}

    def set(self, name: str, value: Any) -> None:
        """Set knob ``name``; for a knob that is not text, a string is read as JSON (``'{"city": "Paris"}'``, ``2.5``)."""
        if name not in self.knobs:
            close = difflib.get_close_matches(name, list(self.knobs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown knob {name!r}{hint}; the knobs are: {', '.join(self.knobs)}")
        current = getattr(self, name)
        if isinstance(value, str) and not isinstance(current, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if current is not None and not isinstance(value, type(current)):
            raise ValueError(f"knob {name!r} takes a {type(current).__name__} (like {json.dumps(current)}), "
                             f"got {json.dumps(value)}")
        setattr(self, name, value)


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments that fit a tool's JSON schema (an ``object``): each property gets its default, its first enum
    value, or an example of its type; so a scripted model can call any tool without being told its arguments."""
    properties = schema.get("properties") or {}
    return {name: _example(prop, name) for name, prop in properties.items() if isinstance(prop, Mapping)}


def _example(prop: Mapping[str, Any], name: str) -> Any:
    if "default" in prop:
        return prop["default"]
    if prop.get("enum"):
        return prop["enum"][0]
    for option in prop.get("anyOf") or prop.get("any_of") or ():
        if isinstance(option, Mapping) and str(option.get("type", "")).lower() != "null":
            return _example(option, name)
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "string")
    kind = str(kind or "string").lower()
    if kind == "object":
        return example_arguments(prop)
    if kind == "array":
        items = prop.get("items")
        return [_example(items, name)] if isinstance(items, Mapping) else []
    return {"integer": 1, "number": 1.0, "boolean": True}.get(kind, _EXAMPLE_TEXT.get(name, f"example {name}"))


#: example strings for common argument names (anything else: "example <name>")
_EXAMPLE_TEXT = {"city": "Paris", "location": "Paris", "country": "France", "name": "Alex", "query": "weather",
                 "date": "2025-01-01", "time": "12:00", "timezone": "Europe/Paris", "email": "alex@example.com",
                 "sign": "aries", "destination": "Rome", "language": "en"}
