from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentsession_deepgram.fake import API_KEY, FakeDeepgramServer


@pytest.fixture
async def deepgram(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDeepgramServer]:
    """The fake server, reached the way a user points the plugin elsewhere: DEEPGRAM_BASE_URL and DEEPGRAM_API_KEY."""
    async with FakeDeepgramServer() as server:
        monkeypatch.setenv("DEEPGRAM_BASE_URL", server.base_url)
        monkeypatch.setenv("DEEPGRAM_API_KEY", API_KEY)
        yield server
        assert server.protocol_errors == []
