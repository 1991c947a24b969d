"""Core's process pool with real processes: warm starts, crash isolation, the memory limit, drain, the HTTP
endpoint and the load."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from agentsession import AgentSessionError
from agentsession._pool import CPUMonitor, JobSpec, PooledProcess, PoolFull, ProcessPool
from agentsession._worker_http import WorkerHTTPServer

# a program whose job does what its room id says: "ok" ends at once, "hold" runs until asked to end,
# "segv" crashes the interpreter, "leak" grows without bound, "fail" raises
PROGRAM = r'''
import asyncio, ctypes, os
from agentsession import JobContext, TransportMode, WorkerJob, hookimpl


class JobMode:
    @hookimpl
    def agentsession_transports(self):
        return {"job": TransportMode(lambda ctx: None)}


async def entrypoint(ctx: JobContext) -> None:
    what = ctx.room_options.room_id
    print(f"job {what} in {os.getpid()}")
    if what == "segv":
        ctypes.string_at(0)
    elif what == "leak":
        hoard = []
        while True:
            hoard.append(bytearray(20_000_000))
            await asyncio.sleep(0.01)
    elif what == "hold":
        await ctx.wait_for_shutdown()
    elif what == "fail":
        raise RuntimeError("the entrypoint broke")


if __name__ == "__main__":
    WorkerJob(entrypoint, plugins=[JobMode()]).start()
'''


@pytest.fixture
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    monkeypatch.setenv("AGENTSESSION_DISABLE_PLUGINS", "console_io,webrtc,openai,gemini,recorder,videosdk")
    return [sys.executable, str(script)]


def job(name: str, what: str) -> JobSpec:
    return JobSpec(name, ["job"], {"room_id": what})


async def test_a_warm_process_starts_a_job_at_once_and_is_replaced(program: list[str]) -> None:
    lines: list[str] = []
    pool = ProcessPool(program, max_processes=2, num_idle_processes=1,
                       output=lambda p, line: lines.append(f"{p.index}:{line}"))
    try:
        await pool.start()
        await pool.wait_idle()
        first = pool.submit(job("a", "ok"))
        result = await asyncio.wait_for(first.done, 30)
        assert result.status == "completed" and first.warm
        latency = first.start_latency
        assert latency is not None and latency < 0.5  # the imports were paid before the job came
        await pool.wait_idle()  # a new warm process replaced the one that ran the job
        assert pool.idle == 1 and pool.running == 0
        assert "0:job ok in" in " ".join(lines)
    finally:
        await pool.aclose()
    assert all(p.returncode is not None for p in pool.processes)


async def test_a_crashing_or_failing_job_takes_only_its_own_process(program: list[str]) -> None:
    pool = ProcessPool(program, max_processes=3, num_idle_processes=0, output=lambda p, line: None)
    try:
        await pool.start()
        held = pool.submit(job("held", "hold"))
        crash = pool.submit(job("crash", "segv"))
        broken = pool.submit(job("broken", "fail"))
        with pytest.raises(PoolFull):
            pool.submit(job("more", "ok"))
        crashed = await asyncio.wait_for(crash.done, 30)
        assert crashed.status == "failed" and "SIGSEGV" in (crashed.error or "")
        failed = await asyncio.wait_for(broken.done, 30)
        assert failed.status == "failed" and failed.error == "RuntimeError: the entrypoint broke"
        await asyncio.wait_for(held.started, 30)
        assert not held.done.done() and held.process is not None and held.process.returncode is None
        await pool.stop_job("held")
        assert (await held.done).status == "completed"  # it ended the way Ctrl-C ends a job
    finally:
        await pool.aclose()


async def test_a_job_over_its_memory_limit_is_killed(program: list[str]) -> None:
    pool = ProcessPool(program, max_processes=2, memory_limit_mb=250, memory_interval=0.05,
                       output=lambda p, line: None)
    try:
        await pool.start()
        neighbour = pool.submit(job("n", "hold"))
        leak = pool.submit(job("leak", "leak"))
        result = await asyncio.wait_for(leak.done, 60)
        assert result.status == "failed" and "memory limit exceeded" in (result.error or "")
        assert not neighbour.done.done()
    finally:
        await pool.aclose()


async def test_drain_takes_no_jobs_and_stops_what_outlives_the_bound(program: list[str]) -> None:
    pool = ProcessPool(program, max_processes=3, num_idle_processes=1, output=lambda p, line: None)
    try:
        await pool.start()
        quick = pool.submit(job("quick", "ok"))
        held = pool.submit(job("held", "hold"))
        await asyncio.wait_for(held.started, 30)
        assert not await pool.drain(timeout=0.5)
        assert (await quick.done).status == "completed"
        assert (await held.done).status == "completed"  # asked to end after the bound, and it did
        with pytest.raises(PoolFull, match="draining"):
            pool.submit(job("late", "ok"))
        assert pool.idle == 0
    finally:
        await pool.aclose()


async def test_processes_do_not_outlive_the_pool_s_socket(program: list[str]) -> None:
    pool = ProcessPool(program, max_processes=1, output=lambda p, line: None)
    await pool.start()
    held = pool.submit(job("held", "hold"))
    await asyncio.wait_for(held.started, 30)
    process = held.process
    assert isinstance(process, PooledProcess)
    process.close_lifelines()  # what the pool's process dying does to it
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert (await held.done).status == "completed"
    await pool.aclose()


async def test_a_spawn_the_loop_refuses_fails_the_jobs_instead_of_hanging(
        program: list[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:  # as uvloop 0.23 refused process_group=0
        raise ValueError("unexpected kwargs: process_group")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    pool = ProcessPool(program, max_processes=2, own_process_group=True, output=lambda p, line: None)
    try:
        await pool.start()
        waiting = pool.submit(job("a", "ok"))
        result = await asyncio.wait_for(waiting.done, 30)
        assert result.status == "failed"
        assert result.error == "could not start a process: ValueError: unexpected kwargs: process_group"
        assert pool.start_error == result.error and pool.running == 0
        with pytest.raises(ValueError):
            await pool.run_command(["--version"])
        assert pool.running == 0  # the command's job is not left behind
        assert not await pool.probe()
        assert "could not start a pool process: ValueError" in caplog.text
    finally:
        await pool.aclose()


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = (await reader.read()).decode()
    writer.close()
    head, _, body = data.partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_worker_http_endpoint() -> None:
    status = {"ready": True, "load": 0.5, "jobs": 2, "max_processes": 4, "idle_processes": 1, "draining": 0,
              "registered": 1}
    server = WorkerHTTPServer(lambda: status, host="127.0.0.1", port=0)
    await server.start()
    try:
        assert await _get(server.port, "/health") == (200, "ok\n")
        assert (await _get(server.port, "/ready"))[0] == 200
        code, body = await _get(server.port, "/load")
        assert code == 200 and json.loads(body)["jobs"] == 2
        code, body = await _get(server.port, "/metrics")
        assert "# TYPE agentsession_worker_load gauge\nagentsession_worker_load 0.5\n" in body
        assert "agentsession_worker_jobs 2\n" in body
        status["ready"] = False
        assert (await _get(server.port, "/ready"))[0] == 503
        assert (await _get(server.port, "/nope"))[0] == 404
    finally:
        await server.aclose()


async def test_load_is_jobs_over_max_or_cpu_when_higher(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ProcessPool(["true"], max_processes=4, cpu_load=True)
    assert pool.cpu is not None
    monkeypatch.setattr(pool.cpu, "busy", lambda: 0.6)
    assert pool.load() == 0.6
    assert pool.load(reserved=3) == 0.75
    samples = iter([(100, 1000), (400, 1400)])
    monkeypatch.setattr("agentsession._pool._cpu_times", lambda: next(samples))
    cpu = CPUMonitor()
    assert cpu.busy() == 0.0
    assert cpu.busy(min_interval=0) == pytest.approx(300 / 400)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
async def test_finished_jobs_leave_no_file_descriptors_behind(program: list[str]) -> None:
    pool = ProcessPool(program, max_processes=1, num_idle_processes=1, output=lambda p, line: None)
    try:
        await pool.start()
        await pool.wait_idle()
        before = _open_fds()
        for n in range(4):
            result = await asyncio.wait_for(pool.submit(job(f"j{n}", "ok")).done, 30)
            assert result.status == "completed"
            await pool.wait_idle()  # its replacement is waiting: the same number of processes as before
        exited = [p for p in pool.processes if p.returncode is not None]
        await asyncio.gather(*(t for p in exited for t in p.tasks))  # their pipes and sockets are done with
        assert _open_fds() == before
        assert len(pool.processes) == 1  # nor a record of each process that ever ran
    finally:
        await pool.aclose()


async def test_the_worker_http_port_taken_says_which_option_to_change() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = WorkerHTTPServer(lambda: {"ready": True}, host="127.0.0.1", port=port)
        with pytest.raises(AgentSessionError, match=rf"port {port} on 127.0.0.1 is already in use .*--port N"):
            await server.start()
    await server.aclose()
