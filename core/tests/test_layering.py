"""The layering of core: no import circle (``TYPE_CHECKING`` and function-local imports count), and the parts
below the session hold none of it but the narrow ports they are given."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agentsession import AgentSession, RealTimePipeline
from agentsession._answers import Answers, AnswersHost
from agentsession.testing import FakeRealtimeModel, FakeTransport, virtual_clock
from core_helpers import QuietAgent

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "agentsession"


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` for every module under ``root`` (package-relative names)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                found = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[name].update(f for f in found if f in modules and f != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_core_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 40
    assert circles(graph) == []


def test_the_check_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("low", ["agentsession._answers", "agentsession._speech", "agentsession._transport",
                                 "agentsession.hookspecs", "agentsession._agent", "agentsession._file_transport"])
def test_the_parts_below_the_session_do_not_import_it(low: str) -> None:
    graph = import_graph(PACKAGE)
    seen, todo = set(), [low]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    assert "agentsession._session" not in seen and "agentsession._worker" not in seen


@virtual_clock
async def test_answers_and_speech_handles_hold_no_session() -> None:
    model = FakeRealtimeModel()
    session = AgentSession(QuietAgent(), RealTimePipeline(model))
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    handle = await session.say("Hello there.")
    answers = session._answers
    assert isinstance(answers, Answers) and isinstance(answers._h, AnswersHost)
    for obj in (answers, handle):
        assert not any(isinstance(value, AgentSession) for value in vars(obj).values())
    await session.close()
