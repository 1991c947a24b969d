"""``agentsession fakes deepgram``: the plugin offers its fake through ``agentsession_fakes``; the environment it
returns points the plugin at it."""

from __future__ import annotations

import pytest

from agentsession.plugin import FakeService
from agentsession_deepgram.plugin import agentsession_fakes


async def test_the_fake_service_serves_and_its_environment_reaches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    service = agentsession_fakes()["deepgram"]()
    assert isinstance(service, FakeService) and service.description
    from agentsession.testing import tone
    from agentsession_deepgram import DeepgramSTT

    service.set("heard", "Good morning.")
    env = await service.start()
    try:
        assert set(env) == {"DEEPGRAM_BASE_URL", "DEEPGRAM_API_KEY"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        stt = DeepgramSTT()
        assert await stt.transcribe(tone(0.5, 16000)) == "Good morning."
        await stt.aclose()
    finally:
        await service.stop()
        await service.stop()
