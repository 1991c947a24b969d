"""Everything that touches the ``videosdk`` SDK: imported only when a room is joined (it is the ``sdk`` extra)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import av
from videosdk import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    AgentState,
    Meeting,
    MeetingEventHandler,
    Participant,
    ParticipantEventHandler,
    Stream,
    VideoSDK,
)
from vsaiortc.mediastreams import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    MediaStreamError,
    MediaStreamTrack,
)

from agentsession import PlayoutBuffer

from ._convert import to_av

__all__ = [
    "AgentState", "Meeting", "MeetingEvents", "MediaStreamError", "MicrophoneTrack", "Participant",
    "ParticipantEvents", "Stream", "create_meeting",
]

#: how far behind its clock the track may fall (a stalled sender) before it re-anchors instead of bursting
MAX_LAG = 0.1


class MicrophoneTrack(MediaStreamTrack):  # type: ignore[misc, unused-ignore]
    """The agent's microphone: the SDK's sender pulls it; it answers every 20 ms from the playout buffer.

    Paced on the event loop clock: silence when nothing is queued, exactly what was pulled counted as
    played (``PlayoutBuffer.played``).
    """

    kind = "audio"

    def __init__(self, playout: PlayoutBuffer, *, block_ms: int = 20) -> None:
        super().__init__()
        self._playout = playout
        self._rate = playout.sample_rate
        self._block = self._rate * block_ms // 1000
        self._anchor: float | None = None
        self._sent = 0  # samples since the anchor
        self._pts = 0  # samples since the first frame

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._anchor is None or now - (self._anchor + self._sent / self._rate) > MAX_LAG:
            self._anchor, self._sent = now, 0
        else:
            wait = self._anchor + self._sent / self._rate - now
            if wait > 0:
                await asyncio.sleep(wait)
            if self.readyState != "live":
                raise MediaStreamError
        samples, _ = self._playout.pull(self._block)
        frame = to_av(samples, self._rate, self._pts)
        self._sent += self._block
        self._pts += self._block
        return frame


class MeetingEvents(MeetingEventHandler):  # type: ignore[misc]
    """Forwards the meeting's events (the SDK calls them by name) to ``callbacks``."""

    def __init__(self, callbacks: dict[str, Callable[[Any], None]]) -> None:
        super().__init__()
        self._callbacks = callbacks

    def _call(self, name: str, data: Any) -> None:
        callback = self._callbacks.get(name)
        if callback is not None:
            callback(data)

    def on_meeting_joined(self, data: Any) -> None:
        self._call("joined", data)

    def on_meeting_left(self, data: Any) -> None:
        self._call("left", data)

    def on_meeting_state_change(self, data: Any) -> None:
        self._call("state", data)

    def on_error(self, data: Any) -> None:
        self._call("error", data)

    def on_participant_joined(self, participant: Any) -> None:
        self._call("participant_joined", participant)

    def on_participant_left(self, participant: Any) -> None:
        self._call("participant_left", participant)

    def on_speaker_changed(self, data: Any) -> None:
        self._call("speaker", data)


class ParticipantEvents(ParticipantEventHandler):  # type: ignore[misc]
    """Forwards one participant's stream events, with the participant."""

    def __init__(self, participant: Any, on_enabled: Callable[[Any, Any], None],
                 on_disabled: Callable[[Any, Any], None]) -> None:
        super().__init__()
        self._participant = participant
        self._on_enabled = on_enabled
        self._on_disabled = on_disabled

    def on_stream_enabled(self, stream: Any) -> None:
        self._on_enabled(self._participant, stream)

    def on_stream_disabled(self, stream: Any) -> None:
        self._on_disabled(self._participant, stream)


def create_meeting(**config: Any) -> Any:
    """``VideoSDK.init_meeting``: the real meeting (tests pass their own factory)."""
    return VideoSDK.init_meeting(**config)
