"""Room settings, the ``room`` mode and the plugin's entry point: no SDK needed."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from agentsession import JobContext, RoomOptions
from agentsession.plugin import transport_modes
from agentsession_videosdk import RoomConfig, RoomConfigError, RoomMode, VideoSDKTransport

TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-value.signature"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEOSDK_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("VIDEOSDK_ROOM_ID", raising=False)


def test_missing_token_names_the_variable() -> None:
    with pytest.raises(RoomConfigError, match="VIDEOSDK_AUTH_TOKEN"):
        RoomConfig.from_options(RoomOptions(room_id="abcd-efgh-ijkl"))


def test_missing_room_names_the_variable() -> None:
    with pytest.raises(RoomConfigError, match="VIDEOSDK_ROOM_ID"):
        RoomConfig.from_options(RoomOptions(auth_token=TOKEN))


def test_environment_fills_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOSDK_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("VIDEOSDK_ROOM_ID", "env-room")
    config = RoomConfig.from_options(RoomOptions(name="Assistant"))
    assert (config.room_id, config.token, config.name) == ("env-room", TOKEN, "Assistant")
    assert RoomConfig.from_options(RoomOptions(room_id="given"), room_id="cli").room_id == "cli"


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(RoomConfigError, match="no_participant_timeout_seconds"):
        RoomConfig.from_options(RoomOptions(room_id="r", auth_token=TOKEN, no_participant_timeout_seconds=0))


def test_token_stays_out_of_reprs_and_masked_links() -> None:
    config = RoomConfig.from_options(RoomOptions(room_id="abcd-efgh-ijkl", auth_token=TOKEN, playground=True))
    assert TOKEN not in repr(config)
    assert TOKEN not in repr(VideoSDKTransport(config))
    assert config.playground_url() == f"https://playground.videosdk.live?token={TOKEN}&meetingId=abcd-efgh-ijkl"
    masked = config.playground_url(masked=True)
    assert TOKEN not in masked and "meetingId=abcd-efgh-ijkl" in masked


def test_room_is_the_default_mode_from_this_plugin() -> None:
    mode = transport_modes()["room"]
    assert isinstance(mode, RoomMode)
    assert mode.provider  # registered through the entry point


def test_room_mode_builds_the_transport_from_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOSDK_AUTH_TOKEN", TOKEN)
    monkeypatch.setattr(RoomMode, "problems", lambda self: [])  # the SDK is only needed once the transport starts
    parser = argparse.ArgumentParser()
    mode = RoomMode()
    mode.add_arguments(parser)
    ctx = JobContext(RoomOptions(room_id="from-options", name="Assistant"))
    ctx.options = parser.parse_args(["--room-id", "from-cli", "--playground"])
    transport = mode.create(ctx)
    assert isinstance(transport, VideoSDKTransport)
    assert (transport.config.room_id, transport.config.name, transport.config.playground) == (
        "from-cli", "Assistant", True)
    ctx.options = parser.parse_args([])
    assert mode.create(ctx).config.room_id == "from-options"


def test_room_mode_tells_the_doctor_when_the_sdk_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = importlib.util.find_spec("videosdk") is not None
    assert (RoomMode().problems() == []) is installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    ((problem, fix),) = RoomMode().problems()
    assert "not installed" in problem and "pip install 'agentsession-videosdk[sdk]'" in fix


def test_a_room_mode_missing_everything_says_all_of_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default mode with nothing set up tells, in one message, every thing the room needs and the way out."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    ctx = JobContext(RoomOptions())
    ctx.options = argparse.Namespace()
    with pytest.raises(RoomConfigError) as missing:
        RoomMode().create(ctx)
    message = str(missing.value)
    for needed in ("pip install 'agentsession-videosdk[sdk]'", "VIDEOSDK_ROOM_ID", "--room-id", "VIDEOSDK_AUTH_TOKEN",
                   "name a mode (console, playground, or file --input in.wav)"):
        assert needed in message, message
