"""The ``playground`` command-line mode: a local web page, one agent job per browser connection."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import errno
import logging
import os
import secrets
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from agentsession import AgentSessionError, Transport, TransportMode, env_secret

from ._server import DEFAULT_PORT, PlaygroundServer, is_loopback
from ._transport import WebRTCTransport
from ._workers import WORKER_ENV, PlaygroundWorkers, until_stdin_closes, worker_argv

if TYPE_CHECKING:
    from agentsession.plugin import JobView

logger = logging.getLogger("agentsession.webrtc")

#: seconds the jobs get to close their sessions when the server stops
SHUTDOWN_GRACE = 10.0

#: the browser connection whose job is running (set in each job's context)
_connection: contextvars.ContextVar[Transport | None] = contextvars.ContextVar("agentsession_playground_connection",
                                                                             default=None)


def connection_tag(transport: Transport) -> str:
    """How a connection's output is tagged: ``[conn 1a2b3c4d]``, the id its log lines give too."""
    return f"[conn {getattr(transport, 'id', '?')[:8]}]"


class PlaygroundMode(TransportMode):
    """``python main.py playground [--host H] [--port P] [--token T] [--cert C --key K] [--workers N]``: a job
    per browser tab.

    Binding anything but loopback needs a token: ``--token``, ``AGENTSESSION_PLAYGROUND_TOKEN``, or one
    generated and printed with the URL. ``--workers N`` runs the jobs in N processes of this program (the
    page's server hands each browser to one of them), so many conversations use every core. Usable without a
    command line too: ``await PlaygroundMode(port=0).run(run_job)``.
    """

    serves = True  # a Ctrl-C ends the open conversations, then the server

    def __init__(self, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
                 max_connections: int = 8, cert: str | None = None, key: str | None = None, workers: int = 1,
                 announce: Callable[[str], None] = print) -> None:
        super().__init__(self._no_factory, help="talk to the agent from a local web page (WebRTC)")
        self.options = argparse.Namespace(host=host, port=port, token=token, max_connections=max_connections,
                                          cert=cert, key=key, workers=workers, log_level="INFO")
        self.announce = announce
        self.server: PlaygroundServer | None = None
        self.ready = asyncio.Event()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to bind (default 127.0.0.1; any other needs a token)")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks one)")
        parser.add_argument("--token", default=None,
                            help="access token required on every request (default: $AGENTSESSION_PLAYGROUND_TOKEN, "
                                 "generated when binding a non-loopback address)")
        parser.add_argument("--max-connections", type=int, default=8,
                            help="browser connections at once (default 8; per worker with --workers)")
        parser.add_argument("--workers", type=int, default=1,
                            help="processes to run the conversations in (default 1: this one)")
        parser.add_argument("--cert", help="TLS certificate (PEM): serve HTTPS, which browsers on other machines "
                                           "need before they give the page a microphone")
        parser.add_argument("--key", help="the TLS certificate's private key (PEM; default: in --cert)")

    def problems(self) -> list[tuple[str, str]]:
        """Whether the page's port is free (``agentsession doctor --mode playground``). Any browser can open the
        page, so no browser is checked here (Chromium only runs the plugin's own browser tests)."""
        host, port = self.options.host, self.options.port
        if not port:
            return []
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
                probe.bind((host, port))
        except OSError as exc:
            return [(f"port {port} on {host} is not free: {exc.strerror or exc} (another playground running?)",
                     "stop that program, or run `playground --port N` (--port 0 picks a free one)")]
        return []

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        # the only place the worker hands a mode its parsed options before ``run``
        self.options = options
        return None

    @staticmethod
    def _no_factory(ctx: JobView) -> Transport:
        raise AgentSessionError(
            "playground transports are made per browser connection: run the job with `python main.py playground`"
        )

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        """Serve until cancelled; each answered offer runs ``run_job(transport)`` concurrently."""
        o = self.options
        token = o.token or env_secret("AGENTSESSION_PLAYGROUND_TOKEN")
        if not token and not is_loopback(o.host):
            token = secrets.token_urlsafe(18)
        jobs: dict[asyncio.Future[Any], Transport] = {}

        def on_connection(transport: Transport) -> None:
            # the job runs in a context that knows its connection: its prints and log lines are tagged, and
            # the errors it logs (the worker's "the job failed: ...") reach its page
            context = contextvars.copy_context()
            context.run(_connection.set, transport)
            job = context.run(lambda: asyncio.ensure_future(run_job(transport)))
            jobs[job] = transport
            job.add_done_callback(lambda done: jobs.pop(done, None))

        context = None
        if o.cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(o.cert, o.key)
        if o.workers < 1:
            raise ValueError("--workers must be at least 1")
        pool = None
        if o.workers > 1:
            pool = PlaygroundWorkers(o.workers, worker_argv(o.log_level), max_connections=o.max_connections,
                                     output=self.announce)
        server = PlaygroundServer(on_connection, host=o.host, port=o.port, token=token,
                                  max_connections=o.max_connections, ssl_context=context, forward=pool)
        if getattr(o, "log_level", "INFO") != "DEBUG":  # aioice logs every ICE check at INFO
            logging.getLogger("aioice").setLevel(logging.WARNING)
        output = contextlib.ExitStack()
        output.enter_context(_tagged_output())
        try:
            if pool is not None:
                await pool.start()
            try:
                await server.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise AgentSessionError(
                    f"port {o.port} on {o.host} is already in use (another playground running?): stop that program, "
                    "or pass --port N (--port 0 picks a free one)") from None
            self.server = server
            self.announce(f"playground: open {server.url_with_token()} in a browser (Ctrl-C to stop)"
                          + (f"; {o.workers} worker processes" if pool is not None else ""))
            self.ready.set()
            if pool is not None:
                await pool.wait_all_exited()
                raise AgentSessionError("every playground worker process exited")
            if os.environ.get(WORKER_ENV):
                await until_stdin_closes()
            else:
                await asyncio.Future()
        except asyncio.CancelledError:
            # Ctrl-C with no conversation open: the worker cancels its main task, and WorkerJob.run() only
            # catches KeyboardInterrupt, so a re-raised CancelledError would end in a traceback. Stop quietly.
            logger.info("playground stopping")
        finally:
            await server.close()
            if pool is not None:
                await pool.stop(SHUTDOWN_GRACE + 5)
            if jobs:
                await asyncio.wait(list(jobs), timeout=SHUTDOWN_GRACE)
            for transport in list(jobs.values()):  # jobs that did not finish in time
                await transport.close()
            output.close()


class _TaggedStream:
    """``sys.stdout``/``sys.stderr`` while the playground serves: what a connection's job prints starts with its
    tag, so the output of concurrent conversations can be told apart."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._line_start = True

    def write(self, text: str) -> int:
        transport = _connection.get()
        if transport is None or not text:
            if text:
                self._line_start = text.endswith("\n")
            return self.stream.write(text)
        tag = connection_tag(transport) + " "
        pieces = text.splitlines(keepends=True)
        out = "".join((tag if i or self._line_start else "") + piece for i, piece in enumerate(pieces))
        self._line_start = text.endswith("\n")
        self.stream.write(out)
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self.stream, name)


class _TagRecords(logging.Filter):
    """Log records made in a connection's job start with its tag."""

    def filter(self, record: logging.LogRecord) -> bool:
        transport = _connection.get()
        if transport is not None and not getattr(record, "_playground_tagged", False):
            record.msg = f"{connection_tag(transport)} {record.msg}"
            record._playground_tagged = True
        return True


class _ToThePage(logging.Handler):
    """The errors a connection's job logs (the worker's "the job failed: no API key"), sent to its page."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        transport = _connection.get()
        if not isinstance(transport, WebRTCTransport):
            return
        message = str(record.msg % record.args if record.args else record.msg)
        message = message.removeprefix(connection_tag(transport) + " ").removeprefix("the job failed: ")
        if record.exc_info and record.exc_info[1] is not None:
            message += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        transport.report_error(message)


@contextlib.contextmanager
def _tagged_output() -> Iterator[None]:
    root = logging.getLogger()
    tagger, to_page = _TagRecords(), _ToThePage()
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(tagger)
    root.addHandler(to_page)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _TaggedStream(stdout), _TaggedStream(stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        root.removeHandler(to_page)
        for handler in handlers:
            handler.removeFilter(tagger)
