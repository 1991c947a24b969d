from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentsession_openai.fake.realtime import FakeRealtimeServer


@pytest.fixture
async def realtime_server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer() as server:
        yield server
        assert server.protocol_errors == []
