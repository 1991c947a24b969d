"""start() and close() in every order: random interleavings on the virtual clock leave nothing running."""

from __future__ import annotations

import asyncio
import random

import pytest

from agentsession import AgentSession, AgentSessionError, ModelOptions, RealTimePipeline
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport, run_virtual
from core_helpers import GreetingAgent


class SlowModel(FakeRealtimeModel):
    """Takes ``connect`` seconds to connect, and may fail to."""

    def __init__(self, connect: float, fail: bool) -> None:
        super().__init__([FakeResponse(text="an answer", audio=1.0)])
        self.connect, self.fail = connect, fail
        self.connected = False

    async def start(self, options: ModelOptions) -> None:
        await asyncio.sleep(self.connect)
        if self.fail:
            raise AgentSessionError("refused")
        self.connected = True
        await super().start(options)


async def scenario(rng: random.Random) -> None:
    before = set(asyncio.all_tasks())
    model = SlowModel(connect=rng.choice([0.0, 0.01, 0.5, 2.0]), fail=rng.random() < 0.2)
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(GreetingAgent(), RealTimePipeline(model))
    closes = rng.choice([1, 2, 3])
    close_from_callback = rng.random() < 0.3
    if close_from_callback:  # a callback that closes the session when it starts speaking
        session.on("agent_state_changed",
                   lambda d: f"{d['state']}" == "speaking" and asyncio.ensure_future(session.close("callback")))
    starting = asyncio.ensure_future(session.start(transport=transport))
    await asyncio.sleep(rng.choice([0.0, 0.005, 0.3, 1.0, 3.0]))  # close during, or after, start
    closers = [asyncio.ensure_future(session.close()) for _ in range(closes)]
    if rng.random() < 0.5:
        model.user_stops_speaking("hello?")  # events arriving while closing
    await asyncio.gather(*closers)
    outcome = await asyncio.gather(starting, return_exceptions=True)
    assert outcome[0] is None or isinstance(outcome[0], AgentSessionError), outcome
    assert session.closed
    assert model.closed or not model.connected  # a connected model is always closed
    with pytest.raises(AgentSessionError):  # start after close is refused
        await session.start(transport=transport)
    await session.close()  # and close stays idempotent
    await transport.close()
    await asyncio.sleep(0)
    left = {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()}
    assert left == set(), left


@pytest.mark.parametrize("seed", range(40))
def test_random_start_close_interleavings_leave_nothing_running(seed: int) -> None:
    run_virtual(scenario(random.Random(seed)))
