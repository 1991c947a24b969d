"""The plugins' READMEs: their Python snippets compile, and every name they import exists."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = sorted(ROOT.glob("plugins/*/README.md"))
SDK_ONLY = {"agentsession_videosdk._sdk"}  # needs the SDK's own venv


def snippets(readme: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_snippets_compile_and_their_imports_exist(readme: Path) -> None:
    for block in snippets(readme):
        tree = ast.parse(block, str(readme))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module not in SDK_ONLY:
                module = importlib.import_module(node.module)
                missing = [a.name for a in node.names if not hasattr(module, a.name)]
                assert not missing, f"{readme}: {node.module} has no {missing}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)


def test_every_plugin_has_a_readme() -> None:
    assert {p.parent.name for p in READMES} == {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir()}
