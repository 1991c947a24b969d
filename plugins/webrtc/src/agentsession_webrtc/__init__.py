"""agentsession-webrtc: the ``playground`` mode, a local web page that talks to your agent over WebRTC."""

from __future__ import annotations

from ._mode import PlaygroundMode
from ._server import PlaygroundServer, is_loopback
from ._transport import AgentAudioTrack, OfferError, WebRTCTransport, frame_from_av

__all__ = [
    "AgentAudioTrack",
    "OfferError",
    "PlaygroundMode",
    "PlaygroundServer",
    "WebRTCTransport",
    "frame_from_av",
    "is_loopback",
]
