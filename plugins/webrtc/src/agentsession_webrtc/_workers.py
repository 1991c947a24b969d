"""``playground --workers N``: browser connections spread over N worker processes.

The front process serves the page and forwards each offer to a worker (round robin, skipping full ones).
The worker's aiortc peer makes the answer, so media and the data channel then flow between the browser
and that worker directly: the front only relays the offer/answer exchange and the close beacon. Each
worker is this program again in ``playground`` mode on a loopback port, behind a token only the front knows.
A worker serves until its stdin closes: the front closes it to stop the worker, and so does the system if
the front dies, so no worker outlives it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from agentsession import AgentSessionError, PooledProcess, PoolJob, ProcessPool, program_command, protect_secret

logger = logging.getLogger("agentsession.webrtc")

_ANNOUNCE = re.compile(r"playground: open (http://[^?\s]+)")
#: connections remembered for the close beacon, per possible live one (ended ones are not reported back)
_REMEMBERED = 4
#: set in a worker's environment: serve until stdin closes
WORKER_ENV = "AGENTSESSION_PLAYGROUND_WORKER"


class _Worker:
    def __init__(self, index: int, job: PoolJob) -> None:
        assert job.process is not None
        self.index = index
        self.job = job
        self.proc: PooledProcess = job.process
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.watch: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and self.url.done() and not self.url.cancelled()


class PlaygroundWorkers:
    """N worker processes running ``argv`` in playground mode; ``offer`` and ``close_session`` reach them.

    The processes are jobs of core's ``ProcessPool`` (which relays their output, whole lines, and stops them):
    ``output`` gets each line a worker prints (prefixed with ``[worker k]``); its announce line is read here.
    """

    def __init__(self, count: int, argv: Sequence[str], *, max_connections: int,
                 output: Callable[[str], None] = print) -> None:
        if count < 2:
            raise ValueError("a worker pool needs at least 2 workers")
        self.count = count
        self.argv = list(argv)
        self.max_connections = max_connections
        self.output = output
        self._token = secrets.token_urlsafe(24)
        protect_secret(self._token)
        self._workers: list[_Worker] = []
        self._by_process: dict[int, _Worker] = {}
        self._next = itertools.count()
        self._sessions: dict[str, _Worker] = {}
        self._http: aiohttp.ClientSession | None = None
        self._pool = ProcessPool(self.argv, max_processes=count, output=self._line,
                                 env={"AGENTSESSION_PLAYGROUND_TOKEN": self._token, WORKER_ENV: "1"})

    async def start(self, timeout: float = 60.0) -> None:
        """Start the workers and wait until each serves (an ``AgentSessionError`` if one does not)."""
        for k in range(self.count):
            job = await self._pool.run_command(["playground", "--host", "127.0.0.1", "--port", "0",
                                                "--max-connections", str(self.max_connections)],
                                               job_id=f"playground-{k}")
            worker = _Worker(k, job)
            self._by_process[worker.proc.index] = worker
            worker.watch = asyncio.get_running_loop().create_task(self._watch(worker), name=f"playground-worker-{k}")
            self._workers.append(worker)
        self._http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._token}"},
                                           timeout=aiohttp.ClientTimeout(total=30))
        try:
            await asyncio.wait_for(asyncio.gather(*(w.url for w in self._workers)), timeout)
        except TimeoutError:
            raise AgentSessionError(f"playground workers did not start within {timeout:g} s") from None

    def _line(self, process: PooledProcess, line: str) -> None:
        worker = self._by_process.get(process.index)
        found = _ANNOUNCE.search(line)
        if worker is not None and found and not worker.url.done():
            worker.url.set_result(found.group(1))
        elif line:
            self.output(f"[worker {worker.index if worker is not None else process.index}] {line}")

    async def _watch(self, worker: _Worker) -> None:
        code = await worker.proc.wait()
        await asyncio.gather(*worker.proc.tasks, return_exceptions=True)  # its last lines relayed
        if not worker.url.done():
            worker.url.set_exception(AgentSessionError(f"playground worker {worker.index} exited (code {code}) "
                                                       "before serving"))
        elif code not in (0, 130, -signal.SIGINT, -signal.SIGTERM):
            logger.error("playground worker %d exited (code %s)", worker.index, code)

    async def wait_all_exited(self) -> None:
        """Return when no worker is left (each one crashed or was stopped)."""
        await asyncio.gather(*(w.proc.wait() for w in self._workers))

    async def offer(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Forward a checked offer: the first worker in turn that takes it answers; 503 when all are full."""
        assert self._http is not None
        start = next(self._next)
        for i in range(self.count):
            worker = self._workers[(start + i) % self.count]
            if not worker.alive:
                continue
            try:
                async with self._http.post(worker.url.result() + "offer", json=payload) as response:
                    body: dict[str, Any] = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                logger.warning("playground worker %d did not answer an offer: %s", worker.index, exc)
                continue
            if status == 503:
                continue
            if status == 200 and isinstance(body.get("id"), str):
                self._sessions[body["id"]] = worker
                while len(self._sessions) > _REMEMBERED * self.count * self.max_connections:
                    del self._sessions[next(iter(self._sessions))]  # the oldest: long over, or never beaconed
            return status, body
        return 503, {"error": f"every playground worker is full (max {self.max_connections} connections each)"}

    async def close_session(self, session_id: str) -> int:
        """Forward the page's close beacon to the worker that answered it (404: unknown connection)."""
        worker = self._sessions.pop(session_id, None)
        if worker is None or not worker.alive or self._http is None:
            return 404
        try:
            async with self._http.post(worker.url.result() + f"sessions/{session_id}/close") as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 404

    async def stop(self, grace: float) -> None:
        """Close every worker's stdin (it stops serving, its sessions end and close), and kill what is left
        after ``grace``."""
        await self._pool.aclose(grace)
        watches = [w.watch for w in self._workers if w.watch is not None]
        await asyncio.gather(*watches, return_exceptions=True)
        for worker in self._workers:
            if not worker.url.done():
                worker.url.cancel()
            elif not worker.url.cancelled():
                worker.url.exception()  # a worker that never served: already reported by start()
        if self._http is not None:
            await self._http.close()
            self._http = None


def worker_argv(log_level: str) -> list[str]:
    """The command that runs this program again (its playground arguments are added by the pool)."""
    return [*program_command(), "--log-level", log_level]


async def until_stdin_closes() -> None:
    """Return when this process's stdin reaches its end (a worker's signal to stop)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while await reader.read(4096):
            pass
    finally:
        transport.close()
