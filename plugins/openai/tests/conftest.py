from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fakes beside this file (pytest runs with importlib mode)

from openai_fake_realtime import FakeRealtimeServer  # noqa: E402


@pytest.fixture
async def realtime_server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer() as server:
        yield server
        assert server.protocol_errors == []
