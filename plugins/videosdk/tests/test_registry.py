"""Registry workers (real processes: ``WorkerJob(..., options=Options(register=True))``, each with its pool)
against the fake registry: dispatch within thresholds, crashes, drain on SIGTERM, a registry outage."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from registry_fakes import AGENT, ROOM_TOKEN, Control, FakeRegistry

from agentsession.plugin import Options
from agentsession_videosdk._registry import agent_url

TOKEN = "worker-token-abcdefghijklmnop"
#: plugins the test agents do not need (their imports would cost each pool process a second)
LIGHT = "console_io,webrtc,openai,gemini,recorder"


@dataclass
class Env:
    registry: FakeRegistry
    control: Control
    script: Path
    procs: list[asyncio.subprocess.Process]

    async def worker(self, **extra: str) -> asyncio.subprocess.Process:
        env = {**os.environ, "VIDEOSDK_AUTH_TOKEN": TOKEN, "REGISTRY_URL": self.registry.url,
               "AGENT_CONTROL": str(self.control.path), "EXPECT_ROOM_TOKEN": ROOM_TOKEN,
               "AGENTSESSION_DISABLE_PLUGINS": LIGHT, **extra}
        proc = await asyncio.create_subprocess_exec(sys.executable, str(self.script), env=env,
                                                    stdout=asyncio.subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    async def workers(self, count: int, **extra: str) -> list[str]:
        """Start ``count`` workers; their registry ids, in start order."""
        before = len(self.registry.registrations)
        for _ in range(count):
            await self.worker(**extra)
        await self.registry.wait_for(lambda: len(self.registry.registrations) >= before + count)
        return [r["assigned"] for r in self.registry.registrations[before:]]

    async def dispatch_until_full(self, first: int, end: int = 1000) -> int:
        """Dispatch jobs job-<first>, ... (before job-<end>) until no worker accepts one; the number placed."""
        k = first
        while k < end and await self.registry.dispatch(f"job-{k}", f"room-{k}") is not None:
            k += 1
        return k - first


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    registry = FakeRegistry(TOKEN)
    await registry.start()
    control = Control(tmp_path / "control.sock")
    await control.start()
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    e = Env(registry, control, script, [])
    try:
        yield e
    finally:
        control.hold = False
        control.release()
        for proc in e.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in e.procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await control.stop()
        await registry.stop()


async def test_sixty_jobs_run_exactly_once_and_no_worker_goes_over_its_threshold(env: Env) -> None:
    ids = await env.workers(3, JOBS_PER_PROCESS="10")
    assert len(set(ids)) == 3
    for reg in env.registry.registrations:
        assert reg["agent_name"] == "test-agent" and reg["worker_id"] == ""  # new workers ask for an id
        assert reg["load_threshold"] == 0.75 and reg["max_processes"] == 4
        assert reg["capabilities"] == ["room", "voice", "stt", "tts"]
    env.control.hold = True
    placed = 0
    while placed < 60:
        # fill every worker up to its threshold: (jobs + 1) / 4 must stay under 0.75, so 3 each
        batch = await env.dispatch_until_full(placed, 60)
        assert batch > 0
        placed += batch
        await env.control.wait_for(lambda n=placed: len(env.control.starts) == n)
        if placed < 60:
            assert batch == 9, batch  # all three full: each refused the next one
        env.control.release()
        await env.registry.wait_for(lambda n=placed: all(env.registry.final(f"job-{k}") for k in range(n)))
    starts = sorted(s.room for s in env.control.starts)
    assert starts == sorted(f"room-{k}" for k in range(60))  # every job ran, exactly once
    assert all(s.token_ok for s in env.control.starts)  # each job got the assignment's token, not the worker's
    for k in range(60):
        statuses = [u["status"] for u in env.registry.updates[f"job-{k}"]]
        assert statuses == ["running", "completed"], (k, statuses)
    assert max(env.registry.active_at_assignment.values()) <= 2  # accepted only below the threshold
    assert max(env.control.peak.values()) == 3 and len(env.control.peak) == 3
    assert {w for _, w, _ in env.registry.refusals} == set(ids)
    assert all("capacity" in reason for *_, reason in env.registry.refusals)
    # the worker reports its status after the jobs' own final statuses: wait for it, not for a moment
    await env.registry.wait_for(lambda: env.registry.workers[ids[0]].statuses[-1]["job_count"] == 0)
    statuses = env.registry.workers[ids[0]].statuses
    assert max(s["job_count"] for s in statuses) == 3 and max(s["load"] for s in statuses) == 0.75
    assert statuses[-1]["job_count"] == 0 and statuses[-1]["status"] == "available"


async def test_a_killed_job_process_is_reported_failed_and_a_killed_worker_takes_its_jobs_along(env: Env) -> None:
    ids = await env.workers(2)
    env.control.hold = True
    assert await env.dispatch_until_full(0) == 6
    await env.control.wait_for(lambda: len(env.control.starts) == 6)
    by_room = {s.room: s for s in env.control.starts}
    victim = by_room["room-0"]
    os.kill(victim.pid, signal.SIGKILL)  # a job that segfaults or runs out of memory: only its process goes
    await env.registry.wait_for(lambda: env.registry.final("job-0") == "failed")
    failure = env.registry.updates["job-0"][-1]
    assert "SIGKILL" in failure["error"]
    assert len(env.control.running(victim.worker_pid)) == 2  # its neighbours run on
    # the worker has room again: the next job goes to it
    assert await env.registry.dispatch("job-6", "room-6") == env.registry.assigned["job-0"]
    await env.control.wait_for(lambda: len(env.control.starts) == 7)

    # now the whole worker process dies: the registry sees its connection drop, its jobs' processes end
    other = next(p for p in env.procs if p.pid != victim.worker_pid)
    doomed = env.control.running(other.pid)
    assert len(doomed) == 3
    other.kill()
    await other.wait()
    lost = env.registry.assigned[f"job-{int(doomed[0].room.split('-')[1])}"]
    await env.registry.wait_for(lambda: lost not in env.registry.connected())
    await env.control.wait_for(lambda: all(s.gone for s in doomed), timeout=30)
    for s in doomed:
        await asyncio.wait_for(_wait_gone(s.pid), 10)
    # the survivor is untouched and finishes its jobs
    env.control.release()
    survivor = next(w for w in ids if w != lost)
    await env.registry.wait_for(lambda: all(env.registry.final(j) == "completed"
                                            for j, w in env.registry.assigned.items() if w == survivor and j != "job-0"))


async def _wait_gone(pid: int) -> None:
    """Until ``pid`` (not our child: its parent was killed) exits: a pidfd becomes readable then."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    exited = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_sigterm_drains_a_worker(env: Env) -> None:
    ids = await env.workers(2)
    env.control.hold = True
    assert await env.registry.dispatch("job-0", "room-0") == ids[0]
    assert await env.registry.dispatch("job-1", "room-1") == ids[1]
    assert await env.registry.dispatch("job-2", "room-2") == ids[0]
    await env.control.wait_for(lambda: len(env.control.starts) == 3)
    first_pid = next(s.worker_pid for s in env.control.starts if s.room == "room-0")
    first = next(p for p in env.procs if p.pid == first_pid)
    first.send_signal(signal.SIGTERM)
    await env.registry.wait_for(lambda: any(s["status"] == "draining" for s in env.registry.workers[ids[0]].statuses))
    # it refuses new jobs, which go elsewhere
    assert await env.registry.dispatch("job-3", "room-3", order=ids) == ids[1]
    assert ("job-3", ids[0], "worker draining") in env.registry.refusals
    await asyncio.sleep(0)
    assert first.returncode is None  # still finishing its two jobs
    held = env.control.running(first.pid)
    assert sorted(s.room for s in held) == ["room-0", "room-2"]
    env.control.release(held)
    assert await asyncio.wait_for(first.wait(), 30) == 0
    assert [env.registry.final(j) for j in ("job-0", "job-2")] == ["completed", "completed"]
    assert env.registry.workers[ids[0]].statuses[-1]["status"] == "offline"
    assert all(not s.gone for s in held)


async def test_workers_re_register_with_their_ids_after_a_registry_outage(env: Env) -> None:
    ids = await env.workers(2)
    env.control.hold = True
    for k in range(4):
        assert await env.registry.dispatch(f"job-{k}", f"room-{k}") is not None
    await env.control.wait_for(lambda: len(env.control.starts) == 4)
    before = list(env.control.starts)
    await env.registry.stop()
    await env.registry.wait_for(lambda: not env.registry.connected())
    # two jobs end while the registry is away: their outcome must still reach it
    env.control.release(before[:2])
    await env.control.wait_for(lambda: all(s.ended for s in before[:2]))
    await env.registry.start()  # same port
    await env.registry.wait_for(lambda: len(env.registry.registrations) == 4, timeout=30)
    again = env.registry.registrations[2:]
    assert sorted(r["worker_id"] for r in again) == sorted(ids)  # reconnects name their previous id
    assert sorted(r["assigned"] for r in again) == sorted(ids)
    ended = [s.room.replace("room", "job") for s in before[:2]]
    await env.registry.wait_for(lambda: all(env.registry.final(j) == "completed" for j in ended))
    assert all(not s.ended and not s.gone for s in before[2:])  # the running jobs were not disturbed
    env.control.release(before[2:])
    await env.registry.wait_for(lambda: all(env.registry.final(f"job-{k}") == "completed" for k in range(4)))
    assert len(env.control.starts) == 4  # nothing ran twice
    # and the workers take jobs again
    assert await env.registry.dispatch("job-9", "room-9") in ids
    await env.control.wait_for(lambda: len(env.control.starts) == 5)


async def test_termination_request_ends_the_job(env: Env) -> None:
    await env.workers(1)
    env.control.hold = True
    assert await env.registry.dispatch("job-0", "room-0") is not None
    await env.control.wait_for(lambda: len(env.control.starts) == 1)
    await env.registry.terminate("job-0")
    await env.registry.wait_for(lambda: env.registry.final("job-0") is not None)
    assert env.registry.updates["job-0"][-1] == {"type": "job_update", "job_id": "job-0", "status": "completed",
                                                 "error": "Job terminated by registry"}


async def test_an_assignment_s_metadata_room_options_and_wait_reach_the_job(env: Env) -> None:
    """VideoSDK's assignment fields: ``metadata`` is ``ctx.metadata``, every ``room_options`` field reaches the
    job's ``RoomOptions`` (one it lacks is kept as unsupported), ``wait`` reports ``running`` only once the job
    joined its room (a job that never joins is never reported running)."""
    await env.workers(1)
    env.control.hold = True
    options = {"auto_end_session": True, "session_timeout_seconds": 30, "vision": True}
    assert await env.registry.dispatch("job-0", "room-0", room_options=options, wait=True,
                                       metadata={"customer": "acme", "join": True}) is not None
    assert await env.registry.dispatch("job-1", "room-1", wait=True, metadata={"customer": "zeta"}) is not None
    await env.control.wait_for(lambda: len(env.control.starts) == 2)
    seen = {s.room: s.seen for s in env.control.starts}
    assert seen["room-0"] == "metadata=acme session_timeout=30 vision=True"
    assert seen["room-1"] == "metadata=zeta session_timeout=5.0 vision=None"
    assert "job-0" not in env.registry.updates  # held before it joins: not running yet
    env.control.release()
    await env.registry.wait_for(lambda: all(env.registry.final(j) for j in ("job-0", "job-1")))
    assert [u["status"] for u in env.registry.updates["job-0"]] == ["running", "completed"]
    assert [u["status"] for u in env.registry.updates["job-1"]] == ["completed"]


def test_agent_url_and_options_keep_the_token_out_of_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    assert agent_url("https://registry.videosdk.live") == "wss://registry.videosdk.live/agent"
    assert agent_url("http://127.0.0.1:9000/base/") == "ws://127.0.0.1:9000/base/agent"
    assert agent_url("wss://r.example") == "wss://r.example/agent"
    monkeypatch.setenv("VIDEOSDK_AUTH_TOKEN", TOKEN)
    options = Options(register=True)
    assert options.auth_token == TOKEN
    assert TOKEN not in repr(options) and "work…" in repr(options)
    with pytest.raises(ValueError, match="load_threshold"):
        Options(load_threshold=1.5)


async def test_an_unreachable_videosdk_api_says_what_to_do() -> None:
    """Offline (or a proxy in the way), the worker says so and names the ways out, not just the socket error."""
    import socket

    from agentsession_videosdk._registry import RegistryError, fetch_registry_url

    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RegistryError) as failed:
        await fetch_registry_url(ROOM_TOKEN, f"http://127.0.0.1:{port}")
    message = str(failed.value)
    assert "cannot reach VideoSDK's API" in message and f"127.0.0.1:{port}" in message
    assert "VIDEOSDK_REGISTRY_URL" in message and "console, playground, or file --input" in message
    assert ROOM_TOKEN not in message
