"""The ``room`` mode: ``python main.py`` joins the VideoSDK meeting named by ``RoomOptions``."""

from __future__ import annotations

import argparse
import importlib.util

from agentsession import TransportMode, hookimpl
from agentsession.plugin import JobView

from ._config import RoomConfig
from ._registry_mode import RegistryMode
from ._transport import VideoSDKTransport

SDK_FIX = ("pip install 'agentsession-videosdk[sdk]' (in an environment of its own if other plugins need av>=17 or "
           "websockets>15: see the plugin's README)")


class RoomMode(TransportMode):
    """``python main.py [room] [--room-id ID] [--playground]``."""

    def __init__(self) -> None:
        super().__init__(self._create, help="join a VideoSDK meeting (the default mode)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--room-id", help="the meeting to join (default: RoomOptions.room_id or VIDEOSDK_ROOM_ID)")
        parser.add_argument("--playground", action="store_true",
                            help="print the hosted playground link for the room (it contains the token)")

    def problems(self) -> list[tuple[str, str]]:
        if importlib.util.find_spec("videosdk") is None:
            return [("the VideoSDK SDK is not installed in this environment", SDK_FIX)]
        return []

    def _create(self, ctx: JobView) -> VideoSDKTransport:
        options = ctx.options
        sdk = [f"the VideoSDK SDK, not installed here: {SDK_FIX}"] if self.problems() else []
        config = RoomConfig.from_options(ctx.room_options, room_id=getattr(options, "room_id", None),
                                         playground=getattr(options, "playground", None) or None, also_missing=sdk)
        return VideoSDKTransport(config)


@hookimpl
def agentsession_transports() -> dict[str, TransportMode]:
    return {"room": RoomMode(), "registry": RegistryMode()}
