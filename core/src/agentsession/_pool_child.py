"""The pool process's side of ``_pool`` (and ``Options(register=True)``'s routing to the registry worker).

``WorkerJob.run`` calls :func:`route` first. In a pool process (``AGENTSESSION_POOL_FD`` set) it serves
jobs: a dedicated process runs the job on its command line, a warm one loads the plugins, says ``ready``
and runs each job the pool sends, each with a fresh ``WorkerJob`` on the user's entrypoint and ``jobctx``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._job import Entrypoint, JobContext
from ._modes import _mode_index, transport_modes
from ._options import Options, set_active_options
from ._pool import POOL_FD_ENV
from ._secrets import protect_secret, redact


class Worker(Protocol):
    """What a pool process needs of the ``WorkerJob`` it runs (the worker, above this module, routes here)."""

    entrypoint: Entrypoint
    jobctx: Callable[[], JobContext] | JobContext | None
    options: Options

    @property
    def plugins(self) -> Sequence[object]: ...

    def run(self, argv: Sequence[str] | None = None) -> int: ...

    def for_job(self, entrypoint: Entrypoint, jobctx: Callable[[], JobContext]) -> Worker:
        """A worker like this one (plugins, options) running ``entrypoint`` on ``jobctx``."""

    def stop(self) -> None:
        """End the run as SIGTERM would; safe from any thread."""

logger = logging.getLogger("agentsession.pool")

REGISTRY_MODE = "registry"
#: seconds a job gets to end after the pool went away, before the process exits anyway
ORPHAN_GRACE = 15.0

_serving = False


def route(worker: Worker, argv: Sequence[str] | None) -> int | None:
    """Run ``worker`` as a pool process or a registry worker when that is what it is; ``None``: run it normally."""
    global _serving
    if _serving:
        return None
    set_active_options(worker.options)
    fd = os.environ.pop(POOL_FD_ENV, None)
    args = list(sys.argv[1:] if argv is None else argv)
    if fd is not None:
        _serving = True
        try:
            number, _, kind = fd.partition(",")
            return _PoolChild(worker, int(number)).serve(args if kind == "command" else [])
        finally:
            _serving = False
    if not worker.options.register:
        return None
    at = _mode_index(args)
    if at < len(args) and not args[at].startswith("-"):
        return None  # a mode named on the command line wins (``python main.py console`` while developing)
    if any(a in ("-h", "--help") for a in args):
        return None
    args.insert(at, REGISTRY_MODE)
    if not any(a == "--log-level" or a.startswith("--log-level=") for a in args[:at]):
        args[:0] = ["--log-level", worker.options.log_level]
    _serving = True
    try:
        return worker.run(args)
    finally:
        _serving = False


class _PoolChild:
    def __init__(self, worker: Worker, fd: int) -> None:
        self.worker = worker
        self.sock = socket.socket(fileno=fd)
        self.jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.running: Worker | None = None  # the job's worker while it runs
        self._send_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the pool is gone: the reader thread handles that

    def serve(self, args: list[str]) -> int:
        threading.Thread(target=self._read, name="agentsession-pool-control", daemon=True).start()
        if args:  # a dedicated process: its job is on its command line
            return self._run({"type": "job", "id": "", "args": args, "room": {}})
        try:
            transport_modes(self.worker.plugins)  # import every plugin now, not when a job waits for it
        except Exception as exc:  # the job will say it properly
            logger.debug("loading the plugins failed: %s", exc)
        code = 0
        for _ in range(self.worker.options.jobs_per_process):
            self.send({"type": "ready", "pid": os.getpid()})
            message = self.jobs.get()
            if message is None:
                break
            code = self._run(message)
        return code

    def _read(self) -> None:
        reader = self.sock.makefile("rb")
        try:
            for raw in reader:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if message.get("type") == "job":
                    self.jobs.put(message)
        except OSError:
            pass
        # the pool closed its end (stopping, or its process died): no pool process outlives the pool
        self.jobs.put(None)
        job = self.running
        if job is not None:
            job.stop()  # the job ends the way Ctrl-C ends it (through its loop: no signal races the loop's end)
            time.sleep(ORPHAN_GRACE)
            job.stop()  # a second one forces
            time.sleep(5)
            os._exit(1)

    def _run(self, message: dict[str, Any]) -> int:
        job_id = str(message.get("id", ""))
        room = dict(message.get("room") or {})
        metadata = message.get("metadata")
        protect_secret(room.get("auth_token"))
        base = self.worker
        error: list[str] = []
        entrypoint = base.entrypoint

        async def started_entrypoint(ctx: JobContext) -> None:
            self.send({"type": "started", "id": job_id})
            ctx._on_joined = lambda: self.send({"type": "joined", "id": job_id})
            try:
                await entrypoint(ctx)
            except Exception as exc:
                error.append(f"{type(exc).__name__}: {exc}")
                raise

        job = base.for_job(started_entrypoint,
                           _with_room(base.jobctx, room, metadata if isinstance(metadata, dict) else {}))
        self.running = job
        try:
            code = job.run([str(a) for a in message.get("args") or []])
        except SystemExit as exc:  # argparse on a bad command line
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            self.running = None
        self.send({"type": "done", "id": job_id, "code": code, "error": redact(error[0]) if error else None})
        return code


def _with_room(jobctx: Callable[[], JobContext] | JobContext | None,
               room: dict[str, Any], metadata: dict[str, Any]) -> Callable[[], JobContext]:
    def make() -> JobContext:
        if jobctx is None:
            ctx = JobContext()
        elif isinstance(jobctx, JobContext):
            ctx = jobctx
        else:
            ctx = jobctx()
            if not isinstance(ctx, JobContext):
                raise TypeError(f"jobctx must return a JobContext, got {type(ctx).__name__}")
        ctx.room_options.update(**room)
        ctx.metadata.update(metadata)
        return ctx

    return make
