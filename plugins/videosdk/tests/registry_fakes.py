"""A fake of VideoSDK's agent registry on loopback, speaking the websocket protocol the way VideoSDK's own client
(``videosdk-agents``, ``backend/connection.py`` and ``worker.py``) expects it, and a control line that the test
agents' entrypoints report to (and wait on), so the tests know which job runs where, exactly when."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

ROOM_TOKEN = "room-token-0123456789"  # what the registry hands out with each assignment


@dataclass
class WorkerConn:
    worker_id: str
    ws: web.WebSocketResponse
    register: dict[str, Any]
    connected: bool = True
    statuses: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class FakeRegistry:
    def __init__(self, token: str) -> None:
        self.token = token
        self.port = 0
        self.workers: dict[str, WorkerConn] = {}
        self.registrations: list[dict[str, Any]] = []  # each register message, with "assigned": the id given
        self.updates: dict[str, list[dict[str, Any]]] = {}
        self.assigned: dict[str, str] = {}
        self.active_at_assignment: dict[str, int] = {}
        self.refusals: list[tuple[str, str, str]] = []
        self.pings = 0
        self.rejected_auth = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/agent", self._agent)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Drop every worker's connection and stop listening (a registry outage)."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def active(self, worker_id: str) -> int:
        """Jobs the registry believes run on ``worker_id`` (assigned, no final update yet)."""
        return sum(1 for job, w in self.assigned.items() if w == worker_id and self.final(job) is None)

    def final(self, job_id: str) -> str | None:
        for update in self.updates.get(job_id, []):
            if update["status"] in ("completed", "failed"):
                return str(update["status"])
        return None

    def connected(self) -> list[str]:
        return sorted(w for w, c in self.workers.items() if c.connected)

    async def dispatch(self, job_id: str, room_id: str, order: list[str] | None = None,
                       **assignment: Any) -> str | None:
        """Offer the job to the connected workers (least busy first, or in ``order``); the first that accepts
        gets it. ``assignment`` overrides fields of the assignment (``room_options``, ``metadata``, ``wait``)."""
        for worker_id in order or sorted(self.connected(), key=lambda w: (self.active(w), w)):
            conn = self.workers[worker_id]
            answer = asyncio.get_running_loop().create_future()
            conn.answers[job_id] = answer
            try:
                await conn.ws.send_str(json.dumps({"type": "availability_request", "job_id": job_id,
                                                   "room_id": room_id, "agent_name": conn.register["agent_name"]}))
                reply = await asyncio.wait_for(answer, 10)
            except (ConnectionError, TimeoutError, RuntimeError):
                continue
            finally:
                conn.answers.pop(job_id, None)
            if not reply.get("available"):
                self.refusals.append((job_id, worker_id, str(reply.get("error"))))
                continue
            assert reply.get("token") == self.token  # VideoSDK's worker hands its token back when accepting
            self.active_at_assignment[job_id] = self.active(worker_id)
            self.assigned[job_id] = worker_id
            await conn.ws.send_str(json.dumps({
                "type": "job_assignment", "job_id": job_id, "room_id": room_id,
                "agent_name": conn.register["agent_name"], "token": ROOM_TOKEN, "url": "wss://example.invalid",
                "room_options": {"auto_end_session": True}, "metadata": {}, "wait": False, **assignment,
            }))
            return worker_id
        return None

    async def terminate(self, job_id: str) -> None:
        await self.workers[self.assigned[job_id]].ws.send_str(
            json.dumps({"type": "job_termination", "job_id": job_id, "reason": "test"}))

    async def _agent(self, request: web.Request) -> web.WebSocketResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.rejected_auth += 1
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        conn: WorkerConn | None = None
        try:
            first = await ws.receive_json(timeout=10)
            assert first["type"] == "register" and first["token"] == self.token, first
            worker_id = first["worker_id"] or f"worker-{next(self._ids)}"
            self.registrations.append({**first, "assigned": worker_id})
            conn = WorkerConn(worker_id, ws, first)
            self.workers[worker_id] = conn
            await ws.send_json({"type": "register", "success": True, "worker_id": worker_id,
                                "payload": {"registry": "fake"}})
            await self._notify()
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                kind = data.get("type")
                if kind == "availability_response":
                    answer = conn.answers.get(data["job_id"])
                    if answer is not None and not answer.done():
                        answer.set_result(data)
                elif kind == "job_update":
                    self.updates.setdefault(data["job_id"], []).append(data)
                elif kind == "status_update":
                    conn.statuses.append(data)
                elif kind == "ping":
                    self.pings += 1
                    await ws.send_json({"type": "pong", "timestamp": data.get("timestamp")})
                await self._notify()
        finally:
            self._sockets.discard(ws)
            if conn is not None and self.workers.get(conn.worker_id) is conn:
                conn.connected = False
            await self._notify()
        return ws


@dataclass
class Start:
    room: str
    pid: int
    worker_pid: int
    token_ok: bool
    writer: asyncio.StreamWriter
    seen: str = ""  # what the agent reports of its JobContext (metadata and room options)
    ended: bool = False
    gone: bool = False  # its connection closed without an end (the process died)


class Control:
    """The test agents' entrypoints connect here: ``start <room> <pid> <worker pid> <token ok>``, then wait for a
    ``go`` line (at once unless ``hold``), then ``end <room>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hold = False
        self.starts: list[Start] = []
        self.peak: dict[int, int] = {}  # per worker process: the most jobs seen running at once
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._client, str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for s in self.starts:
                s.writer.close()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def running(self, worker_pid: int | None = None) -> list[Start]:
        return [s for s in self.starts if not s.ended and not s.gone
                and (worker_pid is None or s.worker_pid == worker_pid)]

    def release(self, starts: list[Start] | None = None) -> None:
        for s in self.running() if starts is None else starts:
            s.writer.write(b"go\n")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().split()
        start = Start(line[1], int(line[2]), int(line[3]), line[4] == "1", writer, " ".join(line[5:]))
        async with self._changed:
            self.starts.append(start)
            self.peak[start.worker_pid] = max(self.peak.get(start.worker_pid, 0), len(self.running(start.worker_pid)))
            self._changed.notify_all()
        if not self.hold:
            writer.write(b"go\n")
        end = await reader.readline()
        async with self._changed:
            if end.startswith(b"end"):
                start.ended = True
            else:
                start.gone = True
            self._changed.notify_all()
        writer.close()


AGENT = r'''
import asyncio, os
from agentsession import JobContext, NullTransport, WorkerJob
from agentsession.plugin import Options


async def entrypoint(ctx: JobContext) -> None:
    reader, writer = await asyncio.open_unix_connection(os.environ["AGENT_CONTROL"])
    token_ok = ctx.room_options.auth_token == os.environ["EXPECT_ROOM_TOKEN"]
    o = ctx.room_options
    seen = (f"metadata={ctx.metadata.get('customer')} session_timeout={o.session_timeout_seconds} "
            f"vision={o.unsupported.get('vision')}")
    writer.write(f"start {o.room_id} {os.getpid()} {os.getppid()} {int(token_ok)} {seen}\n".encode())
    await writer.drain()
    go = asyncio.ensure_future(reader.readline())
    ended = asyncio.ensure_future(ctx.wait_for_shutdown())  # SIGTERM, a termination, the pool gone
    await asyncio.wait([go, ended], return_when=asyncio.FIRST_COMPLETED)
    ended.cancel()
    if go.done() and go.result() and ctx.metadata.get("join"):  # joins its "room" once released
        ctx.transport = NullTransport()
        await ctx.connect()
        await ctx.shutdown()
    if go.done() and go.result():
        writer.write(f"end {ctx.room_options.room_id}\n".encode())
        await writer.drain()
    go.cancel()
    writer.close()


if __name__ == "__main__":
    WorkerJob(entrypoint, options=Options(
        register=True, agent_id="test-agent", registry_url=os.environ["REGISTRY_URL"], max_processes=4,
        load_threshold=0.75, num_idle_processes=2, host="127.0.0.1", port=0, cpu_load=False,
        jobs_per_process=int(os.environ.get("JOBS_PER_PROCESS", "1")),
        drain_timeout=float(os.environ.get("DRAIN_TIMEOUT", "30")), ping_interval=1.0,
    )).start()
'''
