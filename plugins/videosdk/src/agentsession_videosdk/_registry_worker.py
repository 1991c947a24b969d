"""The ``registry`` mode: this program as a worker of VideoSDK's agent registry, its jobs in core's process pool.

``WorkerJob(entrypoint, options=Options(register=True, ...)).start()`` (or ``python main.py registry``)
registers with the registry, answers availability requests from the pool's load, runs each assigned
meeting as a ``room`` job in a warm pool process, reports job and worker status, and drains on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
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

from ._registry import RegistryClient, fetch_registry_url, shown

logger = logging.getLogger("agentsession.videosdk.registry")

#: seconds an accepted availability request holds a slot while the registry sends the assignment
RESERVATION_SECONDS = 10.0
#: fields of an assignment's ``room_options`` that the worker sets itself
OWN_ROOM_FIELDS = ("room_id", "auth_token")
#: RoomOptions fields an assignment's ``room_options`` may set
ROOM_FIELDS = ("auto_end_session", "session_timeout_seconds", "playground", "no_participant_timeout_seconds",
               "wait_for_participant")
_FLAGS = {"auto_end_session", "playground", "wait_for_participant"}
#: what a job or room id from the registry may be: it goes into logs and onto a job's command line
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
#: the longest token an assignment may carry
MAX_TOKEN = 16384
#: seconds between attempts to start a process after the pool could not (the worker refuses jobs meanwhile)
PROBE_INTERVAL = 5.0


def _valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and ID_PATTERN.fullmatch(value) else None


def _room_options(extra: object) -> dict[str, Any]:
    """The assignment's ``room_options`` we honour; ``ValueError`` naming the first bad field."""
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise ValueError("room_options is not an object")
    # every other option it carries reaches the job's RoomOptions, which logs what it lacks
    room: dict[str, Any] = {k: v for k, v in extra.items()
                            if isinstance(k, str) and k.isidentifier() and k not in OWN_ROOM_FIELDS + ROOM_FIELDS}
    for name in ROOM_FIELDS:
        if name not in extra or extra[name] is None:
            continue
        value = extra[name]
        if name in _FLAGS:
            ok = isinstance(value, bool)
        else:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and value >= 0)
        if not ok:
            raise ValueError(f"room_options.{name} is {shown(value)}: expected "
                             f"{'true or false' if name in _FLAGS else 'a number of seconds'}")
        room[name] = value
    return room


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
        self._probe: asyncio.Task[bool] | None = None
        self._probed_at = -math.inf
        self._terminated: set[str] = set()
        self._reported_running: set[str] = set()
        self._wait_for_join: set[str] = set()  # jobs reported ``running`` once their room is joined (``wait``)
        self._stopped = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state ------------------------------------------------------------------------------------------

    @property
    def load(self) -> float:
        """The pool's load; 1.0 while it cannot start processes (the registry should send jobs elsewhere)."""
        return 1.0 if self.pool.start_error is not None else self.pool.load(reserved=len(self._reserved))

    def can_accept(self) -> bool:
        return (not self.draining and self.pool.start_error is None
                and self.pool.running + len(self._reserved) < self.options.max_processes
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
            if self._probe is not None:
                self._probe.cancel()
                await asyncio.gather(self._probe, return_exceptions=True)
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
            logger.debug("registry message %s ignored", shown(kind))
        return None

    def _answer_availability(self, message: dict[str, Any]) -> None:
        assert self.client is not None
        raw = message.get("job_id")
        job_id = _valid_id(raw)
        if job_id is None:
            logger.warning("availability request refused: job_id %s is not a valid id", shown(raw))
            if isinstance(raw, str) and len(raw) <= 1024:
                self.client.send({"type": "availability_response", "job_id": raw, "available": False,
                                  "error": "invalid job_id"})
            return
        held = self._reserved.pop(job_id, None)  # asked again: its slot is still ours
        if held is not None:
            held.cancel()
        usable = not self.draining and self.pool.start_error is None
        if job_id not in self.pool.jobs and usable and (held is not None or self.can_accept()):
            loop = asyncio.get_running_loop()
            self._reserved[job_id] = loop.call_later(RESERVATION_SECONDS, self._release, job_id)
            self.client.send({"type": "availability_response", "job_id": job_id, "available": True,
                              "token": self.options.auth_token})
            return
        if self.draining:
            reason = "worker draining"
        elif self.pool.start_error is not None:
            reason = f"worker cannot start jobs: {self.pool.start_error}"
            self._probe_soon()
        else:
            reason = "worker at capacity"
        self.client.send({"type": "availability_response", "job_id": job_id, "available": False, "error": reason})

    def _probe_soon(self) -> None:
        """Try again to start a process (at most once per ``PROBE_INTERVAL``): the worker offers itself once one is up."""
        loop = asyncio.get_running_loop()
        if (self._probe is not None and not self._probe.done()) or loop.time() - self._probed_at < PROBE_INTERVAL:
            return
        self._probed_at = loop.time()
        self._probe = loop.create_task(self.pool.probe(), name="registry-pool-probe")
        self._probe.add_done_callback(self._probed)

    def _probed(self, task: asyncio.Task[bool]) -> None:
        if not task.cancelled() and task.exception() is None and task.result():
            logger.info("the pool starts processes again: taking jobs")
            self._send_status()

    def _release(self, job_id: str) -> None:
        if self._reserved.pop(job_id, None) is not None:
            logger.info("job %s was accepted but never assigned: slot released", job_id)

    def _assign(self, message: dict[str, Any]) -> None:
        assert self.client is not None
        raw = message.get("job_id")
        job_id = _valid_id(raw)
        if job_id is None:
            logger.warning("job assignment refused: job_id %s is not a valid id", shown(raw))
            return
        if job_id in self.pool.jobs:
            logger.warning("job %s assigned again while it runs here: the duplicate is ignored", job_id)
            return
        handle = self._reserved.pop(job_id, None)
        if handle is not None:
            handle.cancel()
        try:
            room = self._room(message)
        except ValueError as exc:
            logger.warning("job %s refused: %s", job_id, exc)
            self.client.send({"type": "job_update", "job_id": job_id, "status": "failed", "error": str(exc)})
            self._send_status()
            return
        metadata = message.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            metadata = {"metadata": metadata}  # VideoSDK's ctx.metadata is a dict: a bare value is wrapped
        if message.get("wait"):
            self._wait_for_join.add(job_id)
        spec = JobSpec(job_id, ["--log-level", self.options.log_level, self.job_mode, f"--room-id={room['room_id']}"],
                       room, metadata or {})
        try:
            self.pool.submit(spec)
        except PoolFull as exc:
            logger.warning("job %s refused: %s", job_id, exc)
            self.client.send({"type": "job_update", "job_id": job_id, "status": "failed", "error": str(exc)})
            return
        logger.info("job %s: room %s", job_id, room["room_id"])
        self._send_status()

    def _room(self, message: dict[str, Any]) -> dict[str, Any]:
        """The job's ``RoomOptions`` fields from an assignment; ``ValueError`` saying what is wrong with it."""
        raw = message.get("room_id")
        room_id = _valid_id(raw)
        if room_id is None:
            what = "has no room_id" if raw is None else f"has room_id {shown(raw)}, not a valid room id"
            raise ValueError(f"the assignment {what} (expected: 1-128 letters, digits and ._:@-, the first a letter or digit)")
        token = message.get("token")
        if token is not None and not (isinstance(token, str) and 0 < len(token) <= MAX_TOKEN and token.isprintable()):
            raise ValueError("the assignment's token is not a printable string of at most "
                             f"{MAX_TOKEN} characters")
        return {"room_id": room_id, "auth_token": token or self.options.auth_token,
                **_room_options(message.get("room_options"))}

    async def _terminate(self, message: dict[str, Any]) -> None:
        raw = message.get("job_id")
        job_id = _valid_id(raw)
        if job_id is None or job_id not in self.pool.jobs:
            logger.warning("termination of job %s, which does not run here", shown(raw))
            return
        reason = message.get("reason")
        logger.info("job %s: terminated by the registry (%s)", job_id, shown(reason) if reason else "no reason given")
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
