"""WorkerJob: modes, concurrent jobs in one process, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agentsession import (
    Agent,
    AgentSession,
    AgentSessionError,
    JobContext,
    RealTimePipeline,
    Transport,
    TransportMode,
    WorkerJob,
    hookimpl,
)
from agentsession.testing import FakeRealtimeModel, FakeTransport, virtual_clock


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


class ServingMode(TransportMode):
    """A server of jobs (as the playground is): one job on a fake user, then it serves until it is stopped."""

    serves = True

    def __init__(self) -> None:
        super().__init__(lambda ctx: FakeTransport())
        self.stopped = False

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        job = run_job(FakeTransport())
        try:
            await asyncio.Future()
        except asyncio.CancelledError:  # stopped: close the server (here: nothing), then return
            self.stopped = True
        await job


def serving(mode: TransportMode, entrypoint: Callable[[JobContext], Awaitable[None]]) -> WorkerJob:
    """A worker whose ``serve`` mode is ``mode``."""
    plugin = types.SimpleNamespace(agentsession_transports=hookimpl(lambda: {"serve": mode}))
    return WorkerJob(entrypoint, plugins=[plugin])


def run_serving(worker: WorkerJob) -> int:
    """Run ``worker``'s ``serve`` mode; a second Ctrl-C comes after 20 s if it hangs (the test fails, not the run)."""
    backstop = threading.Timer(20, os.kill, (os.getpid(), signal.SIGINT))
    backstop.start()
    try:
        return worker.run(["serve"])
    finally:
        backstop.cancel()


def test_a_ctrl_c_ends_a_servers_jobs_then_the_server() -> None:
    """The first Ctrl-C with a conversation open ends it, and then the server too: no second Ctrl-C needed."""
    mode = ServingMode()
    ended: list[str] = []

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
        ended.append(await ctx.wait_for_shutdown())
        await ctx.shutdown()

    worker = serving(mode, entrypoint)
    assert run_serving(worker) == 0
    assert ended == ["interrupted"] and mode.stopped
    assert worker._interrupts == 1  # stopped by the first Ctrl-C alone


class LateJobMode(TransportMode):
    """A server that gets a second job (a tab that connects) while the Ctrl-C's first job is ending."""

    serves = True

    def __init__(self) -> None:
        super().__init__(lambda ctx: FakeTransport())
        self.second = asyncio.Event()

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        jobs = [run_job(FakeTransport())]
        await self.second.wait()
        jobs.append(run_job(FakeTransport()))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Future()
        await asyncio.gather(*jobs)


def test_a_job_that_comes_while_a_ctrl_c_ends_the_jobs_ends_too() -> None:
    mode = LateJobMode()
    ended: list[str] = []
    second_started = asyncio.Event()

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        if not mode.second.is_set():
            worker.stop()  # Ctrl-C
            ended.append(await ctx.wait_for_shutdown())
            mode.second.set()
            await second_started.wait()  # the first job is still ending when the second one starts
        else:
            second_started.set()
            ended.append(await ctx.wait_for_shutdown())
        await ctx.shutdown()

    worker = serving(mode, entrypoint)
    assert run_serving(worker) == 0
    assert ended == ["interrupted", "interrupted"] and worker._interrupts == 1


def test_stop_from_another_thread_ends_the_run_as_sigterm_does() -> None:
    """A pool process's control thread stops its job this way when the pool goes (a signal to itself could land
    while the loop closes)."""
    ended: list[str] = []

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        threading.Thread(target=worker.stop).start()
        ended.append(await ctx.wait_for_shutdown())
        await ctx.shutdown()

    mode = ServingMode()
    worker = serving(mode, entrypoint)
    assert run_serving(worker) == 0
    assert ended == ["interrupted"] and mode.stopped and worker._interrupts == 1
    worker.stop()  # the run is over: nothing to stop, nothing raised


def test_stop_before_the_run_starts_stops_it_at_its_start() -> None:
    started: list[JobContext] = []

    async def entrypoint(ctx: JobContext) -> None:
        started.append(ctx)

    mode = ServingMode()
    worker = serving(mode, entrypoint)
    worker.stop()
    assert run_serving(worker) == 0
    assert mode.stopped and worker._interrupts == 1


class RecordingLoop(asyncio.SelectorEventLoop):
    """Records the signal wake-up descriptor set when it closes (closing closes its wake-up pipe first)."""

    wakeup_fd_at_close: int | None = None

    def close(self) -> None:
        if threading.current_thread() is threading.main_thread():
            fd = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(fd)
            RecordingLoop.wakeup_fd_at_close = fd
        super().close()


def test_the_signal_handlers_are_gone_before_the_loop_closes() -> None:
    """Else a SIGTERM in between is written to the closed pipe ("Exception ignored when trying to write to the
    signal wakeup fd: Bad file descriptor" on stderr, seen when a playground stopped its worker processes)."""
    mode = ServingMode()
    mode.loop_factory = lambda options: RecordingLoop  # type: ignore[method-assign]

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        worker.stop()

    worker = serving(mode, entrypoint)
    assert run_serving(worker) == 0
    assert RecordingLoop.wakeup_fd_at_close == -1


def test_a_failing_entrypoint_gives_a_non_zero_exit() -> None:
    async def entrypoint(ctx: JobContext) -> None:
        raise RuntimeError("bug in the user's entrypoint")

    assert WorkerJob(entrypoint, plugins=[ModePlugin()]).run(["many"]) == 1


@virtual_clock
async def test_no_wake_up_once_the_job_is_ending() -> None:
    """The room (the file input) ended: while the job gives a VideoSDK-style entrypoint (``asyncio.Event().wait()``
    in ``try/finally``) its second to finish, the wake-up timer must not speak into the ended room."""
    loop = asyncio.get_running_loop()
    woke: list[float] = []
    closed: list[float] = []

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(agent=Agent(instructions="Be quiet."), pipeline=RealTimePipeline(FakeRealtimeModel()),
                               wake_up=2.0)
        session.on_wake_up = lambda: woke.append(loop.time())
        session.on("closed", lambda _: closed.append(loop.time()))
        try:
            await ctx.connect()
            await session.start()
            await asyncio.Event().wait()
        finally:
            await session.close()
            await ctx.shutdown()

    transport = FakeTransport()
    start = loop.time()
    loop.call_later(1.5, transport.end, "input done")  # idle since the start: the wake-up is due at 2.0
    await WorkerJob(entrypoint)._run_job(JobContext(transport=transport))
    assert closed and closed[0] - start > 2.0  # the session was still open when the timer was due
    assert woke == []


def test_the_worker_runs_on_uvloop_when_asked_to(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsession._worker import _default_loop_factory

    fake_uvloop = types.ModuleType("uvloop")
    fake_uvloop.new_event_loop = asyncio.new_event_loop  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvloop", fake_uvloop)
    monkeypatch.delenv("AGENTSESSION_LOOP", raising=False)
    assert _default_loop_factory() is None  # installed, not asked for: asyncio's loop
    monkeypatch.setenv("AGENTSESSION_LOOP", "uvloop")
    assert _default_loop_factory() is asyncio.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # asked for, not installed
    with pytest.raises(AgentSessionError, match=r"agentsession\[fast\]"):
        _default_loop_factory()
