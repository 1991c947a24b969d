"""agentsession-videosdk: the ``room`` transport, the agent as a participant of a VideoSDK meeting."""

from __future__ import annotations

from ._config import ROOM_ID_ENV, TOKEN_ENV, RoomConfig, RoomConfigError
from ._transport import RoomError, VideoSDKTransport
from .plugin import RoomMode

__all__ = ["ROOM_ID_ENV", "TOKEN_ENV", "RoomConfig", "RoomConfigError", "RoomError", "RoomMode", "VideoSDKTransport"]
