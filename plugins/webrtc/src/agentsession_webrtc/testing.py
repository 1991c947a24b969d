"""Test helpers: ``FakeBrowser``, an in-process aiortc peer that does what the playground page does, and
``loopback_only_ice()``, which makes aiortc gather loopback candidates (for tests in a network namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
from collections.abc import Iterator
from typing import Any

import aioice.ice
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from agentsession import AudioFrame

from ._transport import frame_from_av

__all__ = ["FakeBrowser", "MicTrack", "loopback_only_ice"]


@contextlib.contextmanager
def loopback_only_ice() -> Iterator[None]:
    """aioice skips 127.0.0.1 when gathering host candidates: make every aiortc peer use only loopback."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


class MicTrack(MediaStreamTrack):
    """The fake browser's microphone: sends nothing until audio is queued, then 20 ms frames in real
    time (silence between utterances), like a live microphone that was just switched on."""

    kind = "audio"

    def __init__(self, sample_rate: int = 48000) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self._block = sample_rate // 50
        self._pending = np.zeros(0, np.int16)
        self._started = asyncio.Event()
        self._t0 = 0.0
        self._pts = 0

    def speak(self, frame: AudioFrame) -> None:
        self._pending = np.concatenate([self._pending, frame.to_mono().data[:, 0]])
        self._started.set()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._started.wait()
        loop = asyncio.get_running_loop()
        if self._pts == 0:
            self._t0 = loop.time()
        else:
            await asyncio.sleep(max(0.0, self._t0 + self._pts / self.sample_rate - loop.time()))
        block = np.zeros(self._block, np.int16)
        take = min(self._block, self._pending.shape[0])
        block[:take] = self._pending[:take]
        self._pending = self._pending[take:]
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._pts += self._block
        return frame


class FakeBrowser:
    """An aiortc peer doing what the playground page does: mic track, data channel, offer, answer."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = MicTrack()
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("agentsession")
        self.messages: list[dict[str, Any]] = []
        self.received: list[AudioFrame] = []
        self._waiters: list[tuple[Any, asyncio.Future[dict[str, Any]]]] = []
        self.opened = asyncio.Event()
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def offer(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    def offer_json(self) -> dict[str, str]:
        return {"type": "offer", "sdp": self.pc.localDescription.sdp}

    async def answer(self, answer: RTCSessionDescription) -> None:
        await self.pc.setRemoteDescription(answer)

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def wait_message(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        for message in self.messages:
            if predicate(message):
                return message
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return await asyncio.wait_for(fut, timeout)

    def received_rms(self) -> float:
        if not self.received:
            return 0.0
        audio = np.concatenate([f.to_mono().data[:, 0] for f in self.received]).astype(np.float64)
        return float(np.sqrt(np.mean(audio**2)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()

    def _on_message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.messages.append(message)
        for entry in list(self._waiters):
            predicate, fut = entry
            if not fut.done() and predicate(message):
                fut.set_result(message)
                self._waiters.remove(entry)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self.received.append(frame_from_av(frame))
        except MediaStreamError:
            return

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()
