"""``JobContext`` and ``RoomOptions``: one job, where it runs and how it ends (DESIGN.md section 7)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import AgentSessionError
from ._options import init_lenient, keep_unsupported
from ._ports import SessionView, current_job
from ._secrets import mask, redact
from ._transport import Transport, TransportMode

logger = logging.getLogger("agentsession.worker")


#: VideoSDK ``RoomOptions`` fields this framework has no feature for, with VideoSDK's defaults (see ``init_lenient``)
UNSUPPORTED_ROOM_FIELDS: dict[str, Any] = {
    "vision": False, "recording": False, "recording_options": None, "avatar": None, "join_meeting": True,
    "on_room_error": None, "background_audio": False, "send_logs_to_dashboard": False,
    "dashboard_log_level": "INFO", "traces": None, "metrics": None, "logs": None, "observability": None,
    "transport_mode": None, "websocket": None, "webrtc": None,
}


@dataclass(init=False)
class RoomOptions:
    """Where and how the agent joins. Room fields are read by the room transport (``agentsession-videosdk``).

    Keyword arguments only; takes every field of VideoSDK's ``RoomOptions``: those in ``UNSUPPORTED_ROOM_FIELDS``
    (vision, recording, avatar, traces, ...) are kept in ``unsupported`` but have no effect, and a non-default
    value is logged once; an unknown name is logged too, never a ``TypeError``."""

    room_id: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    name: str = "Agent"
    playground: bool = False
    auto_end_session: bool = True
    wait_for_participant: bool = True
    #: end the job when nobody joined this long after the agent did (``None``: wait for ever)
    no_participant_timeout_seconds: float | None = 90.0
    #: end the job this long after the last participant left (``None``: at once), as VideoSDK's
    session_timeout_seconds: float | None = 5.0
    signaling_base_url: str | None = None
    #: the agent's participant id in the meeting (default: one the SDK makes)
    agent_participant_id: str | None = None

    def __init__(self, **fields: Any) -> None:
        self.unsupported: dict[str, Any] = {}
        init_lenient(self, fields, UNSUPPORTED_ROOM_FIELDS)

    def update(self, **fields: Any) -> None:
        """Set fields by name (a registry's job assignment does): the supported ones apply, the rest are
        kept in ``unsupported`` and logged as :class:`RoomOptions` says."""
        own = {f.name for f in dataclasses.fields(self)}
        for name in [n for n in fields if n in own]:
            setattr(self, name, fields.pop(name))
        self.unsupported.update(keep_unsupported("RoomOptions", fields, UNSUPPORTED_ROOM_FIELDS))

    def __repr__(self) -> str:
        return (
            f"RoomOptions(room_id={self.room_id!r}, auth_token={mask(self.auth_token)!r}, name={self.name!r}, "
            f"playground={self.playground}, auto_end_session={self.auto_end_session})"
        )


class JobContext:
    """One job: its room options, its transport and its shutdown."""

    def __init__(
        self,
        room_options: RoomOptions | None = None,
        *,
        transport: Transport | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``metadata``: what the job was started with (a registry job assignment's ``metadata``)."""
        self.room_options = room_options or RoomOptions()
        self.transport = transport
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._joined = asyncio.Event()
        self._on_joined: Callable[[], None] | None = None  # the pool's process reports the join to its pool
        self.options = argparse.Namespace()
        self.mode: TransportMode | None = None
        self._shutdown: asyncio.Future[str] | None = None
        self._sessions: list[SessionView] = []
        self._shutdown_callbacks: list[Callable[[], Awaitable[None] | None]] = []
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether ``connect()`` has completed."""
        return self._connected

    @staticmethod
    def current() -> JobContext | None:
        """The job the calling code runs in, if any."""
        job = current_job.get()
        return job if isinstance(job, JobContext) else None

    async def connect(self) -> None:
        """Build and start the transport (join the room, open the devices, ...)."""
        if self._connected:
            return
        if self.transport is None:
            if self.mode is None:
                raise AgentSessionError(
                    "this JobContext has no transport: run it under WorkerJob(...).start() or pass "
                    "JobContext(transport=...)"
                )
            self.transport = self.mode.create(self)
        current_job.set(self)
        await self.transport.start()
        self._connected = True
        self._joined.set()
        if self._on_joined is not None:
            self._on_joined()

    async def wait_for_meeting_joined(self, timeout: float | None = 30.0) -> bool:
        """Wait until ``connect()`` has joined the room (opened the devices, ...); ``False`` after ``timeout``
        seconds without it (``None``: no limit)."""
        try:
            await asyncio.wait_for(self._joined.wait(), timeout)
        except TimeoutError:
            logger.warning("the room was not joined within %g s", timeout)
            return False
        return True

    def get_room_id(self) -> str:
        """Create a new VideoSDK room (``POST https://<signaling_base_url>/v2/rooms``, as VideoSDK's) and return
        its id; the token is ``RoomOptions.auth_token`` or ``VIDEOSDK_AUTH_TOKEN``. Blocks: call it before the
        event loop runs (in the ``jobctx`` factory) or in an executor."""
        token = self.room_options.auth_token or os.environ.get("VIDEOSDK_AUTH_TOKEN")
        if not token:
            raise AgentSessionError("get_room_id() needs a VideoSDK token: RoomOptions(auth_token=...) or the "
                                    "VIDEOSDK_AUTH_TOKEN environment variable")
        return create_room(token, self.room_options.signaling_base_url or "api.videosdk.live")

    async def run_until_shutdown(self, session: SessionView | None = None, wait_for_participant: bool = False) -> None:
        """VideoSDK's one-call job: connect, optionally wait for a participant, start ``session``, wait until the
        job ends (room ended, Ctrl-C, the session closed), then close the session and shut the job down."""
        try:
            await self.connect()
            if wait_for_participant:
                await self.wait_for_participant()
            if session is not None:
                await session.start()
            await self.wait_for_shutdown()
        finally:
            if session is not None:
                await session.close()
            await self.shutdown()

    @property
    def shutdown_reason(self) -> str | None:
        """Why the job is ending (``interrupted`` on Ctrl-C/SIGTERM, ``session closed: ...``); ``None`` until it is."""
        return self._shutdown.result() if self._shutdown is not None and self._shutdown.done() else None

    @property
    def shutting_down(self) -> bool:
        """Whether the job is ending (its room ended, Ctrl-C, a session closed): nothing new should start."""
        return self._shutdown is not None and self._shutdown.done()

    def request_shutdown(self, reason: str) -> None:
        """Make ``wait_for_shutdown`` return ``reason``."""
        fut = self._future()
        if not fut.done():
            fut.set_result(reason)

    async def wait_for_shutdown(self) -> str:
        """Return when the room ends, on Ctrl-C, or when a session of this job closes; the reason."""
        waits: list[asyncio.Future[Any]] = [self._future()]
        if self.transport is not None:
            waits.append(asyncio.ensure_future(self.transport.wait_ended()))
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for extra in waits[1:]:
                extra.cancel()
        reason = str(next(iter(done)).result())
        self.request_shutdown(reason)
        return reason

    @property
    def room(self) -> Transport | None:
        """The job's room: its transport once ``connect()`` ran (VideoSDK's ``ctx.room``)."""
        return self.transport

    def add_shutdown_callback(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` (sync or async) when the job shuts down, after its sessions closed."""
        self._shutdown_callbacks.append(callback)

    async def wait_for_participant(self, participant_id: str | None = None, *, timeout: float | None = None) -> str:
        """Wait until a user is there (a participant joined the room, the console or the page is open); return
        their id. Transports without participants answer at once."""
        if self.transport is None:
            raise AgentSessionError("call `await ctx.connect()` before `ctx.wait_for_participant()`")
        return await asyncio.wait_for(self.transport.wait_for_participant(participant_id), timeout)

    async def shutdown(self) -> None:
        """Close the sessions still open (their ``on_exit`` runs), run the shutdown callbacks, close the
        transport; idempotent."""
        self.request_shutdown("shutdown")
        for session in list(self._sessions):
            await session.close("job shutdown")
        callbacks, self._shutdown_callbacks = self._shutdown_callbacks, []
        for callback in callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("a shutdown callback raised")
        if self.transport is not None:
            await self.transport.close()

    def _keeps_running(self) -> bool:
        """Whether something of this job runs on after its entrypoint returned (a session, or a transport)."""
        return bool(self._sessions) or self._connected

    def _future(self) -> asyncio.Future[str]:
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_future()
        return self._shutdown

    def attach_session(self, session: SessionView) -> None:
        """A session of this job started (called by ``session.start()``): the job ends when it closes."""
        self._sessions.append(session)

    def session_closed(self, session: SessionView, reason: str) -> None:
        """A session of this job closed (called by the session): the job ends."""
        if session in self._sessions:
            self._sessions.remove(session)
        self.request_shutdown(f"session closed: {reason}")


def create_room(token: str, signaling_base_url: str = "api.videosdk.live", timeout: float = 15.0) -> str:
    """Create a VideoSDK room through its REST API and return the room's id (blocking)."""
    base = signaling_base_url if "://" in signaling_base_url else f"https://{signaling_base_url}"
    url = f"{base.rstrip('/')}/v2/rooms"
    request = urllib.request.Request(url, method="POST", data=b"{}",
                                     headers={"Authorization": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise AgentSessionError(f"VideoSDK did not create a room ({url}): HTTP {e.code}; check the token") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise AgentSessionError(f"VideoSDK did not create a room ({url}): {redact(str(e))}") from None
    room_id = body.get("roomId") if isinstance(body, dict) else None
    if not isinstance(room_id, str) or not room_id:
        raise AgentSessionError(f"VideoSDK's answer from {url} has no roomId")
    return room_id


Entrypoint = Callable[[JobContext], Awaitable[None]]
