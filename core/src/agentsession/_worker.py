"""``WorkerJob``: the command line, and running the jobs of the mode it names (DESIGN.md section 7)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import AgentSessionError, PluginError
from ._gc import freeze_heap
from ._job import Entrypoint, JobContext
from ._modes import KNOWN_MODES, _mode_index, transport_modes
from ._options import Options
from ._ports import current_job
from ._secrets import install_log_redaction
from ._transport import Transport, TransportMode

logger = logging.getLogger("agentsession.worker")

DEFAULT_MODE = "room"
EXIT_GRACE = 10.0  # seconds the process may take to exit once its jobs ended
ENTRY_GRACE = 1.0  # seconds an entrypoint may go on once its job ended, before it is cancelled


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
        self._stop_lock = threading.Lock()  # stop() from another thread against the run's loop coming and going
        self._running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any] | None] | None = None
        self._stop_pending = False

    def for_job(self, entrypoint: Entrypoint, jobctx: Callable[[], JobContext]) -> WorkerJob:
        """A worker like this one (plugins, options) running ``entrypoint`` on ``jobctx`` (a pool process's job)."""
        return WorkerJob(entrypoint, jobctx, plugins=self.plugins, options=self.options)

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
        freeze_heap()  # what the imports built lives forever: keep it out of collections that pause every session
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

    def stop(self) -> None:
        """End the run as SIGTERM would (its jobs shut down; a second call forces); safe from any thread. Called
        before the run's loop is up, the run stops as soon as it starts; once the run is over, it does nothing."""
        with self._stop_lock:
            if self._running is None:
                self._stop_pending = True
                return
            loop, main = self._running
        try:
            loop.call_soon_threadsafe(self._on_signal, main, signal.SIGTERM)
        except RuntimeError:  # the loop closed meanwhile: the run is over
            pass

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
        signals = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, main, sig)
                signals.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
                pass
        with self._stop_lock:
            self._running = (loop, main)
            stop, self._stop_pending = self._stop_pending, False
        try:
            if stop:
                self._on_signal(main, signal.SIGTERM)
            await self._serve(mode, args, main)
        finally:
            with self._stop_lock:
                self._running = None
            for sig in signals:  # now, while the loop's wake-up pipe is open: closing the loop closes it first, and
                loop.remove_signal_handler(sig)  # a signal in between was written to a closed descriptor

    async def _serve(self, mode: TransportMode, args: argparse.Namespace, main: asyncio.Task[Any] | None) -> None:
        async def run_job(transport: Transport | None) -> None:
            ctx = self._make_ctx()
            ctx.options, ctx.mode = args, mode
            if transport is not None:
                ctx.transport = transport
            self._jobs.add(ctx)
            current_job.set(ctx)
            if self._interrupts:  # a job that came while the Ctrl-C's jobs end (a tab that connected) ends too
                ctx.request_shutdown("interrupted")
            try:
                await self._run_job(ctx)
            finally:
                self._jobs.discard(ctx)
                if mode.serves and self._interrupts and not self._jobs and main is not None:
                    main.cancel()  # the Ctrl-C ended a server's last job: the server stops too
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
    asyncio's own."""
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


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    install_log_redaction()
    root.setLevel(level)
