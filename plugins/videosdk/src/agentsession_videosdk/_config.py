"""Room settings: ``RoomOptions`` plus the environment, checked once, with the token kept out of reprs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from agentsession import AgentSessionError, RoomOptions, mask

ROOM_ID_ENV = "VIDEOSDK_ROOM_ID"
TOKEN_ENV = "VIDEOSDK_AUTH_TOKEN"
PLAYGROUND_URL = "https://playground.videosdk.live"


class RoomConfigError(AgentSessionError):
    """The room cannot be joined as configured (no token, no room id, bad timeout)."""


@dataclass(frozen=True)
class RoomConfig:
    """Everything the room transport needs, resolved from ``RoomOptions`` and the environment."""

    room_id: str
    token: str = field(repr=False)
    name: str = "Agent"
    playground: bool = False
    auto_end_session: bool = True
    wait_for_participant: bool = True
    no_participant_timeout: float | None = 90.0
    session_timeout: float | None = None
    signaling_base_url: str | None = None
    participant_id: str | None = None

    @classmethod
    def from_options(cls, options: RoomOptions, *, room_id: str | None = None, playground: bool | None = None,
                     also_missing: Sequence[str] = ()) -> RoomConfig:
        """Resolve ``options`` (command-line overrides first, then the fields, then the environment). What is
        missing (with ``also_missing``, what the caller found missing too) is told in one ``RoomConfigError``."""
        resolved_room = room_id or options.room_id or os.environ.get(ROOM_ID_ENV)
        token = options.auth_token or os.environ.get(TOKEN_ENV)
        missing = list(also_missing)
        if not resolved_room:
            missing.append(f"a room to join: set RoomOptions(room_id=...), the {ROOM_ID_ENV} environment variable or "
                           "pass --room-id (create a room with POST https://api.videosdk.live/v2/rooms)")
        if not token:
            missing.append(f"an auth token: set the {TOKEN_ENV} environment variable or RoomOptions(auth_token=...) "
                           "(generate one at https://app.videosdk.live/api-keys)")
        for name in ("no_participant_timeout_seconds", "session_timeout_seconds"):
            value = getattr(options, name)
            if value is not None and not value > 0:
                missing.append(f"RoomOptions.{name} must be > 0 or None, got {value!r}")
        if missing:
            raise RoomConfigError(
                "cannot join a VideoSDK room (the default mode); it needs:\n"
                + "".join(f"  - {m}\n" for m in missing)
                + "or run the agent locally: name a mode (console, playground, or file --input in.wav)"
            )
        assert resolved_room is not None and token is not None
        return cls(
            room_id=resolved_room,
            token=token,
            name=options.name or "Agent",
            playground=options.playground if playground is None else playground or options.playground,
            auto_end_session=options.auto_end_session,
            wait_for_participant=options.wait_for_participant,
            no_participant_timeout=options.no_participant_timeout_seconds,
            session_timeout=options.session_timeout_seconds,
            signaling_base_url=options.signaling_base_url,
            participant_id=options.agent_participant_id,
        )

    def playground_url(self, *, masked: bool = False) -> str:
        """The hosted playground link for this room; ``masked`` hides the token (for logs)."""
        token = mask(self.token) if masked else self.token
        return f"{PLAYGROUND_URL}?{urlencode({'token': token, 'meetingId': self.room_id})}"
