"""The ``registry`` mode: this program as a worker of VideoSDK's agent registry, its jobs in core's process pool.

``WorkerJob(entrypoint, options=Options(register=True, ...)).start()`` (or ``python main.py registry``)
registers with the registry, answers availability requests from the pool's load, runs each assigned
meeting as a ``room`` job in a warm pool process, reports job and worker status, and drains on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from agentsession import (
    AgentSessionError,
    JobSpec,
    Options,
    PoolFull,
    PoolJob,
    ProcessPool,
    WorkerHTTPServer,
    program_command,
)

from ._registry import RegistryClient, fetch_registry_url

logger = logging.getLogger("agentsession.videosdk.registry")

#: seconds an accepted availability request holds a slot while the registry sends the assignment
RESERVATION_SECONDS = 10.0
#: fields of an assignment's ``room_options`` that the worker sets itself
OWN_ROOM_FIELDS = ("room_id", "auth_token")


class RegistryWorker:
    """A registered worker: ``await run()`` until drained (SIGTERM) or closed."""

    def __init__(self, options: Options, *, argv: list[str] | None = None, job_mode: str = "room") -> None:
        if not options.auth_token:
            raise AgentSessionError("a registry worker needs a VideoSDK token: Options(auth_token=...) or "
                                    "VIDEOSDK_AUTH_TOKEN")
        self.options = options
        self.job_mode = job_mode
        self.pool = ProcessPool(
            argv if argv is not None else program_command(),
            max_processes=options.max_processes, num_idle_processes=options.num_idle_processes,
            jobs_per_process=options.jobs_per_process, memory_limit_mb=options.memory_limit_mb,
            memory_warn_mb=options.memory_warn_mb, cpu_load=options.cpu_load, on_change=self._job_changed,
        )
        self.http = WorkerHTTPServer(self.status, host=options.host, port=options.port)
        self.client: RegistryClient | None = None
        self.draining = False
        self._reserved: dict[str, asyncio.TimerHandle] = {}
        self._terminated: set[str] = set()
        self._reported_running: set[str] = set()
        self._wait_for_join: set[str] = set()  # jobs reported ``running`` once their room is joined (``wait``)
        self._stopped = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state ------------------------------------------------------------------------------------------

    @property
    def load(self) -> float:
        return self.pool.load(reserved=len(self._reserved))

    def can_accept(self) -> bool:
        return (not self.draining and self.pool.running + len(self._reserved) < self.options.max_processes
                and self.load < self.options.load_threshold)

    def status(self) -> dict[str, Any]:
        registered = self.client is not None and self.client.connected.is_set()
        return {
            "worker_id": self.client.worker_id if self.client is not None else None,
            "agent_id": self.options.agent_id,
            "ready": registered and not self.draining,
            "registered": int(registered),
            "draining": int(self.draining),
            "load": round(self.load, 4),
            "jobs": self.pool.running,
            "max_processes": self.options.max_processes,
            "load_threshold": self.options.load_threshold,
            "idle_processes": self.pool.idle,
        }

    # -- life -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        o = self.options
        assert o.auth_token is not None
        url = o.registry_url or await fetch_registry_url(o.auth_token, o.signaling_base_url)
        self.client = RegistryClient(url, o.auth_token, agent_name=o.agent_id, load_threshold=o.load_threshold,
                                     max_processes=o.max_processes, handler=self._handle,
                                     on_registered=self._registered, ping_interval=o.ping_interval,
                                     max_retry=o.max_retry)
        await self.pool.start()
        await self.http.start()
        connection = asyncio.get_running_loop().create_task(self.client.run(), name="registry-connection")
        stopped = asyncio.get_running_loop().create_task(self._stopped.wait())
        try:
            await asyncio.wait([connection, stopped], return_when=asyncio.FIRST_COMPLETED)
            if connection.done() and not connection.cancelled() and connection.exception() is not None:
                raise connection.exception()  # type: ignore[misc]
        finally:
            stopped.cancel()
            if self._drain_task is not None and not self._drain_task.done():
                self._drain_task.cancel()
            await self.client.aclose(self._status_message("offline", load=0.0, job_count=0))
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)
            await self.pool.aclose(grace=10)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for handle in self._reserved.values():
                handle.cancel()
            await self.http.aclose()

    def drain(self) -> None:
        """Stop taking jobs, let the running ones end (up to ``drain_timeout``), then stop (SIGTERM does this)."""
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain(), name="registry-drain")
        else:  # a second signal: stop now
            logger.warning("stopping now: the running jobs are stopped")
            self._stopped.set()

    async def _drain(self) -> None:
        self.draining = True
        logger.info("draining: no new jobs; waiting up to %g s for %d running", self.options.drain_timeout,
                    self.pool.running)
        self._send_status()
        await self.pool.drain(self.options.drain_timeout)
        self._stopped.set()

    # -- registry messages --------------------------------------------------------------------------------

    def _registered(self, worker_id: str, reconnect: bool) -> None:
        self._send_status()

    def _handle(self, message: dict[str, Any]) -> Awaitable[None] | None:
        kind = message.get("type")
        if kind == "availability_request":
            self._answer_availability(message)
        elif kind == "job_assignment":
            self._assign(message)
        elif kind == "job_termination":
            return self._terminate(message)
        else:
            logger.debug("registry message %r ignored", kind)
        return None

    def _answer_availability(self, message: dict[str, Any]) -> None:
        assert self.client is not None
        job_id = str(message.get("job_id", ""))
        if self.can_accept() and job_id not in self.pool.jobs:
            loop = asyncio.get_running_loop()
            self._reserved[job_id] = loop.call_later(RESERVATION_SECONDS, self._release, job_id)
            self.client.send({"type": "availability_response", "job_id": job_id, "available": True,
                              "token": self.options.auth_token})
        else:
            reason = "worker draining" if self.draining else "worker at capacity"
            self.client.send({"type": "availability_response", "job_id": job_id, "available": False, "error": reason})

    def _release(self, job_id: str) -> None:
        if self._reserved.pop(job_id, None) is not None:
            logger.info("job %s was accepted but never assigned: slot released", job_id)

    def _assign(self, message: dict[str, Any]) -> None:
        assert self.client is not None
        job_id = str(message.get("job_id", ""))
        handle = self._reserved.pop(job_id, None)
        if handle is not None:
            handle.cancel()
        room_id = message.get("room_id")
        # every room option the assignment carries reaches the job's RoomOptions (which logs what it lacks)
        extra = message.get("room_options")
        room: dict[str, Any] = {k: v for k, v in extra.items() if isinstance(k, str) and k not in OWN_ROOM_FIELDS} \
            if isinstance(extra, dict) else {}
        room.update(room_id=room_id, auth_token=message.get("token") or self.options.auth_token)
        metadata = message.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            metadata = {"metadata": metadata}  # VideoSDK's ctx.metadata is a dict: a bare value is wrapped
        if message.get("wait"):
            self._wait_for_join.add(job_id)
        spec = JobSpec(job_id, ["--log-level", self.options.log_level, self.job_mode, "--room-id", str(room_id)],
                       room, metadata or {})
        try:
            self.pool.submit(spec)
        except (PoolFull, ValueError) as exc:
            logger.warning("job %s refused: %s", job_id, exc)
            self.client.send({"type": "job_update", "job_id": job_id, "status": "failed", "error": str(exc)})
            return
        logger.info("job %s: room %s", job_id, room_id)
        self._send_status()

    async def _terminate(self, message: dict[str, Any]) -> None:
        job_id = str(message.get("job_id", ""))
        if job_id not in self.pool.jobs:
            logger.warning("termination of job %s, which does not run here", job_id)
            return
        logger.info("job %s: terminated by the registry (%s)", job_id, message.get("reason") or "no reason given")
        self._terminated.add(job_id)
        await self.pool.stop_job(job_id)

    # -- reports ----------------------------------------------------------------------------------------

    def _job_changed(self, job: PoolJob) -> None:
        if self.client is None:
            return
        if job.done.done():
            result = job.done.result()
            self._reported_running.discard(job.id)
            self._wait_for_join.discard(job.id)
            if job.id in self._terminated:
                self._terminated.discard(job.id)
                update: dict[str, Any] = {"status": "completed", "error": "Job terminated by registry"}
            else:
                update = {"status": result.status, "error": result.error}
            self.client.send({"type": "job_update", "job_id": job.id, **update})
            if result.status == "failed":
                logger.warning("job %s failed: %s", job.id, result.error)
            self._send_status()
        elif job.id not in self._reported_running and (
            job.joined.done() if job.id in self._wait_for_join else job.started.done()
        ):
            self._reported_running.add(job.id)
            self.client.send({"type": "job_update", "job_id": job.id, "status": "running"})

    def _status_message(self, status: str, *, load: float | None = None, job_count: int | None = None) -> dict[str, Any]:
        return {"type": "status_update", "worker_id": self.client.worker_id if self.client else None,
                "agent_name": self.options.agent_id, "status": status,
                "load": round(self.load if load is None else load, 4),
                "job_count": self.pool.running if job_count is None else job_count}

    def _send_status(self) -> None:
        if self.client is not None:
            self.client.send(self._status_message("draining" if self.draining else "available"))
