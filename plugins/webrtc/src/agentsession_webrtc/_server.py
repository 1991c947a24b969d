"""The playground's web server: serves the page, answers WebRTC offers, one transport per connection."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, Protocol, cast
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from agentsession import protect_secret

from ._transport import OfferError, WebRTCTransport

logger = logging.getLogger("agentsession.webrtc")

DEFAULT_PORT = 8760
MAX_BODY = 64 * 1024  # bytes: an SDP offer is a few KiB
MIN_TOKEN = 16  # characters: shorter tokens are refused (guessable, and too short to mask in logs)
READ_TIMEOUT = 10.0  # seconds a client has to send a request's headers and body (and to idle between requests)
REQUEST_TIMEOUT = 30.0  # seconds to answer a request, the offer's ICE gathering included
MAX_HTTP_CONNECTIONS = 256  # open HTTP connections at once; more are closed as they arrive
#: connections that have not yet sent an authorized request, in all and per client address: at the cap, a new
#: one replaces the oldest of them (so idle sockets cannot lock anyone out), authorized ones are never displaced
MAX_UNAUTHENTICATED = 64
MAX_UNAUTHENTICATED_PER_PEER = 8
#: seconds between two log lines about malformed requests (the ones between are counted, not logged)
ERROR_LOG_INTERVAL = 10.0
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
COOKIE = "agentsession_playground"
_STATIC = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob: mediastream:; frame-ancestors 'none'",
}

ConnectionHandler = Callable[[WebRTCTransport], None]


class OfferForwarder(Protocol):
    """Where a server that does not answer offers itself sends them (``playground --workers N``)."""

    async def offer(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer a checked offer: the HTTP status and the JSON body for the page."""
        ...

    async def close_session(self, session_id: str) -> int:
        """Pass on the page's close beacon; the HTTP status."""
        ...


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PlaygroundServer:
    """Serves the playground page and turns each browser's offer into a ``WebRTCTransport``.

    ``on_connection(transport)`` is called for every answered offer (the playground mode runs a job
    there). Binding anything but loopback needs ``token``; when set, every request must carry it
    (``Authorization: Bearer``, a ``?token=`` query, or the cookie the page gets when opened with it).
    Request bodies are limited to ``max_body`` bytes, live connections to ``max_connections`` (an offer
    takes its place before anything is awaited: concurrent offers can't overshoot; the rest get a 503).
    A client has ``read_timeout`` seconds to send a request's headers and its body, and to idle between
    requests; a request is answered within ``request_timeout`` or gets a 504; at most
    ``max_http_connections`` are open at once, of which at most ``max_unauthenticated`` (and
    ``max_unauthenticated_per_peer`` from one address) have not yet sent an authorized request: past those
    caps a new connection closes the oldest such one, so idle sockets cannot lock out a client with the token.
    Malformed requests are logged as one line, at most every ``ERROR_LOG_INTERVAL`` seconds. Without a token, offers from ``Origin: null`` (a sandboxed
    frame on any site) are refused; offers must be ``application/json`` (a cross-site form or beacon can't
    send that without a CORS preflight, which is never granted). Browsers only give a page the microphone
    on ``localhost`` or over HTTPS: for another machine pass ``ssl_context``. With ``forward``, checked
    offers and close beacons go there instead (the worker processes answer them).
    """

    def __init__(
        self,
        on_connection: ConnectionHandler,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        max_connections: int = 8,
        max_body: int = MAX_BODY,
        ice_servers: Sequence[RTCIceServer] = (),
        ssl_context: ssl.SSLContext | None = None,
        forward: OfferForwarder | None = None,
        read_timeout: float = READ_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        max_http_connections: int = MAX_HTTP_CONNECTIONS,
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
        max_unauthenticated_per_peer: int = MAX_UNAUTHENTICATED_PER_PEER,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(f"binding {host} (not loopback) needs a token: pass --token or let the mode generate one")
        if token and len(token) < MIN_TOKEN:
            raise ValueError(f"the playground token is too short ({len(token)} characters): use at least {MIN_TOKEN}, "
                             "e.g. python -c 'import secrets; print(secrets.token_urlsafe(18))'")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if read_timeout <= 0 or request_timeout <= 0 or max_http_connections < 1:
            raise ValueError("read_timeout and request_timeout must be > 0, max_http_connections >= 1")
        if max_unauthenticated < 1 or max_unauthenticated_per_peer < 1:
            raise ValueError("max_unauthenticated and max_unauthenticated_per_peer must be >= 1")
        self.on_connection = on_connection
        self.host = host
        self.port = port
        self.token = token or None
        protect_secret(self.token)  # it is in the page's URL: never in a log line
        self.max_connections = max_connections
        self.max_body = max_body
        self.ice_servers = list(ice_servers)
        self.ssl_context = ssl_context
        self.forward = forward
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.max_http_connections = max_http_connections
        self.max_unauthenticated = min(max_unauthenticated, max_http_connections)
        self.max_unauthenticated_per_peer = min(max_unauthenticated_per_peer, self.max_unauthenticated)
        self.transports: dict[str, WebRTCTransport] = {}
        self._admitting = 0  # offers admitted whose transport is not in ``transports`` yet
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self._watchers: set[asyncio.Future[str]] = set()

    def __repr__(self) -> str:
        return f"<PlaygroundServer {self.host}:{self.port} token={'set' if self.token else 'none'}>"

    @property
    def url(self) -> str:
        """The page's address, without the token."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}/"

    def url_with_token(self) -> str:
        """The page's address including the token (this is a secret: print it, never log it)."""
        return self.url + (f"?token={quote(self.token)}" if self.token else "")

    async def start(self) -> str:
        """Bind and serve; return the page's URL (with ``port=0`` the chosen port is filled in)."""
        app = web.Application(client_max_size=self.max_body, middlewares=[self._guard])
        app.router.add_get("/", self._static)
        app.router.add_get("/app.js", self._static)
        app.router.add_get("/style.css", self._static)
        app.router.add_post("/offer", self._offer)
        app.router.add_post("/sessions/{id}/close", self._close_session)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=_RequestErrors(logger))
        await runner.setup()
        assert runner.server is not None
        handlers = runner.server
        try:
            # aiohttp has no timeout for reading a request: each connection is watched (_Connection)
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Connection(handlers(), self), self.host, self.port, ssl=self.ssl_context,
                reuse_address=True)
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot serve the playground on {self.host}:{self.port}: {exc.strerror}") from None
        self._runner = runner
        if self.port == 0 and self._server.sockets:
            self.port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    async def close(self, reason: str = "the playground server stopped") -> None:
        """Stop serving; end every connection (their jobs then shut down and close them)."""
        for transport in list(self.transports.values()):
            transport.end(reason)
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self._connections.values()):
            connection.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    # ------------------------------------------------------------------ handlers

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        if self.token is not None and not self._authorized(request):
            return _error(401, "missing or wrong playground token: open the URL printed by the server")
        host = request.headers.get("Host", "")
        if not _HOST.fullmatch(host):  # what a browser sends: host[:port], nothing else (no user@, no path)
            return _error(400, "a Host header (host[:port]) is required")
        if self.token is None and not is_loopback(_hostname(host)):
            # no token means loopback only: a foreign Host header is a DNS-rebinding attempt
            return _error(403, "without a token the playground only answers to localhost / 127.0.0.1")
        origin = request.headers.get("Origin")
        if request.method != "GET" and origin is not None and origin != "null":
            scheme = "https" if self.ssl_context is not None else "http"
            if origin.lower() != f"{scheme}://{host}".lower():
                return _error(403, "cross-origin requests are not allowed")
        if request.method != "GET" and origin == "null" and self.token is None:
            # a sandboxed frame or a file:// page, on any site: without a token, nothing else tells it apart
            return _error(403, "requests from an opaque origin (Origin: null) need the playground token")
        connection = self._connections.get(request.transport) if request.transport is not None else None
        if connection is not None:
            connection.authenticated()
            connection.busy()
        try:
            async with asyncio.timeout(self.request_timeout):
                response = await handler(request)
        except TimeoutError:
            logger.warning("playground request %s %s not answered within %g s", request.method, request.path,
                           self.request_timeout)
            response = _error(504, f"the request took longer than {self.request_timeout:g} s")
            response.force_close()
        finally:
            if connection is not None:
                connection.idle()
        response.headers.update(_SECURITY_HEADERS)
        if self.token is not None and request.query.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/",
                                secure=self.ssl_context is not None)
        return response

    def _authorized(self, request: web.Request) -> bool:
        assert self.token is not None
        header = request.headers.get("Authorization", "")
        candidates = [
            header[7:] if header.startswith("Bearer ") else "",
            request.query.get("token", ""),
            request.cookies.get(COOKIE, ""),
        ]
        expected = self.token.encode()
        # headers that are not UTF-8 reach us as surrogates: compared as the bytes they were, never an error
        return any(c and hmac.compare_digest(c.encode("utf-8", "surrogateescape"), expected) for c in candidates)

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = _STATIC[request.path]
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    async def _offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(415, "the offer must be sent as application/json")
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await request.read()
        except TimeoutError:
            response = _error(408, f"the request body was not received within {self.read_timeout:g} s")
            response.force_close()
            return response
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, nested too deep, an int too long, ...
            return _error(400, "the body must be JSON: {\"type\": \"offer\", \"sdp\": \"...\"}")
        if not isinstance(payload, dict) or not isinstance(payload.get("sdp"), str):
            return _error(400, "the body must be a JSON object with a string \"sdp\" and \"type\": \"offer\"")
        if payload.get("type") != "offer":
            return _error(400, f"expected \"type\": \"offer\", got {str(payload.get('type'))[:40]!r}")
        if "m=audio" not in payload["sdp"]:
            return _error(400, "the offer has no audio section (m=audio): the page must offer a microphone track")
        if self.forward is not None:
            status, reply = await self.forward.offer(payload)
            return web.json_response(reply, status=status)
        # admission: checked and taken with no await in between, so concurrent offers can't overshoot
        if len(self.transports) + self._admitting >= self.max_connections:
            response = _error(503, f"too many open playground connections (max {self.max_connections}): "
                                   "close a tab or try again later")
            response.headers["Retry-After"] = "5"
            return response
        self._admitting += 1
        transport: WebRTCTransport | None = None
        owned = False
        try:
            transport = WebRTCTransport(RTCPeerConnection(RTCConfiguration(iceServers=list(self.ice_servers))))
            try:
                answer = await transport.accept(RTCSessionDescription(sdp=payload["sdp"], type="offer"))
            except OfferError as exc:
                logger.info("playground offer rejected: %s", exc)
                return _error(400, str(exc))
            self._register(transport)
            owned = True
        finally:
            self._admitting -= 1
            if transport is not None and not owned:  # rejected, or cancelled / timed out mid-answer
                await asyncio.shield(transport.close())
        logger.info("playground connection %s from %s", transport.id[:8], request.remote)
        self.on_connection(transport)
        return web.json_response({"type": answer.type, "sdp": answer.sdp, "id": transport.id})

    def _register(self, transport: WebRTCTransport) -> None:
        self.transports[transport.id] = transport
        watcher = asyncio.ensure_future(transport.wait_ended())
        self._watchers.add(watcher)

        def forget(_: asyncio.Future[str]) -> None:
            self._watchers.discard(watcher)
            self.transports.pop(transport.id, None)

        watcher.add_done_callback(forget)

    async def _close_session(self, request: web.Request) -> web.Response:
        transport = self.transports.get(request.match_info["id"])
        if transport is None and self.forward is not None:
            status = await self.forward.close_session(request.match_info["id"])
            return web.Response(status=status) if status < 400 else _error(status, "no such playground connection")
        if transport is None:
            return _error(404, "no such playground connection")
        transport.end("the page was closed")
        return web.Response(status=204)


class _Connection(asyncio.Protocol):
    """One HTTP connection, in front of aiohttp's handler: closed when the client does not send a complete
    request within ``read_timeout`` (slow-loris headers, or idling between requests), or when too many are
    open. The server marks it busy while it handles a request (which ``request_timeout`` bounds)."""

    def __init__(self, handler: asyncio.Protocol, server: PlaygroundServer) -> None:
        self.handler = handler
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.trusted = False  # a request on it passed the token (or, without one, the Host) check
        self.silent = True  # nothing received yet
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though not an asyncio.Transport instance on every loop (uvloop's is its own class)
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._make_room():
            logger.warning("playground: %d HTTP connections open, refusing another", len(self.server._connections))
            transport.abort()
            return
        self.server._connections[transport] = self
        self.handler.connection_made(transport)
        self.idle()

    def _make_room(self) -> bool:
        """Admit this connection within the caps, displacing the oldest not-yet-authorized connection (silent
        ones first) of this peer or of anyone when a cap is reached; False when only authorized ones are open."""
        server = self.server
        waiting = [c for c in server._connections.values() if not c.trusted]
        mine = [c for c in waiting if c.peer == self.peer]
        if len(mine) >= server.max_unauthenticated_per_peer:
            _oldest(mine).evict()
        elif len(waiting) >= server.max_unauthenticated or len(server._connections) >= server.max_http_connections:
            if not waiting:
                return False
            _oldest(waiting).evict()
        return len(server._connections) < server.max_http_connections

    def authenticated(self) -> None:
        self.trusted = True

    def evict(self) -> None:
        self.busy()
        if self.transport is not None:
            self.server._connections.pop(self.transport, None)
            self.handler.connection_lost(None)
            self.transport.abort()

    def busy(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def idle(self) -> None:
        self.busy()
        if self.transport is not None and self.transport in self.server._connections:
            self._timer = asyncio.get_running_loop().call_later(self.server.read_timeout, self._expired)

    def close(self) -> None:
        self.busy()
        if self.transport is not None:
            self.transport.close()

    def _expired(self) -> None:
        self._timer = None
        if self.transport is not None:
            self.transport.abort()  # nothing useful was sent: no response, no lingering

    def data_received(self, data: bytes) -> None:
        self.silent = False
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.busy()
        if self.transport is not None and self.server._connections.pop(self.transport, None) is not None:
            self.handler.connection_lost(exc)


def _oldest(connections: list[_Connection]) -> _Connection:
    """The one to displace: the first opened of the silent ones, else the first opened (dicts keep that order)."""
    return next((c for c in connections if c.silent), connections[0])


class _RequestErrors(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's request-handling log: a malformed request is one WARNING line, not an ERROR with a traceback,
    and at most one line per ``ERROR_LOG_INTERVAL`` (the ones between are counted): a client cannot fill the log."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__(target, {})
        self._last: float | None = None
        self._skipped = 0

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level < logging.WARNING:
            self.logger.log(level, msg, *args, **kwargs)
            return
        now = time.monotonic()
        if self._last is not None and now - self._last < ERROR_LOG_INTERVAL:
            self._skipped += 1
            return
        self._last, skipped, self._skipped = now, self._skipped, 0
        more = f" ({skipped} more since the last one)" if skipped else ""
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):  # the client's fault: what was wrong is enough
            reason = str(exc.message).splitlines()[0][:200] if exc.message else type(exc).__name__
            self.logger.warning("playground: malformed request refused (%s: %s)%s", type(exc).__name__, reason, more)
        else:
            self.logger.log(level, f"{msg}{more}", *args, **kwargs)


def _hostname(host: str) -> str:
    """``host[:port]`` or ``[v6][:port]`` -> the host part."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json",
                        headers=_SECURITY_HEADERS)
