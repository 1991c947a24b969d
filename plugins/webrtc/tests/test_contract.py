"""Core's TransportContract against WebRTCTransport, driven by an in-process aiortc peer on loopback."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection

from agentsession import AudioFrame, Transport
from agentsession.testing import TransportContract
from agentsession_webrtc import WebRTCTransport
from agentsession_webrtc.testing import FakeBrowser


class TestWebRTCTransport(TransportContract):
    def setup_method(self) -> None:
        self.browsers: dict[int, FakeBrowser] = {}

    async def create_transport(self) -> Transport:
        browser = FakeBrowser()
        transport = WebRTCTransport(RTCPeerConnection(RTCConfiguration(iceServers=[])))
        await browser.answer(await transport.accept(await browser.offer()))
        await asyncio.wait_for(asyncio.gather(transport.wait_connected(), browser.connected.wait()), self.timeout)
        self.browsers[id(transport)] = browser
        return transport

    async def send_user_audio(self, transport: Transport, audio: AudioFrame) -> None:
        self.browsers[id(transport)].mic.speak(audio)

    async def destroy_transport(self, transport: Transport) -> None:
        await transport.close()
        browser = self.browsers.pop(id(transport), None)
        if browser is not None:
            await browser.close()
