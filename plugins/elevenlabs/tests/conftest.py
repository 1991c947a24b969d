from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentsession_elevenlabs.fake import FakeElevenLabs


@pytest.fixture
async def elevenlabs_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeElevenLabs]:
    """The fake service, reached as a user reaches another server: through ``ELEVENLABS_BASE_URL``."""
    async with FakeElevenLabs() as server:
        monkeypatch.setenv("ELEVENLABS_BASE_URL", server.base_url)
        yield server
        assert server.protocol_errors == []
