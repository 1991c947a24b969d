from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentsession_anthropic.fake import FakeAnthropic


@pytest.fixture
async def anthropic_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    """The fake API, reached as a user reaches another server: through the SDK's ``ANTHROPIC_BASE_URL``."""
    async with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server
        assert server.protocol_errors == []
