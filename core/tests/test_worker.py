"""WorkerJob: modes, concurrent jobs in one process, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from agentsession import (
    Agent,
    AgentSession,
    JobContext,
    RealTimePipeline,
    Transport,
    TransportMode,
    WorkerJob,
    hookimpl,
)
from agentsession.testing import FakeRealtimeModel, FakeTransport


class ManyJobsMode(TransportMode):
    """Runs three jobs at once, each on its own transport (as a playground runs one per browser tab)."""

    def __init__(self) -> None:
        super().__init__(lambda ctx: FakeTransport(), help="three fake users at once")
        self.transports: list[FakeTransport] = []

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        jobs = []
        for _ in range(3):
            transport = FakeTransport()
            self.transports.append(transport)
            jobs.append(run_job(transport))
        await asyncio.gather(*jobs)


class ModePlugin:
    name = "many-jobs"

    def __init__(self) -> None:
        self.mode = ManyJobsMode()

    @hookimpl
    def agentsession_transports(self) -> dict[str, TransportMode]:
        return {"many": self.mode}


class Greeter(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Greet.")

    async def on_enter(self) -> None:
        await self.session.say("Hi!", wait_for_playback=True)
        self.session.transport.end("greeted")


def test_one_process_runs_concurrent_jobs_each_with_its_own_transport() -> None:
    plugin = ModePlugin()
    seen: list[tuple[int, str]] = []

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(Greeter(), RealTimePipeline(FakeRealtimeModel()))
        await ctx.connect()
        await session.start()
        assert session.transport is ctx.transport
        seen.append((id(ctx.transport), await ctx.wait_for_shutdown()))
        await session.close()
        await ctx.shutdown()

    assert WorkerJob(entrypoint, JobContext, plugins=[plugin]).run(["many"]) == 0
    assert sorted(seen) == sorted((id(t), "greeted") for t in plugin.mode.transports)
    assert all(t.closed and t.output.shape[0] > 0 for t in plugin.mode.transports)


def test_a_failing_entrypoint_gives_a_non_zero_exit() -> None:
    async def entrypoint(ctx: JobContext) -> None:
        raise RuntimeError("bug in the user's entrypoint")

    assert WorkerJob(entrypoint, plugins=[ModePlugin()]).run(["many"]) == 1
