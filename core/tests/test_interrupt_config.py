"""VideoSDK's ``InterruptConfig`` applied: minimum duration, minimum words, and pausing on a possible
interruption then playing on after a false one (``resume_on_false_interrupt``), on the virtual clock."""

from __future__ import annotations

import pytest

from agentsession import AgentSession, InterruptConfig, Pipeline
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport, virtual_clock
from core_helpers import QuietAgent, settle


async def start(config: InterruptConfig) -> tuple[AgentSession, FakeRealtimeModel, FakeTransport]:
    model = FakeRealtimeModel([FakeResponse(text="A long answer that goes on.", audio=4.0)])
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), Pipeline(llm=model, interrupt_config=config))
    await session.start(transport=transport)
    return session, model, transport


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="interrupt_min_duration"):
        InterruptConfig(interrupt_min_duration=0)
    with pytest.raises(ValueError, match="mode"):
        InterruptConfig(mode="LOUD")  # type: ignore[arg-type]


@virtual_clock
async def test_min_duration_comes_from_the_config() -> None:
    session, model, _ = await start(InterruptConfig(interrupt_min_duration=1.0, mode="VAD_ONLY"))
    handle = await session.reply(wait_for_playback=False)
    await settle(0.5)
    model.user_starts_speaking()
    await settle(0.7)
    assert not handle.done()  # 0.7 s of speech: not yet
    await settle(0.5)
    assert handle.interrupted
    await session.close()


@virtual_clock
async def test_enough_words_interrupt_before_the_duration_in_hybrid_mode() -> None:
    session, model, _ = await start(InterruptConfig(interrupt_min_duration=3.0, interrupt_min_words=2))
    handle = await session.reply(wait_for_playback=False)
    await settle(0.5)
    model.user_starts_speaking()
    await settle(0.2)
    model.user_says("wait", final=False)
    await settle(0.1)
    assert not handle.done()  # one word
    model.user_says("wait stop", final=False)
    await settle(0.1)
    assert handle.interrupted
    await session.close()


@virtual_clock
async def test_a_false_interruption_pauses_then_plays_on_from_where_it_was() -> None:
    session, model, transport = await start(InterruptConfig(interrupt_min_duration=0.8,
                                                            resume_on_false_interrupt=True))
    handle = await session.reply(wait_for_playback=False)
    await settle(1.0)
    model.user_starts_speaking()
    await settle(0.1)
    paused_at = transport.played
    await settle(0.4)
    assert transport.played == pytest.approx(paused_at, abs=0.03)  # quiet while the user might interrupt
    model.user_stops_speaking(respond=False)
    await settle(0.1)
    assert not handle.done()
    await handle.wait_for_playout()
    assert not handle.interrupted
    assert transport.output.shape[0] / 24000 == pytest.approx(4.0, abs=0.05)  # every frame, once
    await session.close()
