"""A client of VideoSDK's agent registry: the websocket protocol of ``videosdk-agents`` (``backend/protocol.py``,
``backend/connection.py``, ``worker.py``), written anew on aiohttp, without the ``videosdk`` SDK.

The worker connects to ``<registry>/agent`` with ``Authorization: Bearer <token>`` and sends ``register``
(``worker_id``: empty the first time, the previous id on a reconnect; ``agent_name``, ``capabilities``,
``registry_uuid``, ``token``, ``load_threshold``, ``max_processes``); the registry answers
``{"type": "register", "success": true, "worker_id": ...}``. Then:

- registry to worker: ``availability_request`` (``job_id``, ``room_id``, ``agent_name``), ``job_assignment``
  (``job_id``, ``room_id``, ``agent_name``, ``token``, ``url``, ``room_options``, ``metadata``, ``wait``),
  ``job_termination`` (``job_id``, ``reason``), ``pong`` (``timestamp``);
- worker to registry: ``availability_response`` (``job_id``, ``available``, ``token`` or ``error``),
  ``job_update`` (``job_id``, ``status``: ``running``/``completed``/``failed``, ``error``), ``status_update``
  (``worker_id``, ``agent_name``, ``status``: ``available``/``draining``/``offline``, ``load``, ``job_count``),
  ``ping`` (``timestamp``, milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import aiohttp

from agentsession import AgentSessionError, redact

logger = logging.getLogger("agentsession.videosdk.registry")

CAPABILITIES = ["room", "voice", "stt", "tts"]
#: messages kept across a reconnect (the registry must learn how each job ended); others go stale
DURABLE = {"job_update"}


def shown(value: object, limit: int = 64) -> str:
    """``value`` fit for one log line: escaped (no newline forges a line), at most ``limit`` characters."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>" if isinstance(value, (dict, list)) else repr(value)[:limit]
    more = f"...({len(value)} characters)" if len(value) > limit else ""
    return repr(value[:limit]) + more


class RegistryError(AgentSessionError):
    """The registry refused the worker, or could not be reached ``max_retry`` times in a row."""


def agent_url(registry_url: str) -> str:
    """``<registry_url>/agent`` as a websocket URL (``http`` becomes ``ws``, ``https`` becomes ``wss``)."""
    parsed = urlparse(registry_url if "://" in registry_url else f"wss://{registry_url}")
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    return f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/agent"


async def fetch_registry_url(token: str, signaling_base_url: str = "api.videosdk.live") -> str:
    """Ask VideoSDK's API for the registry's URL (``POST /v2/agent/init-config``), as VideoSDK's client does."""
    base = signaling_base_url if "://" in signaling_base_url else f"https://{signaling_base_url}"
    url = f"{base.rstrip('/')}/v2/agent/init-config"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http, http.post(
            url, headers={"Authorization": token, "Content-Type": "application/json"}
        ) as response:
            if response.status in (401, 403):
                raise RegistryError(f"VideoSDK refused the auth token (HTTP {response.status} from {url}): set "
                                    f"VIDEOSDK_AUTH_TOKEN to a valid one (https://app.videosdk.live/api-keys)")
            if response.status != 200:
                raise RegistryError(f"the registry's address could not be fetched from {url}: HTTP {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = redact(str(exc)) or type(exc).__name__
        raise RegistryError(
            f"cannot reach VideoSDK's API to find the agent registry ({reason}): check the network connection "
            "(or proxy), or set VIDEOSDK_REGISTRY_URL (Options(registry_url=...)) to the registry's address; "
            "to run the agent without VideoSDK, name a local mode: console, playground, or file --input in.wav"
        ) from None
    registry = (body.get("data") or {}).get("registryUrl") if isinstance(body, dict) else None
    if not body.get("success") or not registry:
        raise RegistryError(f"{url} gave no registry address: {redact(str(body.get('message', body)))}")
    return str(registry)


Handler = Callable[[dict[str, Any]], Awaitable[None] | None]


class RegistryClient:
    """One worker's connection to the registry: registers, delivers the registry's messages to ``handler``,
    sends queued messages in order, pings, and reconnects with backoff keeping its worker id.

    ``on_registered(worker_id, reconnect)`` runs after each successful registration (send a fresh
    ``status_update`` from it). Messages sent while disconnected wait; only ``job_update`` ones survive a
    reconnect (an availability answer or a load report is stale by then).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        agent_name: str,
        load_threshold: float,
        max_processes: int,
        handler: Handler,
        on_registered: Callable[[str, bool], None] | None = None,
        worker_id: str | None = None,
        ping_interval: float = 30.0,
        max_retry: int = 16,
        backoff: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        self.url = agent_url(url)
        self._token = token
        self.agent_name = agent_name
        self.load_threshold = load_threshold
        self.max_processes = max_processes
        self.handler = handler
        self.on_registered = on_registered
        self.worker_id = worker_id
        self.ping_interval = ping_interval
        self.max_retry = max_retry
        self.backoff = backoff
        self.registrations = 0
        self.connected = asyncio.Event()
        self._queue: deque[dict[str, Any]] = deque()
        self._queued = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = False
        self._handlers: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"RegistryClient(url={self.url!r}, agent_name={self.agent_name!r}, worker_id={self.worker_id!r})"

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message`` (sent in order, as soon as the worker is registered)."""
        self._queue.append({k: v for k, v in message.items() if v is not None})
        self._queued.set()

    async def run(self) -> None:
        """Stay registered until ``aclose``; ``RegistryError`` after ``max_retry`` failed attempts in a row."""
        self._http = aiohttp.ClientSession()
        failures = 0
        try:
            while not self._closing:
                try:
                    await self._connect()
                except (aiohttp.ClientError, OSError, TimeoutError, RegistryError) as exc:
                    failures += 1
                    if failures > self.max_retry:
                        raise RegistryError(f"could not register with {self.url} after {failures} attempts: "
                                            f"{redact(str(exc))}") from None
                    delay = min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1)) * random.uniform(0.8, 1.2)
                    logger.warning("registry %s: %s; retrying in %.1f s", self.url, redact(str(exc)) or type(exc).__name__,
                                   delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                await self._serve()
                if not self._closing:
                    logger.warning("registry connection lost; reconnecting as %s", self.worker_id)
                    delay = self.backoff[0] * random.uniform(0.5, 1.0)
                    await asyncio.sleep(delay)
        finally:
            await self._disconnect()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._http.close()

    async def aclose(self, final: dict[str, Any] | None = None) -> None:
        """Send ``final`` (say, a ``status_update`` with ``offline``) if connected, then close."""
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                while self._queue and self._queue[0].get("type") in DURABLE:
                    await ws.send_str(json.dumps(self._queue.popleft()))
                if final is not None:
                    await ws.send_str(json.dumps({k: v for k, v in final.items() if v is not None}))
        await self._disconnect()

    async def _connect(self) -> None:
        assert self._http is not None
        ws = await self._http.ws_connect(self.url, headers={"Authorization": f"Bearer {self._token}"},
                                         heartbeat=self.ping_interval, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        try:
            previous = self.worker_id
            await ws.send_str(json.dumps({
                "type": "register", "worker_id": previous or "", "agent_name": self.agent_name,
                "capabilities": CAPABILITIES, "registry_uuid": "default", "token": self._token,
                "load_threshold": self.load_threshold, "max_processes": self.max_processes,
            }))
            reply = await ws.receive(timeout=15)
            if reply.type != aiohttp.WSMsgType.TEXT:
                raise RegistryError(f"the registry closed the connection instead of answering register ({reply.type.name})")
            data = json.loads(reply.data)
            if data.get("type") != "register" or not data.get("success"):
                raise RegistryError(f"registration refused: {redact(str(data.get('message', 'no reason given')))}")
        except BaseException:
            await ws.close()
            raise
        self.worker_id = str(data.get("worker_id") or previous or "")
        self._ws = ws
        self.registrations += 1
        reconnect = previous is not None
        logger.info("registered with the agent registry as worker %s%s", self.worker_id,
                    " (reconnected)" if reconnect else "")
        # stale messages go; job outcomes stay
        self._queue = deque(m for m in self._queue if m.get("type") in DURABLE)
        self.connected.set()
        if self.on_registered is not None:
            self.on_registered(self.worker_id, reconnect)

    async def _serve(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._receive(ws)), loop.create_task(self._send(ws)),
                 loop.create_task(self._ping())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connected.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()
            self._ws = None

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.ERROR:
                logger.warning("registry connection broken: %s", redact(str(ws.exception() or message.data))[:200])
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except (ValueError, RecursionError) as exc:
                what = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
                logger.warning("registry sent a message that is %s (%d characters): ignored", what, len(message.data))
                continue
            if not isinstance(data, dict):
                logger.warning("registry sent a message that is not a JSON object: ignored")
                continue
            if data.get("type") == "pong":
                continue
            try:
                result = self.handler(data)
            except Exception:
                logger.exception("handling a registry message of type %s failed", shown(data.get("type")))
                continue
            if asyncio.iscoroutine(result):
                task = asyncio.get_running_loop().create_task(result)
                self._handlers.add(task)
                task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("handling a registry message failed", exc_info=task.exception())

    async def _send(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            while self._queue:
                await ws.send_str(json.dumps(self._queue[0]))
                self._queue.popleft()  # only once it went out: a message lost with the connection is resent
            self._queued.clear()
            await self._queued.wait()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            self.send({"type": "ping", "timestamp": int(time.time() * 1000)})

    async def _disconnect(self) -> None:
        self.connected.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
