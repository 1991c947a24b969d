"""``WebRTCTransport``: one browser connection (an aiortc peer) as an agentsession ``Transport``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import fractions
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from agentsession import AudioFrame, BufferedTransport, JobContext, PlayoutBuffer, redact

if TYPE_CHECKING:
    from agentsession.plugin import SessionView

logger = logging.getLogger("agentsession.webrtc")

#: how long a browser may take to connect after its offer was answered
CONNECT_TIMEOUT = 30.0
#: a job that failed before its session started waits this long for the page's data channel, to tell it why
FAILURE_DELIVERY = 5.0
_INPUT_FRAMES = 25  # bounded input queue: 0.5 s of 20 ms frames; the oldest is dropped when full
_PENDING_MESSAGES = 256  # data channel messages kept while the channel is not open yet
_MAX_TEXT = 4000  # characters of one typed message


class OfferError(ValueError):
    """The browser's offer can't be answered; the message says why (sent back as a 400)."""


def frame_from_av(frame: av.AudioFrame) -> AudioFrame:
    """An aiortc/PyAV audio frame (s16 or float, packed or planar) as a core ``AudioFrame``."""
    channels = len(frame.layout.channels)
    array = frame.to_ndarray()
    data = array.T if frame.format.is_planar else array.reshape(-1, channels)
    timestamp = float(frame.time) if frame.time is not None else 0.0
    if data.dtype == np.int16:
        return AudioFrame(np.ascontiguousarray(data), frame.sample_rate, timestamp)
    if data.dtype.kind == "f":
        return AudioFrame.from_float(data.astype(np.float32), frame.sample_rate, timestamp)
    raise ValueError(f"unsupported audio sample format {frame.format.name!r}")


class AgentAudioTrack(MediaStreamTrack):
    """The agent's voice as a WebRTC track: ``recv()`` paces 20 ms blocks pulled from a ``PlayoutBuffer``.

    It sends silence while the agent is quiet. A block counts as played when aiortc takes it for
    encoding, so the buffer's ``played`` is what went out on the wire. After a stall of more than
    ``max_lag`` seconds (a busy event loop) it resynchronises instead of bursting to catch up.
    """

    kind = "audio"

    def __init__(self, playout: PlayoutBuffer, *, block_ms: int = 20, max_lag: float = 0.2) -> None:
        super().__init__()
        self.playout = playout
        self.sample_rate = playout.sample_rate
        self._layout = "mono" if playout.channels == 1 else "stereo"
        self._block = self.sample_rate * block_ms // 1000
        self._time_base = fractions.Fraction(1, self.sample_rate)
        self._max_lag = max_lag
        self._t0: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._pts / self.sample_rate
        if now - due > self._max_lag:
            self._t0 = now - self._pts / self.sample_rate
        elif due > now:
            await asyncio.sleep(due - now)
        samples, _ = self.playout.pull(self._block)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=self._layout)
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += self._block
        return frame


class WebRTCTransport(BufferedTransport):
    """One browser tab: its microphone in, the agent's voice out, and a data channel both ways.

    Built from an ``RTCPeerConnection`` whose offer is then answered with ``accept(offer)``. The page's
    data channel carries typed text (``text_input``), ``interrupt`` and ``disconnect`` requests in, and the
    session's states, transcripts, tool calls, metrics and errors out (subscribed in ``bind``). The
    transport ends when the peer connection fails or closes, the browser's track ends, the page says
    ``disconnect``, or the server calls ``end``.
    """

    def __init__(self, pc: RTCPeerConnection, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        super().__init__(48000, 1)
        self.id = uuid.uuid4().hex
        self.pc = pc
        self.track = AgentAudioTrack(self.playout)
        self.connect_timeout = connect_timeout
        self.connected = asyncio.Event()
        self._input: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize=_INPUT_FRAMES)
        self._texts: asyncio.Queue[str | None] = asyncio.Queue(maxsize=32)
        self._channel: RTCDataChannel | None = None
        self._pending: list[str] = []
        self._session: SessionView | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dropped = 0
        self._closed = False
        self._failed_before_session = False
        self._context: contextvars.Context | None = None  # the job's, once bound
        self._channel_open = asyncio.Event()
        self._channel_closed = asyncio.Event()
        self._peer_gone = asyncio.Event()  # the peer connection failed or closed
        self._close_task: asyncio.Task[None] | None = None
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"<WebRTCTransport id={self.id[:8]} state={self.pc.connectionState}>"

    # ------------------------------------------------------------------ signalling

    async def accept(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the browser's offer; ``OfferError`` when it can't be answered."""
        if offer.type != "offer":
            raise OfferError(f"expected an SDP offer, got type {offer.type!r}")
        try:
            await self.pc.setRemoteDescription(offer)
        except Exception as exc:
            raise OfferError(f"the SDP offer could not be parsed: {exc or type(exc).__name__}") from None
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise OfferError("the offer has no audio section (add a microphone track or an audio transceiver)")
        try:
            self.pc.addTrack(self.track)
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise OfferError(f"the offer can't be answered: {exc or type(exc).__name__}") from None
        local = self.pc.localDescription
        self._spawn(self._watch_connect(), "connect-watchdog")
        return local

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the peer connection is up."""
        await asyncio.wait_for(self.connected.wait(), timeout)

    # ------------------------------------------------------------------ Transport

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        while True:
            frame = await self._input.get()
            if frame is None:
                self._input.put_nowait(None)  # later readers end too
                return
            yield frame

    def text_input(self) -> AsyncIterator[str] | None:
        return self._read_texts()

    def bind(self, session: SessionView) -> None:
        self._session = session
        # what aiortc's callbacks start from now on (an interrupt from the page) runs in the job's context, as if
        # the job had started it (the playground tags a job's output by its context)
        self._context = contextvars.copy_context()
        for event in ("agent_state_changed", "user_state_changed", "user_transcript", "agent_transcript",
                      "function_tool_called", "metrics_collected", "error", "closed"):
            session.on(event, self._forwarder(event))
        self.send({"type": "agent_state_changed", "state": session.agent_state, "previous": None})
        self.send({"type": "user_state_changed", "state": session.user_state, "previous": None})

    def clear(self) -> None:
        """An interruption: the agent's unplayed audio is dropped. The page is told, so it marks the answer as
        cut even when the turn's metrics came before (a model that sent the whole answer before it was played
        reports ``interrupted: false``)."""
        cut = self.playout.buffered > 0
        super().clear()
        if cut:
            self.send({"type": "interrupted"})

    def report_error(self, message: str) -> None:
        """Tell the page that the agent's job failed (no API key, a bad key, ...): shown there at once. Delivered
        even when the job fails before its session started: ``close`` then waits (up to ``FAILURE_DELIVERY``
        seconds) for the page's data channel."""
        self.send({"type": "error", "message": redact(message), "recoverable": False})
        self._failed_before_session = self._session is None

    def end(self, reason: str) -> None:
        fut = self._ended_future()
        if not fut.done():
            logger.info("playground connection %s ended: %s", self.id[:8], reason)
            self.user_gone = True  # the page hung up, or its connection died: nobody hears a goodbye
        super().end(reason)

    async def close(self) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self._closed = True
        if self._failed_before_session:
            await self._deliver_failure()
        await super().close()  # stops and clears the output, ends the transport
        self._finish_input()
        self.track.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pc.close()

    async def _deliver_failure(self) -> None:
        """The job failed before its session started: let the page connect, get the reason, and hang up."""
        self.send({"type": "closed", "reason": "the agent's job failed"})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FAILURE_DELIVERY):
                for step in (self._channel_open, self._channel_closed):  # the page hangs up on "closed"
                    waits = [asyncio.ensure_future(step.wait()), asyncio.ensure_future(self._peer_gone.wait())]
                    try:
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for wait in waits:
                            wait.cancel()
                    if self._peer_gone.is_set():
                        return

    # ------------------------------------------------------------------ data channel

    def send(self, message: dict[str, Any]) -> None:
        """Send a JSON message to the page (kept until the data channel opens)."""
        text = json.dumps(message, default=_json_default)
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            if not self._link_up():
                return  # the page is gone without a goodbye: aiortc's flush would fail in a task nobody awaits
            try:
                channel.send(text)
            except Exception:  # a channel closing under us: the page is going away
                logger.debug("data channel send failed", exc_info=True)
        elif channel is None and len(self._pending) < _PENDING_MESSAGES:
            self._pending.append(text)

    def _link_up(self) -> bool:
        """Whether the DTLS link under the data channel still carries data (after a crash or a killed tab it
        closes while the channel still says "open")."""
        sctp = self.pc.sctp
        return not self._peer_gone.is_set() and (sctp is None or sctp.transport.state == "connected")

    def _forwarder(self, event: str) -> Any:
        def forward(data: Any) -> None:
            payload = dict(data) if isinstance(data, Mapping) else {"data": data}
            if event == "closed" and payload.get("reason") == "closed":
                payload["reason"] = self._job_reason() or "closed"  # say why: the server stopped, ...
            self.send({"type": event, **payload})

        return forward

    def _job_reason(self) -> str | None:
        """Why this connection's job is ending (``interrupted`` when the server was stopped), if it is."""
        job = self._context.run(JobContext.current) if self._context is not None else JobContext.current()
        return job.shutdown_reason if job is not None else None

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            logger.debug("extra data channel %r ignored", channel.label)
            return
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("close", self._on_channel_close)
        pending, self._pending = self._pending, []
        for text in pending:
            channel.send(text)
        self._channel_open.set()

    def _on_channel_close(self) -> None:
        self._channel_closed.set()
        self.end("the page closed its data channel")

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            logger.debug("malformed data channel message ignored")
            return
        if kind == "text":
            text = message.get("text")
            if isinstance(text, str) and text.strip():
                if self._texts.full():
                    self.send({"type": "error", "message": "typing too fast: message dropped", "recoverable": True})
                else:
                    self._texts.put_nowait(text[:_MAX_TEXT])
        elif kind == "interrupt":
            if self._session is not None:
                self._spawn(_interrupt_in_task(self._session), "interrupt")  # in the job's context
        elif kind == "disconnect":
            self.end("disconnected from the page")
        elif kind == "ping":
            self.send({"type": "pong", "t": message.get("t")})
        else:
            logger.debug("unknown data channel message %r ignored", kind)

    async def _read_texts(self) -> AsyncIterator[str]:
        while True:
            text = await self._texts.get()
            if text is None:
                return
            yield text

    # ------------------------------------------------------------------ media and connection

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        self._spawn(self._read_track(track), "audio-in")

    async def _read_track(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                raw = await track.recv()
                if not isinstance(raw, av.AudioFrame):
                    continue
                frame = frame_from_av(raw)
                if self._input.full():
                    self._input.get_nowait()  # the session fell behind: drop the oldest frame
                    self._dropped += 1
                    if self._dropped in (1, 100, 1000):
                        logger.warning("playground input: dropped %d frames (the session is not reading)", self._dropped)
                self._input.put_nowait(frame)
        except MediaStreamError:
            self.end("the browser stopped sending audio")
        finally:
            self._finish_input()

    def _finish_input(self) -> None:
        while self._input.full():
            self._input.get_nowait()
        self._input.put_nowait(None)
        while self._texts.full():
            self._texts.get_nowait()
        self._texts.put_nowait(None)

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.debug("playground connection %s: %s", self.id[:8], state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self._peer_gone.set()
            self.end(f"connection {state}")

    async def _watch_connect(self) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), self.connect_timeout)
        except TimeoutError:
            self.end(f"the browser did not connect within {self.connect_timeout:.0f} s")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"webrtc:{name}", context=self._context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _json_default(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


async def _interrupt_in_task(session: Any) -> None:
    await session.interrupt()
