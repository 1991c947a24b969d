"""Runs the tool calls of a response: all at once, each isolated, results handed back together."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ._pipeline_events import ToolCall
from ._tools import FunctionTool, ToolResult

logger = logging.getLogger("agentsession.tools")


class ToolRunner:
    """Starts each call as soon as the model makes it; ``results(calls)`` waits for all of a group."""

    def __init__(self, spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]],
                 on_result: Callable[[ToolCall, ToolResult], None]) -> None:
        self.tools: dict[str, FunctionTool] = {}
        self._spawn = spawn
        self._on_result = on_result
        self._running: dict[str, asyncio.Task[ToolResult]] = {}

    def start(self, call: ToolCall) -> None:
        """Run ``call`` now (a call id seen before is ignored)."""
        if call.id not in self._running:
            self._running[call.id] = self._spawn(self._run(call), f"tool:{call.name}")

    def cancel(self, call_ids: Sequence[str]) -> None:
        """Stop these calls; their results are no longer wanted."""
        for call_id in call_ids:
            task = self._running.pop(call_id, None)
            if task is not None:
                task.cancel()

    async def results(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """The results of ``calls``, in their order, once every one is in (a cancelled call is an error)."""
        out: list[ToolResult] = []
        for call in calls:
            task = self._running.get(call.id)
            try:
                out.append(await task if task is not None else _error(call, "the call was cancelled"))
            except asyncio.CancelledError:
                if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                out.append(_error(call, "the call was cancelled"))
            finally:
                self._running.pop(call.id, None)
        return out

    async def _run(self, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            result = _error(call, f"unknown tool {call.name!r}", tools=sorted(self.tools))
        else:
            try:
                result = await tool.invoke(call.id, call.arguments)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a tool does, the model gets an answer
                logger.exception("tool %r (call %s) failed outside its own error handling", call.name, call.id)
                result = _error(call, f"{type(exc).__name__}")
        self._on_result(call, result)
        return result


def _error(call: ToolCall, message: str, **extra: Any) -> ToolResult:
    return ToolResult(call.id, call.name, json.dumps({"error": message, **extra}), is_error=True)
