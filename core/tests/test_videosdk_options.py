"""VideoSDK 1.0's ``RoomOptions``/``Options`` fields are accepted (what we support applies, the rest is logged once
as not supported: never a ``TypeError``), and ``JobContext``'s VideoSDK methods."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agentsession import AgentSession, AgentSessionError, JobContext, Options, RealTimePipeline, RoomOptions
from agentsession.testing import FakeRealtimeModel, FakeTransport
from core_helpers import QuietAgent

VIDEOSDK_ROOM_FIELDS: dict[str, Any] = {  # every field of VideoSDK 1.0's RoomOptions, set to a non-default value
    "room_id": "r-1", "auth_token": "room-secret-0123456789", "name": "Desk", "agent_participant_id": "agent-1", "playground": True,
    "vision": True, "recording": True, "recording_options": object(), "avatar": object(), "join_meeting": False,
    "on_room_error": print, "auto_end_session": False, "session_timeout_seconds": 30,
    "no_participant_timeout_seconds": 60, "signaling_base_url": "api.example", "background_audio": True,
    "send_logs_to_dashboard": True, "dashboard_log_level": "DEBUG", "traces": object(), "metrics": object(),
    "logs": object(), "observability": object(), "transport_mode": "webrtc", "websocket": object(),
    "webrtc": object(),
}


def test_room_options_take_every_videosdk_field(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "agentsession.worker")
    options = RoomOptions(**VIDEOSDK_ROOM_FIELDS)
    assert (options.room_id, options.name, options.agent_participant_id, options.playground) == (
        "r-1", "Desk", "agent-1", True)
    assert (options.auto_end_session, options.session_timeout_seconds, options.no_participant_timeout_seconds) == (
        False, 30, 60)
    assert options.signaling_base_url == "api.example"
    assert options.unsupported["vision"] is True and options.unsupported["transport_mode"] == "webrtc"
    unsupported = {r.getMessage() for r in caplog.records}
    assert "RoomOptions(vision=...) is not supported by agentsession: ignored" in unsupported
    assert len(unsupported) == 16  # one line per field we lack
    caplog.clear()
    RoomOptions(vision=True, recording=False, colour="red")  # logged once per process; a default is no news
    assert [r.getMessage() for r in caplog.records] == ["RoomOptions has no field 'colour': ignored"]
    assert "room-secret-0123456789" not in repr(options)


def test_room_options_defaults_are_videosdk_s() -> None:
    options = RoomOptions()
    assert (options.session_timeout_seconds, options.no_participant_timeout_seconds) == (5.0, 90.0)
    assert options.auto_end_session is True and options.unsupported == {}
    options.update(session_timeout_seconds=12, avatar=None)
    assert options.session_timeout_seconds == 12 and options.unsupported == {"avatar": None}


def test_options_take_videosdk_s_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "agentsession.worker")
    options = Options(executor_type="thread", initialize_timeout=10.0, close_timeout=5.0, permissions=None,
                      max_processes=3, agent_id="desk", register=False, log_level="debug")
    assert (options.max_processes, options.agent_id, options.log_level) == (3, "desk", "DEBUG")
    assert options.unsupported == {"executor_type": "thread", "initialize_timeout": 10.0, "close_timeout": 5.0,
                                   "permissions": None}
    assert {r.getMessage() for r in caplog.records} == {
        "Options(executor_type=...) is not supported by agentsession: ignored",
        "Options(close_timeout=...) is not supported by agentsession: ignored",
    }
    with pytest.raises(ValueError, match="max_processes"):
        Options(max_processes=0)


async def test_job_context_metadata_join_and_run_until_shutdown() -> None:
    transport = FakeTransport()
    ctx = JobContext(RoomOptions(name="Desk"), transport=transport, metadata={"customer": "acme"})
    assert ctx.metadata == {"customer": "acme"}
    assert await ctx.wait_for_meeting_joined(timeout=0) is False
    session = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))
    closed: list[str] = []
    session.on("closed", lambda data: closed.append("closed"))

    async def end_soon() -> None:
        assert await ctx.wait_for_meeting_joined()
        await session.close()  # the session closing ends the job: run_until_shutdown returns

    ender = asyncio.ensure_future(end_soon())
    await ctx.run_until_shutdown(session=session, wait_for_participant=True)
    await ender
    assert closed == ["closed"] and ctx.shutting_down and ctx.connected


@pytest.fixture
def rooms_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for VideoSDK's ``POST /v2/rooms``."""
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
            ok = self.headers.get("Authorization") == "good-token"
            body = json.dumps({"roomId": "abcd-efgh-ijkl"} if ok else {"message": "bad token"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_get_room_id_creates_a_room(rooms_api: tuple[str, list[dict[str, Any]]],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = rooms_api
    ctx = JobContext(RoomOptions(auth_token="good-token", signaling_base_url=url))
    assert ctx.get_room_id() == "abcd-efgh-ijkl"
    assert seen == [{"path": "/v2/rooms", "auth": "good-token"}]
    with pytest.raises(AgentSessionError, match="HTTP 401; check the token"):
        JobContext(RoomOptions(auth_token="bad-token", signaling_base_url=url)).get_room_id()
    monkeypatch.delenv("VIDEOSDK_AUTH_TOKEN", raising=False)
    with pytest.raises(AgentSessionError, match="VIDEOSDK_AUTH_TOKEN"):
        JobContext(RoomOptions(signaling_base_url=url)).get_room_id()
