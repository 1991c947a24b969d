"""``bench/soak.py``'s bookkeeping: what it reports as lost must be what was lost."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_bench", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_wire_audio_lost_is_what_the_plugin_reports_not_what_the_server_counted(soak: ModuleType) -> None:
    """A plugin that lost 3 s and resent 5 s from its outage buffer: the server received 2 s more than the
    transport delivered, and "lost" used to say 0.0 s."""
    slot = SimpleNamespace(index=0, kind="wire", tally=soak.Tally(delivered=60.0, reported_lost=3.0))
    wire = SimpleNamespace(received=lambda: {0: 62.0})
    stats = soak.summary([slot], wire, now=0.0)["wire"]
    assert stats["lost"] == 3.0 and stats["server_received"] == 62.0


def test_in_process_audio_lost_is_the_fake_s_own_count(soak: ModuleType) -> None:
    slot = SimpleNamespace(index=0, kind="in-process", tally=soak.Tally(delivered=60.0, lost=4.5, reported_lost=2.0))
    stats = soak.summary([slot], None, now=0.0)["in-process"]
    assert stats["lost"] == 4.5 and stats["server_received"] is None
