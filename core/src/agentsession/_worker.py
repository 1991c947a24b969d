"""``WorkerJob``, ``JobContext`` and ``RoomOptions``: the command line and the life of one job (DESIGN.md section 7)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import AgentSessionError, PluginError
from ._manager import create_manager, provided
from ._options import Options, init_lenient, keep_unsupported
from ._ports import SessionView, current_job
from ._secrets import install_log_redaction, mask, redact
from ._transport import Transport, TransportMode, as_mode

logger = logging.getLogger("agentsession.worker")

DEFAULT_MODE = "room"
EXIT_GRACE = 10.0  # seconds the process may take to exit once its jobs ended
ENTRY_GRACE = 1.0  # seconds an entrypoint may go on once its job ended, before it is cancelled


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


class WorkerJob:
    """Parses the command line, picks the transport mode, runs the entrypoint, shuts down cleanly."""

    def __init__(
        self,
        entrypoint: Entrypoint,
        jobctx: Callable[[], JobContext] | JobContext | None = None,
        *,
        plugins: Sequence[object] = (),
        options: Options | None = None,
    ) -> None:
        """``plugins`` adds plugin objects (e.g. a transport mode) to those found through entry points;
        ``options`` (``Options(register=True, ...)``) makes this program a worker of VideoSDK's agent registry."""
        if not callable(entrypoint):
            raise TypeError("entrypoint must be an async function taking a JobContext")
        self.entrypoint = entrypoint
        self.jobctx = jobctx
        self.plugins = list(plugins)
        self.options = options or Options()
        self._jobs: set[JobContext] = set()
        self._failed = False
        self._interrupts = 0
        self._signal: int | None = None  # the first Ctrl-C (SIGINT) or SIGTERM received
        self._bounded_exit = False  # start() (the CLI) ends the process within EXIT_GRACE of the jobs' end

    def start(self, argv: Sequence[str] | None = None) -> None:
        """Run until the job ends; exits the process with a non-zero code on failure."""
        self._bounded_exit = True
        code = self.run(argv)
        if code:
            raise SystemExit(code)

    def run(self, argv: Sequence[str] | None = None) -> int:
        """Like ``start`` but returns the exit code."""
        from ._pool_child import route  # a pool process waits for its jobs; register=True runs the registry worker

        routed = route(self, argv)
        if routed is not None:
            return routed
        args_list = list(sys.argv[1:] if argv is None else argv)
        try:
            modes = transport_modes(self.plugins)
        except PluginError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        at = _mode_index(args_list)
        name = args_list[at] if at < len(args_list) and not args_list[at].startswith("-") else None
        if name is None and any(a in ("-h", "--help") for a in args_list[:at]):
            _parser(modes).parse_args(args_list)  # prints the help and exits
        if name is None:
            if DEFAULT_MODE not in modes:
                print(f"error: no mode given, and no installed plugin provides the default {DEFAULT_MODE!r} "
                      f"mode. {_modes_hint(modes)}", file=sys.stderr)
                return 2
            args_list.insert(at, DEFAULT_MODE)  # `main.py --room-id X` means `main.py room --room-id X`
            name = DEFAULT_MODE
        elif name not in modes:
            print(f"error: unknown mode {name!r}. {_modes_hint(modes)}", file=sys.stderr)
            return 2
        args = _parser(modes).parse_args(args_list)
        _configure_logging(args.log_level)
        gc.collect()
        gc.freeze()  # what the imports built lives forever: keep it out of collections that pause every session
        mode = modes[name]
        factory = mode.loop_factory(args) or _default_loop_factory()
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                try:
                    runner.run(self._main(mode, args))
                finally:
                    if self._bounded_exit:  # what user code left behind (a hung thread) must not hang the exit
                        _exit_watchdog(EXIT_GRACE, lambda: self._exit_code(mode))
        except KeyboardInterrupt:
            return 128 + signal.SIGINT
        except asyncio.CancelledError:  # a mode with no job running when the signal came, or a forced stop
            if self._interrupts > 1:
                return 128 + (self._signal or signal.SIGINT)  # forced: whatever ran was cut off
        return self._exit_code(mode)

    def _exit_code(self, mode: TransportMode) -> int:
        """1 on failure; 128 + the signal when one cut short a mode whose jobs end on their own (file mode: the
        output is partial), as a shell expects; otherwise 0 (a long-running mode stopped with Ctrl-C/SIGTERM)."""
        if self._failed:
            return 1
        if self._signal is not None and mode.finite:
            return 128 + self._signal
        return 0

    async def _main(self, mode: TransportMode, args: argparse.Namespace) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, main, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
                pass

        async def run_job(transport: Transport | None) -> None:
            ctx = self._make_ctx()
            ctx.options, ctx.mode = args, mode
            if transport is not None:
                ctx.transport = transport
            self._jobs.add(ctx)
            current_job.set(ctx)
            try:
                await self._run_job(ctx)
            finally:
                self._jobs.discard(ctx)
            failure = ctx.transport.failure if ctx.transport is not None else None
            if failure is not None:  # the device stopped, the file could not be read: not a clean end
                logger.error("the job failed: %s", failure)
                self._failed = True

        mode.options = args
        try:
            await mode.run(lambda transport: asyncio.get_running_loop().create_task(
                run_job(transport), name="agentsession:job"
            ))
        except (AgentSessionError, ValueError, OSError) as exc:
            logger.error("%s", exc)
            self._failed = True

    async def _run_job(self, ctx: JobContext) -> None:
        """Run the entrypoint as VideoSDK runs it: the job outlives an entrypoint that returns and ends when
        its transport ends, its session closes, or on Ctrl-C/SIGTERM; then an entrypoint still waiting is
        cancelled (its ``finally`` runs), the sessions close (``on_exit`` runs) and ``ctx.shutdown()`` runs."""
        entry = asyncio.ensure_future(self.entrypoint(ctx))
        ended = asyncio.ensure_future(ctx.wait_for_shutdown())
        try:
            await asyncio.wait((entry, ended), return_when=asyncio.FIRST_COMPLETED)
            if entry.done() and not ended.done() and _failure(entry) is None and ctx._keeps_running():
                await ended  # "the session runs until manually stopped or the meeting ends"
            if not entry.done():  # an entrypoint closing things itself may finish; one still waiting is cancelled
                await asyncio.wait((entry,), timeout=ENTRY_GRACE)
                entry.cancel()
            await asyncio.gather(entry, return_exceptions=True)
            failure = _failure(entry)
            if failure is not None:
                self._failed = True
                if isinstance(failure, AgentSessionError | ValueError):  # a configuration problem: say it plainly
                    logger.error("the job failed: %s", failure)
                    logger.debug("details", exc_info=failure)
                else:
                    logger.error("the job's entrypoint failed", exc_info=failure)
        finally:
            ended.cancel()
            await ctx.shutdown()

    def _make_ctx(self) -> JobContext:
        if self.jobctx is None:
            return JobContext()
        if isinstance(self.jobctx, JobContext):
            return self.jobctx
        ctx = self.jobctx()
        if not isinstance(ctx, JobContext):
            raise TypeError(f"jobctx must return a JobContext, got {type(ctx).__name__}")
        return ctx

    def _on_signal(self, main: asyncio.Task[Any] | None, sig: int = signal.SIGINT) -> None:
        self._interrupts += 1
        if self._signal is None:
            self._signal = int(sig)
        if self._interrupts == 1 and self._jobs:
            logger.info("shutting down (Ctrl-C again to force)")
            for ctx in list(self._jobs):
                ctx.request_shutdown("interrupted")
        elif main is not None:
            main.cancel()


def _default_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop with ``AGENTSESSION_LOOP=uvloop`` (the ``fast`` extra installs it); else ``None``:
    asyncio's own. Opt-in: file mode over worker processes (``--workers 2``) hangs on uvloop 0.23 for now."""
    if os.environ.get("AGENTSESSION_LOOP", "").lower() != "uvloop":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        raise AgentSessionError("AGENTSESSION_LOOP=uvloop needs uvloop: pip install 'agentsession[fast]'") from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _exit_watchdog(grace: float, code: Callable[[], int]) -> None:
    """End the process ``grace`` seconds from now if it has not exited by then (a daemon thread)."""

    def force() -> None:
        time.sleep(grace)
        logger.warning("the process did not exit within %.0f s of its jobs' end (a thread left running?): "
                       "forcing the exit", grace)
        logging.shutdown()
        os._exit(code())

    threading.Thread(target=force, name="agentsession-exit-watchdog", daemon=True).start()


def _failure(entry: asyncio.Future[None]) -> BaseException | None:
    return None if entry.cancelled() else entry.exception()


def transport_modes(extra: Sequence[object] = ()) -> dict[str, TransportMode]:
    """Every mode the installed plugins (and ``extra`` ones) provide; the first registration of a name wins."""
    modes: dict[str, TransportMode] = {}
    for plugin, name, value in provided(create_manager(list(extra)), "agentsession_transports"):
        if name in modes:
            logger.warning("mode %r from plugin %r ignored: already provided", name, plugin)
            continue
        mode = as_mode(value)
        mode.provider = plugin
        modes[name] = mode
    return modes


KNOWN_MODES = {"console": "agentsession-console-io", "playground": "agentsession-webrtc", "room": "agentsession-videosdk"}


def _modes_hint(modes: dict[str, TransportMode]) -> str:
    hint = f"Installed modes: {', '.join(sorted(modes))}."
    missing = [f"{m!r} (pip install {d})" for m, d in KNOWN_MODES.items() if m not in modes]
    return hint + (f" Not installed: {', '.join(missing)}." if missing else "")


def _parser(modes: dict[str, TransportMode]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0]) or "agent")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="mode", metavar="MODE")
    for name in sorted(modes):
        mode = modes[name]
        p = sub.add_parser(name, help=mode.help or f"run with the {name} transport")
        p.add_argument("--log-level", default=argparse.SUPPRESS, type=str.upper,
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        mode.add_arguments(p)
    return parser


def _mode_index(args: list[str]) -> int:
    """Where the mode stands: after the global options (``--log-level X``, ``-h``)."""
    i = 0
    while i < len(args):
        if args[i] == "--log-level":
            i += 2
        elif args[i].startswith("--log-level=") or args[i] in ("-h", "--help"):
            i += 1
        else:
            break
    return min(i, len(args))


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    install_log_redaction()
    root.setLevel(level)
