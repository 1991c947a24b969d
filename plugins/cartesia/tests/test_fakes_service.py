"""``agentsession fakes cartesia``: the plugin offers its fake through ``agentsession_fakes``; the environment it
returns points the plugin at it."""

from __future__ import annotations

import pytest

from agentsession.plugin import FakeService
from agentsession_cartesia.plugin import agentsession_fakes


async def test_the_fake_service_serves_and_its_environment_reaches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    service = agentsession_fakes()["cartesia"]()
    assert isinstance(service, FakeService) and service.description
    from agentsession_cartesia import CartesiaTTS

    service.set("seconds_per_char", "0.05")
    env = await service.start()
    try:
        assert set(env) == {"CARTESIA_BASE_URL", "CARTESIA_API_KEY"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        tts = CartesiaTTS()
        seconds = sum(f.duration for f in [f async for f in tts.synthesize("Hi.")])
        assert abs(seconds - 0.15) < 0.01
        await tts.aclose()
    finally:
        await service.stop()
        await service.stop()
