"""The provider link: a realtime model's reconnecting connection to its provider, written once for every plugin.

A plugin implements :class:`LinkProtocol` (open a connection, read it, send audio and requests on it, settle what
a lost connection had in flight) and drives a :class:`ProviderLink`, which owns the rest: the user's audio on its
way up (kept, bounded, while the link is down and sent again when what was sent may never have arrived), the
responses asked for (one at a time, in order), the liveness watch, reconnects with ``Reconnecting``/``Reconnected``
and loss accounting, planned handovers, the bounded close, and secret masking of every provider text it emits.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from ._audio import AudioFrame
from ._errors import ModelError
from ._models import EventChannel, RealtimeModel
from ._pipeline_events import Error, Reconnected, Reconnecting
from ._secrets import redact

logger = logging.getLogger("agentsession.link")

#: the largest inbound message a link accepts by default (bytes); a larger one is a link fault
DEFAULT_MAX_MESSAGE_SIZE = 16 * 2**20
#: seconds of voice sent with no server message at all before the link is suspected (a cough may go unanswered)
MIN_VOICE = 0.5
#: the least user audio kept while it waits to be sent, whatever ``outage_buffer`` says (a healthy link's backlog)
MIN_BACKLOG = 0.5
#: audio kept from before a turn's start (its onset, a VAD's prefix padding), for a new connection to hear it whole
TURN_PADDING = 0.3

C = TypeVar("C")
P = TypeVar("P")


class LinkTap(Protocol):
    """Sees every message a realtime plugin's link sends and receives (a recorder's cassette, say).

    A plugin returns one from the ``agentsession_link_tap`` hook; each link of the session calls it for every
    message, on the event loop, as sent or read (``connection``: 0 for the first connection, then one more
    for each reconnect). Keep it fast: it runs for every audio chunk.
    """

    def link_message(self, link: str, connection: int, direction: Literal["sent", "received"],
                     message: str | bytes) -> None: ...


#: the taps of the session running in this context (set by ``session.start()`` before its pipeline starts)
link_taps: contextvars.ContextVar[tuple[LinkTap, ...]] = contextvars.ContextVar("agentsession_link_taps", default=())


def current_link_taps() -> tuple[LinkTap, ...]:
    """The taps of the session running in this context: for a provider connection that is not a ``ProviderLink``
    (a cascade's HTTP client, a transcription stream), taken when it is made or when it sends."""
    return link_taps.get()


def tap_message(taps: tuple[LinkTap, ...], link: str, connection: int, direction: Literal["sent", "received"],
                message: str | bytes) -> None:
    """Show ``message`` to ``taps`` (one that raises is logged and skipped)."""
    for tap in taps:
        try:
            tap.link_message(link, connection, direction, message)
        except Exception:
            logger.exception("a link tap raised")


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Pushed user audio: where it starts (seconds pushed before it), the audio, and whether it is voice."""

    position: float
    frame: AudioFrame
    voiced: bool

    @property
    def seconds(self) -> float:
        return self.frame.duration


class AudioBacklog:
    """The user's audio on its way up: what waits to be sent (the last ``outage_buffer`` seconds; what goes is
    :attr:`lost`), and what was sent since the server last answered (sent again if the link turns out gone)."""

    def __init__(self, outage_buffer: float) -> None:
        self.outage_buffer = outage_buffer
        self.pushed = 0.0  # seconds pushed so far
        self.lost = 0.0  # seconds that never reached a server
        self._waiting: deque[AudioChunk] = deque()
        self._waiting_s = 0.0
        self._sent: deque[AudioChunk] = deque()  # sent, not confirmed
        self._sent_s = 0.0
        self._sent_dropped = 0.0  # seconds sent since the server last answered that were not kept

    def push(self, frame: AudioFrame, voiced: bool) -> AudioChunk:
        chunk = AudioChunk(self.pushed, frame, voiced)
        self.pushed += frame.duration
        self._waiting.append(chunk)
        self._waiting_s += frame.duration
        self._trim()
        return chunk

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def take(self, most: int | None = None) -> list[AudioChunk]:
        """Up to ``most`` waiting chunks (all if ``None``), held as sent and unconfirmed from now on."""
        n = len(self._waiting) if most is None else min(most, len(self._waiting))
        chunks = [self._waiting.popleft() for _ in range(n)]
        for chunk in chunks:
            self._waiting_s -= chunk.seconds
            self._sent.append(chunk)
            self._sent_s += chunk.seconds
        if not self._waiting:
            self._waiting_s = 0.0
        while self._sent_s > self.outage_buffer + 1e-9 and len(self._sent) > 1:
            dropped = self._sent.popleft().seconds
            self._sent_s -= dropped
            self._sent_dropped += dropped  # lost if the link turns out to be gone
        return chunks

    def confirm(self, turn_start: float | None = None) -> None:
        """The server answered: forget what was sent before, but for the user's turn in progress (from
        ``turn_start``, a position, or the voice at the end of what was sent), with a little lead-in."""
        starts = [s for s in (turn_start, self._trailing_voice()) if s is not None]
        keep_from = min(starts) - TURN_PADDING if starts else None
        while self._sent and (keep_from is None or self._sent[0].position + 1e-9 < keep_from):
            self._sent_s -= self._sent.popleft().seconds
        if not self._sent:
            self._sent_s = 0.0
        self._sent_dropped = 0.0

    def replay(self) -> None:
        """The link is gone: what was sent since the server last answered goes again, first (what of it was
        not kept is lost)."""
        self.lost += self._sent_dropped
        self._sent_dropped = 0.0
        if self._sent:
            self._waiting.extendleft(reversed(self._sent))
            self._waiting_s += self._sent_s
            self._sent.clear()
            self._sent_s = 0.0
            self._trim()

    def _trim(self) -> None:
        limit = max(self.outage_buffer, MIN_BACKLOG) + 1e-9
        while self._waiting_s > limit:
            chunk = self._waiting.popleft()
            self._waiting_s -= chunk.seconds
            self.lost += chunk.seconds

    def _trailing_voice(self) -> float | None:
        """Where the voice at the end of what was sent began (pauses under ``TURN_PADDING`` s bridged)."""
        if not self._sent:
            return None
        start = None
        end = self._sent[-1].position + self._sent[-1].seconds
        for chunk in reversed(self._sent):
            if end - (chunk.position + chunk.seconds) > TURN_PADDING:
                break
            if chunk.voiced:
                start = end = chunk.position
        return start


class Liveness:
    """Whether the link is alive: requests answered within ``response_timeout``; the response awaited making
    progress (its own events, not just any message) within ``stall_timeout``; the user's voice (at least
    :data:`MIN_VOICE` s) answered within ``stall_timeout`` when the server owes an answer to it; a turn the
    server saw start ended within ``stall_timeout`` of the user falling silent."""

    def __init__(self, response_timeout: float, stall_timeout: float, *, voice_owed: bool) -> None:
        self.response_timeout = response_timeout
        self.stall_timeout = stall_timeout
        self.voice_owed = voice_owed
        self.broken: str | None = None  # set by a send that blocked
        # when the audio being sent now began to be (its send is judged here, with no timer of its own per send)
        self.sending_since: float | None = None
        self.reset(0.0)

    def reset(self, now: float) -> None:
        self.awaiting: dict[str, tuple[str, float]] = {}  # key -> (what, loop time asked)
        self.responding = False
        self.server_speech = False  # the server saw the user's turn start and not end
        self.broken = None
        self.sending_since = None
        self._heard_at = now
        self._progress_at = now
        self._voice_since: float | None = None
        self._voiced = 0.0
        self._silent_since: float | None = None

    def expect(self, key: str, what: str, now: float) -> None:
        self.awaiting[key] = (what, now)

    def answered(self, key: str) -> None:
        self.awaiting.pop(key, None)

    def answered_first(self, what: str) -> None:
        key = next((k for k, (kind, _) in self.awaiting.items() if kind == what), None)
        if key is not None:
            del self.awaiting[key]

    def heard(self, now: float) -> None:
        """A server message arrived: the server is there, and has heard the voice sent so far."""
        self._heard_at = now
        self._voice_since, self._voiced = None, 0.0

    def progress(self, now: float) -> None:
        """The response awaited moved on (began, brought output, ended)."""
        self._progress_at = now

    def sent(self, chunk: AudioChunk, now: float) -> None:
        if chunk.voiced:
            self._silent_since = None
            if not self.server_speech:  # the server owes an answer to it
                if self._voice_since is None:
                    self._voice_since = now
                self._voiced += chunk.seconds
        elif self._silent_since is None:
            self._silent_since = now

    def stall(self, now: float) -> str | None:
        """Why the link is stalled at ``now``, or ``None`` while it is alive (or has nothing to say)."""
        if self.broken is not None:
            return self.broken
        if self.sending_since is not None and now - self.sending_since >= self.response_timeout:
            return f"a send blocked for {self.response_timeout:g} s"
        for what, asked_at in self.awaiting.values():
            if now - asked_at >= self.response_timeout:
                return f"no answer to {what} in {self.response_timeout:g} s"
        if self.responding and now - self._progress_at >= self.stall_timeout:
            return f"no progress of the response for {now - self._progress_at:.1f} s"
        if not self.voice_owed or now - self._heard_at < self.stall_timeout:
            return None
        voice = self._voice_since
        if voice is not None and self._voiced >= MIN_VOICE and now - voice >= self.stall_timeout:
            return f"no server message for {now - voice:.1f} s while the user spoke"
        silent = self._silent_since
        if self.server_speech and silent is not None and now - max(silent, self._heard_at) >= self.stall_timeout:
            return f"no end of the user's turn {now - max(silent, self._heard_at):.1f} s after they stopped"
        return None


@dataclass
class Request(Generic[P]):
    """A response asked for: the session's id for it, what the protocol sends for it, and the key of the
    message that asked it (set when sent)."""

    rid: str
    payload: P
    key: str = ""


class LinkProtocol(Protocol[C, P]):
    """What a realtime plugin maps onto the link: its provider's connection and wire protocol (the model class
    implements these methods, prefixed so they never clash with ``RealtimeModel``'s)."""

    async def link_open(self, first: bool) -> C:
        """Connect and set the session up; the connection is live when this returns. A non-recoverable
        ``ModelError`` ends the link (a refused key); anything else is retried."""
        ...

    async def link_read(self, conn: C) -> str:
        """Read and handle messages until the connection ends; why it ended (or raise)."""
        ...

    async def link_send_audio(self, conn: C, chunks: list[AudioChunk]) -> None:
        """Send ``chunks`` of the user's audio, in order."""
        ...

    async def link_send_request(self, conn: C, request: Request[P]) -> None:
        """Ask for ``request``'s response (set ``request.key``, and ``link.liveness.expect`` the answer)."""
        ...

    def link_socket(self, conn: C) -> Any:
        """The connection's websocket (``websockets``' ``ClientConnection``), to abort and wait for; or ``None``."""
        ...

    async def link_close(self, conn: C) -> None:
        """Start the closing handshake."""
        ...

    def link_lost(self, reason: str, dropped: bool) -> None:
        """The connection ended (``dropped``: lost or stalled, else a planned handover): settle what was in flight."""
        ...


class ProviderLink(Generic[C, P]):
    """One reconnecting link to a provider, for a realtime model (see the module's docstring).

    ``name`` names the provider in messages; ``channel`` receives ``Reconnecting``/``Reconnected``/``Error``;
    ``audio_batch``: how many waiting chunks go in one send (``None``: all). ``max_message_size`` is what the
    plugin gives its websocket library; an oversized message closes the socket, which the link reconnects.
    """

    def __init__(
        self,
        protocol: LinkProtocol[C, P],
        channel: EventChannel,
        *,
        name: str,
        connect_timeout: float,
        response_timeout: float,
        stall_timeout: float,
        close_timeout: float,
        outage_buffer: float,
        max_reconnects: int,
        reconnect_delay: float,
        max_reconnect_delay: float,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        voice_owed: bool = True,
        audio_batch: int | None = 1,
        describe: Callable[[BaseException], str] | None = None,
    ) -> None:
        if max_reconnects < 0:
            raise ValueError("max_reconnects must be >= 0")
        if min(response_timeout, stall_timeout, close_timeout) <= 0 or outage_buffer < 0:
            raise ValueError("response_timeout, stall_timeout and close_timeout must be > 0, outage_buffer >= 0")
        if max_message_size is not None and max_message_size <= 0:
            raise ValueError("max_message_size must be > 0 (or None for no limit)")
        self.protocol = protocol
        self.channel = channel
        self.name = name
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.max_message_size = max_message_size
        self.audio_batch = audio_batch
        self.backlog = AudioBacklog(outage_buffer)
        self.liveness = Liveness(response_timeout, stall_timeout, voice_owed=voice_owed)
        self.conn: C | None = None
        self.origin: float | None = None  # position of the first chunk sent on this connection
        self.reconnects = 0
        self.closed = False
        self.failed = False
        # responses: asked for and not sent, in order; the one sent and not begun; responses interrupt() named
        self.queued: deque[Request[P]] = deque()
        self.requested: Request[P] | None = None
        self.stopped: set[str] = set()
        self.hold = False  # no request is sent while set (a handover is coming)
        self._describe = describe or _describe
        self._audio_ready = asyncio.Event()
        self._handover = asyncio.Event()
        self._handover_reason = ""
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: the session's taps (:class:`LinkTap`), taken at :meth:`start`; the plugin reports each message with
        #: :meth:`tap_sent`/:meth:`tap_received`
        self.taps: tuple[LinkTap, ...] = ()
        self.connections = 0  # connections opened so far

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the first connection (a ``ModelError`` if it cannot be had), then keep the link up."""
        self.taps = link_taps.get()
        try:
            conn = await self._open(first=True)
        except ModelError as exc:
            raise ModelError(redact(str(exc)), recoverable=exc.recoverable, code=exc.code) from None
        except (Exception, TimeoutError) as exc:
            raise ModelError(f"cannot connect to {self.name}: {self.describe(exc)}", code="connect_failed") from None
        self._task = asyncio.get_running_loop().create_task(self._supervise(conn), name=f"link:{self.name}")

    async def close(self) -> None:
        """Stop the link; bounded by about ``close_timeout`` whatever the socket does. Idempotent."""
        if self.closed:
            return
        self.closed = True
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # every await in them is bounded
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.close_socket(conn)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def tap_sent(self, message: str | bytes | Callable[[], str | bytes]) -> None:
        """The plugin sent ``message`` (or a callable making it, called only when a tap listens)."""
        if self.taps:
            self._tap("sent", message)

    def tap_received(self, message: str | bytes) -> None:
        """The plugin read ``message`` from the provider."""
        if self.taps:
            self._tap("received", message)

    def _tap(self, direction: Literal["sent", "received"], message: str | bytes | Callable[[], str | bytes]) -> None:
        tap_message(self.taps, self.name, max(0, self.connections - 1), direction,
                    message() if callable(message) else message)

    def describe(self, exc: BaseException) -> str:
        """``exc`` as text, secrets masked."""
        return redact(self._describe(exc))

    # ------------------------------------------------------------------ audio up

    def push(self, frame: AudioFrame, voiced: bool) -> None:
        """Queue a chunk of the user's audio to be sent (never blocks; bounded by ``outage_buffer``)."""
        if self.closed or self.failed:
            return
        self.backlog.push(frame, voiced)
        self._audio_ready.set()

    @property
    def audio_lost(self) -> float:
        return self.backlog.lost

    def position(self, ms: float) -> float:
        """Seconds of input audio pushed at ``ms`` of this connection's input buffer."""
        return (self.origin if self.origin is not None else self.backlog.pushed) + ms / 1000

    def heard(self, turn_start: float | None = None, *, confirm: bool = True) -> None:
        """A server message arrived; unless ``confirm`` is off, what was sent before it arrived (but for the
        user's turn in progress, from ``turn_start`` if given)."""
        self.liveness.heard(self.now())
        if confirm:
            self.backlog.confirm(turn_start)

    # ------------------------------------------------------------------ responses

    def ask(self, rid: str, payload: P) -> None:
        """Queue a response; it is asked for once those before it are done."""
        self.queued.append(Request(rid, payload))
        self.pump()

    def drop(self, rids: Iterable[str]) -> None:
        """``interrupt()``: queued responses named are dropped; the one asked for is stopped when it begins."""
        named = set(rids)
        self.queued = deque(r for r in self.queued if r.rid not in named)
        if self.requested is not None and self.requested.rid in named:
            self.stopped.add(self.requested.rid)

    def begin(self, rid: str | None) -> Request[P] | None:
        """The server began a response: ``rid``, ours, or ``None`` (one it started itself). The request it
        answers, if it is the one asked for, is returned."""
        self.liveness.responding = True
        self.liveness.progress(self.now())
        requested = self.requested
        if requested is not None and rid == requested.rid:
            self.requested = None
            self.liveness.answered(requested.key)
            return requested
        return None

    def progress(self) -> None:
        """An event of the response being generated arrived."""
        self.liveness.progress(self.now())

    def end(self) -> None:
        """The response being generated ended (or is no longer awaited); the next one is asked for."""
        self.liveness.responding = False
        self.pump()

    def refused(self, request: Request[P], *, retry: bool) -> None:
        """The server refused ``request`` (asked for again after the current response when ``retry``)."""
        if self.requested is request:
            self.requested = None
        self.liveness.answered(request.key)
        if retry:
            request.key = ""
            self.queued.appendleft(request)

    def pump(self) -> None:
        """Ask for the next queued response when none is being generated or awaited."""
        conn = self.conn
        if (conn is None or self.requested is not None or self.liveness.responding or self.hold or not self.queued
                or self.closed):
            return
        request = self.queued.popleft()
        self.requested = request
        self.spawn(self._send_request(conn, request))

    async def _send_request(self, conn: C, request: Request[P]) -> None:
        if not await self.send(lambda: self.protocol.link_send_request(conn, request)) and self.requested is request:
            self.requested = None  # never arrived: asked again on the next connection
            self.liveness.answered(request.key)
            request.key = ""
            self.queued.appendleft(request)

    # ------------------------------------------------------------------ sending

    async def send(self, send: Callable[[], Awaitable[None]]) -> bool:
        """Run ``send`` on the live connection, bounded by ``response_timeout`` (longer: the link is stalled);
        ``False`` when there is no connection or it failed (the reader sees the socket go)."""
        if self.conn is None:
            return False
        try:
            async with asyncio.timeout(self.liveness.response_timeout):
                await send()
        except TimeoutError:
            self.liveness.broken = f"a send blocked for {self.liveness.response_timeout:g} s"
            return False
        except Exception as exc:
            logger.debug("%s: send failed (%s); the reader will reconnect", self.name, self.describe(exc))
            return False
        return True

    async def _send_audio(self, conn: C) -> None:
        """Send the backlog, in order, while this connection lives (it is kept, bounded, meanwhile). A send that
        blocks for ``response_timeout`` is the watchdog's to find (``Liveness.sending_since``): no timer is set
        and cancelled for each of the ten or more appends a second."""
        self._audio_ready.set()  # what was kept meanwhile goes first
        live, send = self.liveness, self.protocol.link_send_audio
        while True:
            await self._audio_ready.wait()
            self._audio_ready.clear()
            while self.backlog:
                chunks = self.backlog.take(self.audio_batch)
                now = self.now()
                for chunk in chunks:
                    live.sent(chunk, now)
                if self.origin is None:
                    self.origin = chunks[0].position
                live.sending_since = now
                try:
                    await send(conn, chunks)
                except Exception as exc:
                    logger.debug("%s: send failed (%s); the reader will reconnect", self.name, self.describe(exc))
                    return  # held as sent: replayed on the next connection
                finally:
                    live.sending_since = None

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` as a task the link owns (cancelled on close)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ events

    def error(self, message: str, *, recoverable: bool = True, code: str | None = None) -> None:
        """Emit an ``Error`` with a provider's text, secrets masked."""
        self.channel.emit(Error(redact(message), recoverable=recoverable, code=code))

    def handover(self, reason: str) -> None:
        """Reconnect now, as planned (a server's ``go_away``, a new setup): no ``Reconnecting`` is emitted."""
        self._handover_reason = reason
        self._handover.set()

    # ------------------------------------------------------------------ connection

    async def _open(self, first: bool) -> C:
        self.connections += 1  # before link_open: its messages (the session's setup) belong to this connection
        async with asyncio.timeout(self.connect_timeout):  # a server that stalls now fails the attempt
            conn = await self.protocol.link_open(first)
        self.conn = conn
        self.origin = None
        self.liveness.reset(self.now())
        self._handover.clear()
        self.pump()
        return conn

    async def _supervise(self, conn: C) -> None:
        """Serve each connection; on a drop or a stall, report what was lost and reconnect."""
        while True:
            planned, reason = await self._serve(conn)
            if self.closed:
                return
            if self.failed:
                self.protocol.link_lost(reason, True)
                abort(self.protocol.link_socket(conn))
                await self.wait_closed(conn)
                return
            self.conn = None
            if planned:
                logger.info("%s: %s; reconnecting", self.name, reason)
                self.protocol.link_lost(reason, False)
                self._settle(dropped=False)
                await self.close_socket(conn)
                try:
                    conn = await self._open(first=False)
                    continue
                except (Exception, TimeoutError) as exc:
                    reason = f"handover failed: {self.describe(exc)}"
                lost_before, down_at = self.audio_lost, self.now()
            else:
                logger.warning("%s connection lost (%s); reconnecting", self.name, reason)
                lost_before, down_at = self.audio_lost, self.now()
                self.backlog.replay()
                self.protocol.link_lost(reason, True)
                self._settle(dropped=True)
                abort(self.protocol.link_socket(conn))  # gone, or stalled: a closing handshake would wait for nothing
                await self.wait_closed(conn)
            reconnected = await self._reconnect(reason, down_at, lost_before)
            if reconnected is None:
                return
            conn = reconnected
            self.reconnects += 1

    def _settle(self, dropped: bool) -> None:
        requested, self.requested = self.requested, None
        if requested is not None and requested.rid not in self.stopped:
            requested.key = ""
            self.queued.appendleft(requested)  # never begun: asked again on the next connection
        self.stopped.clear()
        self.liveness.responding = False
        self.hold = False

    async def _serve(self, conn: C) -> tuple[bool, str]:
        """Read until the socket closes, the watchdog finds the link stalled or a handover is asked for;
        whether it was planned, and why it ended."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self.protocol.link_read(conn), name=f"link:{self.name}:read")
        watchdog = loop.create_task(self._watch(), name=f"link:{self.name}:watchdog")
        handover = loop.create_task(self._handover.wait(), name=f"link:{self.name}:handover")
        sender = loop.create_task(self._send_audio(conn), name=f"link:{self.name}:audio")
        try:
            done, _ = await asyncio.wait({reader, watchdog, handover}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, watchdog, handover, sender):
                task.cancel()
            await asyncio.gather(reader, watchdog, handover, sender, return_exceptions=True)
        if reader in done:
            exc = reader.exception()
            if self._oversized(conn):  # the websocket refused a message over max_message_size
                return False, f"a server message over {self.max_message_size} bytes (1009, message too big)"
            if exc is None:
                return False, redact(reader.result())
            if isinstance(exc, ModelError) and not exc.recoverable:
                self._fail(str(exc), exc.code or "connection_failed")
            return False, self.describe(exc)
        if watchdog in done:
            return False, f"stalled: {watchdog.result()}"
        return True, self._handover_reason

    def _oversized(self, conn: C) -> bool:
        """Whether the socket was failed for an inbound message too big (websockets sends close code 1009)."""
        protocol = getattr(self.protocol.link_socket(conn), "protocol", None)
        return getattr(getattr(protocol, "close_sent", None), "code", None) == 1009

    async def _watch(self) -> str:
        """Check the link's liveness every tick; returns why it is judged stalled."""
        live = self.liveness
        tick = min(0.5, live.response_timeout / 10, live.stall_timeout / 10)
        while True:
            await asyncio.sleep(tick)
            reason = live.stall(self.now())
            if reason is not None:
                return reason

    async def _reconnect(self, reason: str, down_at: float, lost_before: float) -> C | None:
        for attempt in range(1, self.max_reconnects + 1):
            self.channel.emit(Reconnecting(attempt, redact(reason)))
            await asyncio.sleep(min(self.reconnect_delay * 2 ** (attempt - 1), self.max_reconnect_delay))
            try:
                conn = await self._open(first=False)
            except ModelError as exc:
                if not exc.recoverable:
                    self._fail(f"{self.name} refused the reconnect: {exc}", exc.code or "reconnect_failed")
                    return None
                reason = f"attempt {attempt} failed: {exc}"
            except (Exception, TimeoutError) as exc:
                reason = f"attempt {attempt} failed: {self._describe(exc)}"
            else:
                self.channel.emit(Reconnected(self.now() - down_at, self.audio_lost - lost_before))
                return conn
            logger.warning("%s: reconnect %d/%d failed: %s", self.name, attempt, self.max_reconnects, redact(reason))
        self._fail(f"lost the {self.name} connection ({reason}) and could not reconnect after "
                   f"{self.max_reconnects} attempts", "reconnect_failed")
        return None

    def _fail(self, message: str, code: str) -> None:
        if self.failed:
            return
        self.failed = True
        self.conn = None
        logger.error("%s", redact(message))
        self.error(message, recoverable=False, code=code)

    # ------------------------------------------------------------------ closing

    async def close_socket(self, conn: C) -> None:
        """The closing handshake, bounded by ``close_timeout``; the socket is aborted if it takes longer."""
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.protocol.link_close(conn)
        except BaseException as exc:
            abort(self.protocol.link_socket(conn))
            if isinstance(exc, asyncio.CancelledError):
                raise
            logger.debug("%s: closing the socket: %s", self.name, self.describe(exc))
        await self.wait_closed(conn)

    async def wait_closed(self, conn: C) -> None:
        """Wait (briefly) for a closed or aborted socket to be torn down, its keepalive task with it."""
        ws = self.protocol.link_socket(conn)
        if ws is None or not hasattr(ws, "wait_closed"):
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await ws.wait_closed()
                keepalive = getattr(ws, "keepalive_task", None)
                if keepalive is not None and not keepalive.done():
                    await asyncio.wait({keepalive})
        except TimeoutError:
            logger.debug("%s: the socket was not torn down in %g s", self.name, self.close_timeout)


def abort(ws: Any) -> None:
    """Drop a websocket now, without a closing handshake."""
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LinkedRealtimeModel(RealtimeModel):
    """A ``RealtimeModel`` over a :class:`ProviderLink` (``self._link``, made in the subclass's ``__init__``):
    the link's settings and figures as read-only attributes, and ``close()`` (the link, then the SDK client)."""

    _link: ProviderLink[Any, Any]

    @property
    def connect_timeout(self) -> float:
        return self._link.connect_timeout

    @property
    def response_timeout(self) -> float:
        return self._link.liveness.response_timeout

    @property
    def stall_timeout(self) -> float:
        return self._link.liveness.stall_timeout

    @property
    def close_timeout(self) -> float:
        return self._link.close_timeout

    @property
    def outage_buffer(self) -> float:
        return self._link.backlog.outage_buffer

    @property
    def reconnect_delay(self) -> float:
        return self._link.reconnect_delay

    @property
    def max_message_size(self) -> int | None:
        return self._link.max_message_size

    @property
    def reconnects(self) -> int:
        """How many times the link was lost and reconnected."""
        return self._link.reconnects

    @property
    def audio_lost(self) -> float:
        """Seconds of the user's audio that never reached a server (the outage buffer overflowed)."""
        return self._link.audio_lost

    async def close(self) -> None:
        if self._link.closed:
            return
        await self._link.close()
        try:
            async with asyncio.timeout(self._link.close_timeout):
                await self._close_client()
        except (Exception, TimeoutError):
            logger.debug("%s: closing the client failed", self._link.name, exc_info=True)
        self.channel.end()

    async def _close_client(self) -> None:
        """Close the provider SDK's client, if the model made one."""
