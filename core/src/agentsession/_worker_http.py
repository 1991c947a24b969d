"""The worker's HTTP endpoint (standard library only): liveness, readiness, load, Prometheus metrics.

- ``GET /health``: 200 while the worker's event loop answers (a liveness probe);
- ``GET /ready``: 200 when the worker takes jobs (registered, not draining), else 503 (a readiness probe);
- ``GET /load``: JSON ``{"load", "jobs", "max_processes", "idle_processes", "draining", "registered", ...}``;
- ``GET /metrics``: the same as Prometheus gauges (``agentsession_worker_load`` etc.), for an autoscaler.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
from collections.abc import Callable
from typing import Any

from ._errors import AgentSessionError

logger = logging.getLogger("agentsession.worker")

#: the gauges of ``/metrics``: status key -> (metric name, help)
METRICS = {
    "load": ("agentsession_worker_load", "Jobs / max_processes, or the CPU busy fraction when higher (0..1)"),
    "jobs": ("agentsession_worker_jobs", "Jobs running"),
    "max_processes": ("agentsession_worker_max_processes", "Jobs this worker runs at most"),
    "idle_processes": ("agentsession_worker_idle_processes", "Warm processes waiting for a job"),
    "draining": ("agentsession_worker_draining", "1 while the worker drains (takes no new jobs)"),
    "registered": ("agentsession_worker_registered", "1 while registered with the agent registry"),
}


class WorkerHTTPServer:
    """Serves ``status()`` (a dict with at least ``ready`` and the keys of :data:`METRICS`) on ``host:port``."""

    def __init__(self, status: Callable[[], dict[str, Any]], *, host: str = "0.0.0.0", port: int = 8081) -> None:
        self.status = status
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._client, self.host, self.port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise AgentSessionError(
                f"the worker's HTTP port {self.port} on {self.host} is already in use (another worker running?): "
                "stop that program, or pass --port N (Options(port=N); 0 picks a free one)"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("worker HTTP endpoint on http://%s:%d (/health /ready /load /metrics)", self.host, self.port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            parts = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            status, content_type, body = self._answer(method, path)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n")
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path in ("/health", "/healthz", "/"):
            return "200 OK", "text/plain", b"ok\n"
        try:
            status = self.status()
        except Exception:
            logger.exception("worker status failed")
            return "500 Internal Server Error", "text/plain", b"status failed\n"
        if path in ("/ready", "/readyz"):
            ready = bool(status.get("ready"))
            return ("200 OK" if ready else "503 Service Unavailable"), "text/plain", (b"ready\n" if ready else
                                                                                   b"not ready\n")
        if path == "/load":
            return "200 OK", "application/json", json.dumps(status).encode()
        if path == "/metrics":
            lines = []
            for key, (name, help_text) in METRICS.items():
                if key in status:
                    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {float(status[key]):g}"]
            return "200 OK", "text/plain; version=0.0.4", ("\n".join(lines) + "\n").encode()
        return "404 Not Found", "text/plain", b"not found\n"
