"""A stand-in for the SDK's ``RoomClient`` (its signalling and mediasoup layer), driving the SDK's real
``Meeting``, ``Agent``/``Participant`` and ``Stream`` classes with the events the real one emits.

Remote audio arrives on the SDK's own ``RemoteStreamTrack`` exactly as its decoder thread delivers it
(48 kHz stereo s16 ``av.AudioFrame``s through ``_put_latest``); the agent's microphone track is pulled by a
loop that behaves like the SDK's RTP sender (``recv()`` until ``MediaStreamError``).
"""

from __future__ import annotations

import asyncio
import enum
import fractions
import itertools
import logging
from typing import Any

import av
import numpy as np
from pyee.asyncio import AsyncIOEventEmitter
from videosdk import Meeting
from videosdk._events import Events
from videosdk.agent import Agent as SDKAgent
from vsaiortc.mediastreams import MediaStreamError
from vsaiortc.rtcrtpreceiver import RemoteStreamTrack, _put_latest

from agentsession import AudioFrame

_ids = itertools.count(1)


class SocketState(enum.Enum):
    OPEN = 1
    CLOSED = 3


class FakeSocket:
    """What the watchdog reads of the SDK's websocket: ``state``."""

    def __init__(self) -> None:
        self.state = SocketState.OPEN


class Producer:
    def __init__(self, track: Any) -> None:
        self.id = f"producer-{next(_ids)}"
        self.track = track
        self.kind = track.kind
        self.appData: dict[str, Any] = {}


class Consumer:
    def __init__(self, track: Any, peer_id: str) -> None:
        self.id = f"consumer-{next(_ids)}"
        self.track = track
        self.kind = track.kind
        self.appData = {"peerId": peer_id}


class FakeRoomClient(AsyncIOEventEmitter):
    """Same events and calls as ``videosdk.room_client.RoomClient``; the test drives the far side."""

    def __init__(self, joined: asyncio.Event, *, fail_join: bool = False, hang_join: bool = False, peers: tuple[tuple[str, str], ...] = (), **config: Any) -> None:
        super().__init__(loop=config.get("loop"))
        self.config = config
        self.fail_join = fail_join
        self.hang_join = hang_join
        self.initial_peers = peers
        self.session_id: str | None = None
        self._closed = False
        self._RoomClient__websocket: FakeSocket | None = None
        self.sent: list[av.AudioFrame] = []
        self.sent_at: list[float] = []
        self.agent_states: list[str] = []
        self.transcripts: list[dict[str, Any]] = []
        self.remote_tracks: dict[str, RemoteStreamTrack] = {}
        self.joined = joined
        self._sender: asyncio.Task[None] | None = None
        self._sent_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------- what the SDK's Meeting calls

    async def async_join(self) -> None:
        logging.getLogger("websockets.client").debug(
            "> GET /?roomId=%s&peerId=x&secret=%s&peerType=%s", self.config["meeting_id"], self.config["token"],
            self.config.get("peer_type"))
        self.emit(Events.MEETING_STATE_CHANGED, {"state": "CONNECTING"})
        await asyncio.sleep(0)
        if self.hang_join:  # a server that never answers
            await asyncio.Event().wait()
        if self.fail_join:  # what RoomClient.async_join does when the server refuses (its malformed log call too)
            logging.getLogger("videosdk.room_client").debug("ERROR", Exception(f"refused {self.config['token']}"))
            self.emit(Events.MEETING_STATE_CHANGED, {"state": "FAILED"})
            self.emit(Events.ERROR, "Failed to Join in the Meeting")
            return
        self._RoomClient__websocket = FakeSocket()
        self.emit(Events.MEETING_STATE_CHANGED, {"state": "CONNECTED"})
        track = self.config.get("custom_microphone_audio_track")
        if self.config.get("mic_enabled") and track is not None:
            self._sender = asyncio.get_running_loop().create_task(self._send(track))
            self.emit(Events.ADD_PRODUCER, Producer(track))
        self.session_id = "session-1"
        self.emit(Events.MEETING_JOINED, {"participants": [], "messages": [], "base_url": "fake.videosdk.test"})
        for peer_id, name in self.initial_peers:
            self.peer_joins(peer_id, name)
        self.joined.set()

    def join(self) -> None:
        self._spawn(self.async_join())

    def leave(self) -> None:
        self._spawn(self.async_leave())

    async def async_leave(self) -> None:
        self.emit(Events.MEETING_STATE_CHANGED, {"state": "CLOSING"})
        if self._closed:
            return
        self._closed = True
        if self._RoomClient__websocket is not None:
            self._RoomClient__websocket.state = SocketState.CLOSED
        if self._sender is not None:  # closing the send transport stops the RTP sender
            self._sender.cancel()
        self.emit(Events.MEETING_STATE_CHANGED, {"state": "CLOSED"})
        self.emit(Events.MEETING_LEFT, {})

    def send_agent_state_changed(self, state: str) -> None:
        self.agent_states.append(state)

    def send_agent_transcript(self, data: dict[str, Any]) -> None:
        self.transcripts.append(data)

    async def _send(self, track: Any) -> None:
        """Like the SDK's RTCRtpSender: pull the track until it ends."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.sent.append(frame)
            self.sent_at.append(loop.time())
            for waiter in [w for w in self._sent_waiters if w[0] <= len(self.sent)]:
                self._sent_waiters.remove(waiter)
                if not waiter[1].done():
                    waiter[1].set_result(None)

    async def wait_sent(self, count: int) -> None:
        """Return once the sender has pulled ``count`` frames in all."""
        if len(self.sent) < count:
            fut = asyncio.get_running_loop().create_future()
            self._sent_waiters.append((count, fut))
            await fut

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------- the far side, driven by tests

    def peer_joins(self, peer_id: str, name: str, *, agent: bool = False) -> None:
        self.emit(Events.ADD_PEER, {"id": peer_id, "displayName": name, "device": {}, "mode": "SEND_AND_RECV",
                                    "peerType": "agent" if agent else "normal"})

    def peer_publishes_audio(self, peer_id: str) -> RemoteStreamTrack:
        track = RemoteStreamTrack(kind="audio")
        self.remote_tracks[peer_id] = track
        self.emit(Events.ADD_CONSUMER, Consumer(track, peer_id))
        return track

    def peer_says(self, peer_id: str, audio: AudioFrame) -> None:
        """Deliver ``audio`` (48 kHz) as the decoder would: 20 ms stereo s16 frames on the peer's track."""
        track = self.remote_tracks[peer_id]
        assert audio.sample_rate == 48000
        data = audio.data if audio.channels == 2 else np.repeat(audio.data, 2, axis=1)
        for start in range(0, len(data), 960):
            chunk = np.zeros((960, 2), np.int16)
            piece = data[start:start + 960]
            chunk[: len(piece)] = piece
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = start
            frame.time_base = fractions.Fraction(1, 48000)
            _put_latest(track._queue, frame)

    def peer_leaves(self, peer_id: str) -> None:
        self.emit(Events.REMOVE_PEER, {"peerId": peer_id})

    def active_speaker(self, peer_id: str) -> None:
        self.emit(Events.SET_ROOM_ACTIVE_SPEAKER, {"peerId": peer_id})

    def socket_fails(self) -> None:
        """What RoomClient does when its websocket raises: an ``Internal socket Error``."""
        if self._RoomClient__websocket is not None:
            self._RoomClient__websocket.state = SocketState.CLOSED
        self.emit(Events.ERROR, "Internal socket Error")

    def socket_closes_quietly(self) -> None:
        """A clean close from the server: the SDK's receive loop just ends, no event."""
        assert self._RoomClient__websocket is not None
        self._RoomClient__websocket.state = SocketState.CLOSED

    def removed_by_host(self) -> None:
        """The server's ``close`` request: the SDK calls ``leave()`` itself."""
        self.leave()


class MeetingFactory:
    """``VideoSDK.init_meeting`` for tests: the SDK's real ``Meeting`` and ``Agent`` over a ``FakeRoomClient``."""

    def __init__(self, **fake: Any) -> None:
        self.fake = fake
        self.config: dict[str, Any] = {}
        self.room: FakeRoomClient | None = None
        self.joined = asyncio.Event()

    def __call__(self, **config: Any) -> Meeting:
        self.config = config
        self.room = room = FakeRoomClient(self.joined, **config, **self.fake)
        local = SDKAgent(id="agent-peer", display_name=config["name"], local=True, mode="SEND_AND_RECV",
                         room_client=room)
        return Meeting(config["meeting_id"], local, room)
