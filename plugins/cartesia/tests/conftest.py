from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentsession_cartesia.fake import API_KEY, FakeCartesiaServer


@pytest.fixture
async def cartesia(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeCartesiaServer]:
    """The fake server, reached the way a user points the plugin elsewhere: CARTESIA_BASE_URL and CARTESIA_API_KEY."""
    async with FakeCartesiaServer() as server:
        monkeypatch.setenv("CARTESIA_BASE_URL", server.base_url)
        monkeypatch.setenv("CARTESIA_API_KEY", API_KEY)
        yield server
        assert server.protocol_errors == []
