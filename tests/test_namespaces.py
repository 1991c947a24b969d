"""Plugins reach core only through its public namespaces (``agentsession``, ``agentsession.plugin``,
``agentsession.testing``), never through a private module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _private_imports(source: str, label: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, label)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "agentsession" and any(part.startswith("_") for part in parts[1:]):
                found.append(f"{label}:{node.lineno}: {name}")
    return found


def test_no_plugin_imports_a_private_core_module() -> None:
    sources = sorted((ROOT / "plugins").glob("*/src/**/*.py")) + sorted((ROOT / "plugins").glob("*/tests/**/*.py"))
    assert sources, "no plugin sources found"
    offenders = [hit for path in sources for hit in _private_imports(path.read_text(), str(path.relative_to(ROOT)))]
    assert offenders == []


def test_the_check_sees_a_private_import() -> None:
    source = "import agentsession\nfrom agentsession._audio import AudioFrame\nfrom agentsession import _chat\n"
    assert _private_imports(source, "probe.py") == [
        "probe.py:2: agentsession._audio", "probe.py:2: agentsession._audio.AudioFrame", "probe.py:3: agentsession._chat"
    ]


def test_plugin_namespace_exports_resolve() -> None:
    import agentsession.plugin as plugin_api

    missing = [name for name in plugin_api.__all__ if not hasattr(plugin_api, name)]
    assert missing == []
