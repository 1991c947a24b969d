"""A pool of worker processes: warm ones waiting for jobs, crash isolation, memory limits, load, drain.

Each process is this program again (:func:`program_command`), started with one end of a socket pair whose
number is in ``AGENTSESSION_POOL_FD``. Its ``WorkerJob`` sees that variable (see ``_pool_child``): with a
command line it runs that job (a *dedicated* process); without one it loads the plugins, says ``ready`` and
waits for a job on the socket (a *warm* process), so a job starts without paying for a process start and
its imports. Messages are JSON lines:

- child to pool: ``{"type": "ready"}``, ``{"type": "started", "id"}`` (the entrypoint runs),
  ``{"type": "joined", "id"}`` (its ``ctx.connect()`` joined the room), ``{"type": "done", "id", "code", "error"}``;
- pool to child: ``{"type": "job", "id", "args", "room", "metadata"}`` (``args``: the job's command line, mode
  first; ``room``: ``RoomOptions`` fields, the meeting's token among them, which never go on a command line;
  ``metadata``: the job's ``ctx.metadata``).

A process runs one job at a time; a job that crashes, segfaults or leaks takes only its own process with
it (the job is reported failed). The pool's end of the socket closing (the pool stopping, or its process
dying) stops the children: no child outlives the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import AgentSessionError
from ._secrets import redact

logger = logging.getLogger("agentsession.pool")

POOL_FD_ENV = "AGENTSESSION_POOL_FD"
#: warm processes that exit before they are ready, in a row, before the pool gives up starting them
START_FAILURES = 3

JobStatus = Literal["completed", "failed"]


class PoolFull(AgentSessionError):
    """``submit`` with ``max_processes`` jobs running, or while draining."""


@dataclass
class JobSpec:
    """One job: ``args`` is its command line (``["room", "--room-id", "x"]``), ``room`` sets ``RoomOptions``
    fields of its ``JobContext`` (secrets go here: a command line is visible to every user of the machine),
    ``metadata`` (JSON data) is its ``ctx.metadata``."""

    id: str
    args: list[str]
    room: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"JobSpec(id={self.id!r}, args={self.args!r}, room={sorted(self.room)})"


@dataclass(frozen=True)
class JobResult:
    status: JobStatus
    error: str | None = None
    code: int | None = None


class PoolJob:
    """A submitted job: ``started`` resolves (to the loop time) when its entrypoint runs, ``joined`` when its
    ``ctx.connect()`` joined the room, ``done`` to its result."""

    def __init__(self, spec: JobSpec) -> None:
        loop = asyncio.get_running_loop()
        self.spec = spec
        self.id = spec.id
        self.submitted_at = loop.time()
        self.started: asyncio.Future[float] = loop.create_future()
        self.joined: asyncio.Future[float] = loop.create_future()
        self.done: asyncio.Future[JobResult] = loop.create_future()
        self.process: PooledProcess | None = None
        self.warm = False  # given to a process that was already waiting

    @property
    def start_latency(self) -> float | None:
        """Seconds from ``submit`` to the entrypoint running."""
        if not self.started.done() or self.started.cancelled():
            return None
        return self.started.result() - self.submitted_at

    def _finish(self, result: JobResult) -> None:
        for future in (self.started, self.joined):
            if not future.done():
                future.cancel()
        if not self.done.done():
            self.done.set_result(result)


class PooledProcess:
    """One process of the pool."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, control: socket.socket) -> None:
        self.index = index
        self.proc = proc
        self.pid = proc.pid
        self.job: PoolJob | None = None
        self.jobs_run = 0
        self.ready = False  # waiting for a job
        self.memory_killed: float | None = None
        self.memory_warned = False
        self._control = control
        self._writer: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self) -> int:
        return await self.proc.wait()

    def rss_mb(self) -> float | None:
        """Resident memory in MB (Linux ``/proc``), ``None`` when unknown or gone."""
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
        except (OSError, ValueError, IndexError):
            return None

    def send(self, message: dict[str, Any]) -> bool:
        if self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(json.dumps(message).encode() + b"\n")
        return True

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def close_lifelines(self) -> None:
        """Close its stdin and the control socket: a pool process stops (a job in it is asked to end)."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        if self._writer is not None:
            self._writer.close()
        else:
            self._control.close()


def _start_failed(exc: Exception) -> str:
    """Log why a process could not be started and return it as a job's error (an OSError tells what failed;
    anything else is unexpected, logged with its traceback)."""
    expected = isinstance(exc, OSError)
    reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    logger.error("could not start a pool process: %s", reason, exc_info=None if expected else exc)
    return f"could not start a process: {reason}"


def _default_output(process: PooledProcess, line: str) -> None:
    print(f"[worker {process.index}] {line}", flush=True)


class ProcessPool:
    """Processes running ``argv`` (default: this program again), at most ``max_processes`` jobs at once.

    ``num_idle_processes`` warm processes are kept waiting (within ``max_processes``); ``submit`` gives a job to
    one, or starts a process for it. Each line a process prints goes to ``output(process, line)`` whole
    (default: printed as ``[worker k] line``). ``on_change`` is called when a job starts or ends.
    ``own_process_group``: the processes run in a session (so a process group) of their own: they get no Ctrl-C
    from the terminal, and stop when the pool closes.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        max_processes: int,
        num_idle_processes: int = 0,
        jobs_per_process: int = 1,
        memory_limit_mb: float = 0.0,
        memory_warn_mb: float = 0.0,
        cpu_load: bool = False,
        env: dict[str, str] | None = None,
        output: Callable[[PooledProcess, str], None] = _default_output,
        on_change: Callable[[PoolJob], None] | None = None,
        memory_interval: float = 0.5,
        own_process_group: bool = False,
    ) -> None:
        if max_processes < 1:
            raise ValueError("max_processes must be at least 1")
        self.argv = list(argv)
        self.max_processes = max_processes
        self.num_idle_processes = num_idle_processes
        self.jobs_per_process = jobs_per_process
        self.memory_limit_mb = memory_limit_mb
        self.memory_warn_mb = memory_warn_mb
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.output = output
        self.on_change = on_change
        self.cpu = CPUMonitor() if cpu_load else None
        self.memory_interval = memory_interval
        self.own_process_group = own_process_group
        self.processes: list[PooledProcess] = []
        self.jobs: dict[str, PoolJob] = {}
        self.draining = False
        self._pending: deque[PoolJob] = deque()
        self._index = itertools.count()
        self._starting = 0
        self._start_failures = 0
        #: why processes cannot be started (spawn failed, or they exit before they are ready); ``None`` once one is
        self.start_error: str | None = None
        self._closed = False
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    # -- state --------------------------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Jobs submitted and not ended (waiting for a process included)."""
        return len(self.jobs)

    @property
    def idle(self) -> int:
        """Warm processes waiting for a job."""
        return sum(1 for p in self.processes if p.ready and p.job is None)

    @property
    def job_load(self) -> float:
        return min(1.0, self.running / self.max_processes)

    def load(self, reserved: int = 0) -> float:
        """Running (plus ``reserved``) jobs / ``max_processes``, or the machine's CPU busy fraction when higher."""
        jobs = min(1.0, (self.running + reserved) / self.max_processes)
        return max(jobs, self.cpu.busy()) if self.cpu is not None else jobs

    # -- life -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the warm processes (without waiting for them to be ready) and the memory watchdog."""
        if self._watchdog is None and (self.memory_limit_mb > 0 or self.memory_warn_mb > 0):
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_memory(), name="pool-memory")
        if self.cpu is not None:
            self.cpu.busy()  # the first sample
        await self._replenish()

    async def probe(self, timeout: float = 30.0) -> bool:
        """After ``start_error``: start one warm process and wait until it is ready (or fails); True when it is."""
        if self.start_error is None:
            return True
        if self._closed:
            return False
        self._start_failures = 0
        try:
            process = await self._start_process([], None)
        except Exception as exc:
            self.start_error = _start_failed(exc)
            return False

        async def until() -> None:
            while not process.ready and process.returncode is None:
                self._changed.clear()
                await self._changed.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until(), timeout)
        return self.start_error is None

    async def wait_idle(self, count: int | None = None, timeout: float = 60.0) -> None:
        """Wait until ``count`` (default ``num_idle_processes``) warm processes are waiting."""
        want = self.num_idle_processes if count is None else count

        async def until() -> None:
            while self.idle < want:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    def submit(self, spec: JobSpec) -> PoolJob:
        """Run ``spec`` in a warm process (or one started for it); ``PoolFull`` when at ``max_processes`` or draining."""
        if self.draining or self._closed:
            raise PoolFull("the pool is draining: it takes no new jobs")
        if self._start_failures >= START_FAILURES and self.start_error is not None:
            raise PoolFull(f"the pool cannot start processes: {self.start_error}")
        if self.running >= self.max_processes:
            raise PoolFull(f"the pool runs {self.running} jobs already (max_processes={self.max_processes})")
        if spec.id in self.jobs:
            raise ValueError(f"job {spec.id!r} is already running")
        job = PoolJob(spec)
        self.jobs[spec.id] = job
        self._pending.append(job)
        self._spawn_soon(self._dispatch())
        return job

    async def run_command(self, args: Sequence[str], *, job_id: str | None = None) -> PoolJob:
        """Start a process with ``args`` on its command line (a cold, dedicated process); its job ends when
        it exits (exit code 0: completed)."""
        if self.draining or self._closed:
            raise PoolFull("the pool is draining: it takes no new jobs")
        job = PoolJob(JobSpec(job_id or f"cmd-{len(self.processes)}", list(args)))
        self.jobs[job.id] = job
        try:
            process = await self._start_process(list(args), job)
        except BaseException:
            del self.jobs[job.id]
            raise
        job.process = process
        return job

    async def stop_job(self, job_id: str, grace: float = 10.0) -> None:
        """Ask a job to end (SIGTERM: its sessions close, its ``finally`` blocks run); killed after ``grace``."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        if job in self._pending:
            self._pending.remove(job)
            self._end(job, JobResult("failed", "stopped before it started"))
            return
        process = job.process
        if process is None:
            return
        process.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(job.done), grace)
        except TimeoutError:
            logger.warning("job %s did not end %g s after SIGTERM: killed", job_id, grace)
            process.signal(signal.SIGKILL)
            await asyncio.shield(job.done)

    async def drain(self, timeout: float | None, *, grace: float = 10.0) -> bool:
        """Take no new jobs, let the running ones end (up to ``timeout`` seconds), then stop what is left.
        True when every job ended by itself."""
        self.draining = True
        for process in self.processes:
            if process.job is None:
                process.close_lifelines()  # idle: nothing to wait for
        waits = [asyncio.shield(j.done) for j in self.jobs.values()]
        finished = True
        if waits:
            done, pending = await asyncio.wait(waits, timeout=timeout)
            finished = not pending
            if pending:
                logger.warning("drain: %d jobs still running after %g s: stopping them", len(pending), timeout or 0)
                await asyncio.gather(*(self.stop_job(j, grace) for j in list(self.jobs)))
        return finished

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop every process: each is told (stdin and control socket closed), killed after ``grace``."""
        self._closed = True
        self.draining = True
        for job in list(self._pending):
            self._end(job, JobResult("failed", "the pool closed"))
        self._pending.clear()
        for process in self.processes:
            process.close_lifelines()
        alive = [p for p in self.processes if p.returncode is None]
        if alive:
            try:
                await asyncio.wait_for(asyncio.gather(*(p.wait() for p in alive)), grace)
            except TimeoutError:
                for p in alive:
                    if p.returncode is None:
                        logger.warning("pool process %d did not stop in %g s: killed", p.index, grace)
                        p.signal(signal.SIGKILL)
                await asyncio.gather(*(p.wait() for p in alive))
        for process in self.processes:
            await asyncio.gather(*process.tasks, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_all_exited(self) -> None:
        """Return when every process started so far has exited."""
        await asyncio.gather(*(p.wait() for p in self.processes))

    # -- inside ---------------------------------------------------------------------------------------------

    def _spawn_soon(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("pool task failed", exc_info=task.exception())

    async def _dispatch(self) -> None:
        """Give pending jobs to waiting processes, start processes for the rest, keep the idle ones topped up."""
        while self._pending:
            process = next((p for p in self.processes if p.ready and p.job is None and p.returncode is None), None)
            if process is None:
                break
            job = self._pending.popleft()
            self._assign(process, job, warm=True)
        await self._replenish()

    def _assign(self, process: PooledProcess, job: PoolJob, *, warm: bool) -> None:
        process.ready = False
        process.job = job
        job.process = process
        job.warm = warm
        if not process.send({"type": "job", "id": job.id, "args": job.spec.args, "room": job.spec.room,
                             "metadata": job.spec.metadata}):
            self._end(job, JobResult("failed", "its process went away"))

    async def _replenish(self) -> None:
        if self._closed or self._start_failures >= START_FAILURES:
            return
        waiting = sum(1 for p in self.processes
                      if p.returncode is None and p.job is None and p.jobs_run < self.jobs_per_process)
        idle_target = 0 if self.draining else min(self.num_idle_processes, self.max_processes - self.running)
        want = len(self._pending) + idle_target - waiting - self._starting
        for _ in range(max(0, want)):
            self._starting += 1
            try:
                await self._start_process([], None)
            except Exception as exc:  # not only OSError: an event loop may refuse the spawn's arguments
                self.start_error = _start_failed(exc)
                for job in list(self._pending):
                    self._end(job, JobResult("failed", self.start_error))
                self._pending.clear()
                return
            finally:
                self._starting -= 1

    async def _start_process(self, args: list[str], job: PoolJob | None) -> PooledProcess:
        ours, theirs = socket.socketpair()
        # "<fd>,command": a dedicated process, its job on its command line; "<fd>": a warm one
        env = {**self.env, POOL_FD_ENV: f"{theirs.fileno()}{',command' if job is not None else ''}"}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, *args, env=env, pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                start_new_session=self.own_process_group,  # uvloop takes this, not process_group
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        process = PooledProcess(next(self._index), proc, ours)
        process.job = job
        self.processes.append(process)
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        process._writer = writer
        process.tasks = [
            loop.create_task(self._read_control(process, reader), name=f"pool-control-{process.index}"),
            loop.create_task(self._relay(process), name=f"pool-output-{process.index}"),
        ]
        for task in process.tasks:
            task.add_done_callback(lambda _: self._forget(process))
        return process

    def _forget(self, process: PooledProcess) -> None:
        """Drop a process once it exited and its output and control socket are read to the end."""
        if all(t.done() for t in process.tasks) and process in self.processes:
            self.processes.remove(process)

    async def _relay(self, process: PooledProcess) -> None:
        stdout = process.proc.stdout
        assert stdout is not None
        async for raw in stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                self.output(process, line)
            except Exception:
                logger.exception("pool output callback failed")

    async def _read_control(self, process: PooledProcess, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for raw in reader:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                kind = message.get("type")
                job = process.job
                if kind == "ready":
                    process.ready = True
                    self._start_failures = 0
                    self.start_error = None
                    self._changed.set()
                    if self._closed or self.draining:
                        process.close_lifelines()
                    else:
                        self._spawn_soon(self._dispatch())
                elif kind == "started" and job is not None and not job.started.done():
                    self.start_error = None
                    job.started.set_result(loop.time())
                    self._notify(job)
                elif kind == "joined" and job is not None and not job.joined.done():
                    job.joined.set_result(loop.time())
                    self._notify(job)
                elif kind == "done" and job is not None:
                    code = int(message.get("code") or 0)
                    error = message.get("error") or (None if code == 0 else f"the job exited with code {code}")
                    process.jobs_run += 1
                    process.job = None
                    self._end(job, JobResult("completed" if code == 0 else "failed", error, code))
        except (ConnectionError, OSError):
            pass
        code = await process.proc.wait()
        process.ready = False
        process.close_lifelines()  # its socket and stdin: one of each per process would pile up otherwise
        if process._writer is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await process._writer.wait_closed()
        job = process.job
        if job is not None:
            process.job = None
            if process.memory_killed is not None:
                error = f"memory limit exceeded ({process.memory_killed:.0f} MB > {self.memory_limit_mb:g} MB)"
            elif code < 0:
                error = f"its process died ({signal.Signals(-code).name})"
            else:
                error = None if code == 0 else f"its process exited with code {code}"
            self._end(job, JobResult("completed" if error is None else "failed", error, code))
        elif process.jobs_run == 0 and not self._closed and not self.draining:
            self._start_failures += 1
            logger.warning("pool process %d exited (code %s) before it was ready", process.index, code)
            if self._start_failures >= START_FAILURES:
                self.start_error = f"its processes exit before they are ready (code {code})"
                logger.error("%d pool processes in a row exited before they were ready: not starting more "
                             "(see their output above)", self._start_failures)
                for pending in list(self._pending):
                    self._end(pending, JobResult("failed", f"pool processes exit before they are ready (code {code})"))
                self._pending.clear()
        self._changed.set()
        if not self._closed:
            self._spawn_soon(self._dispatch())

    def _end(self, job: PoolJob, result: JobResult) -> None:
        if job.done.done():
            return
        self.jobs.pop(job.id, None)
        if result.error:
            result = JobResult(result.status, redact(result.error), result.code)
        job._finish(result)
        self._changed.set()
        self._notify(job)

    def _notify(self, job: PoolJob) -> None:
        if self.on_change is not None:
            try:
                self.on_change(job)
            except Exception:
                logger.exception("pool on_change callback failed")

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(self.memory_interval)
            for process in self.processes:
                if process.job is None or process.returncode is not None:
                    continue
                rss = process.rss_mb()
                if rss is None:
                    continue
                if self.memory_limit_mb > 0 and rss > self.memory_limit_mb and process.memory_killed is None:
                    logger.error("job %s uses %.0f MB (limit %g MB): killed", process.job.id, rss, self.memory_limit_mb)
                    process.memory_killed = rss
                    process.signal(signal.SIGKILL)
                elif self.memory_warn_mb > 0 and rss > self.memory_warn_mb and not process.memory_warned:
                    process.memory_warned = True
                    logger.warning("job %s uses %.0f MB (warning at %g MB)", process.job.id, rss, self.memory_warn_mb)


class CPUMonitor:
    """The machine's CPU busy fraction since the previous call (``/proc/stat``; elsewhere the 1-minute load
    average over the CPU count)."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None
        self._value = 0.0
        self._at = 0.0

    def busy(self, min_interval: float = 0.25) -> float:
        now = time.monotonic()
        if self._last is not None and now - self._at < min_interval:
            return self._value
        sample = _cpu_times()
        if sample is None:
            try:
                return min(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
            except OSError:
                return 0.0
        if self._last is not None:
            busy, total = sample[0] - self._last[0], sample[1] - self._last[1]
            if total > 0:
                self._value = min(1.0, max(0.0, busy / total))
        self._last, self._at = sample, now
        return self._value


def _cpu_times() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total
