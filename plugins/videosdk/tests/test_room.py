"""The transport against the SDK's own Meeting/Participant/Stream classes over a fake signalling layer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

pytest.importorskip("videosdk", reason="the VideoSDK SDK is the `sdk` extra: run these in its own venv (README)")

from videosdk_fakes import FakeRoomClient, MeetingFactory  # noqa: E402

from agentsession import AudioFrame, JobContext, RoomOptions  # noqa: E402
from agentsession.testing import TransportContract, tone  # noqa: E402
from agentsession_videosdk import RoomConfig, RoomError, VideoSDKTransport  # noqa: E402

TOKEN = "eyJhbGciOiJIUzI1NiJ9.room-secret-token.signature"
TIMEOUT = 5.0


def make(**options: Any) -> tuple[VideoSDKTransport, MeetingFactory]:
    fake = {k: options.pop(k) for k in ("fail_join", "hang_join", "peers") if k in options}
    extra = {k: options.pop(k) for k in ("signalling_check", "join_timeout") if k in options}
    factory = MeetingFactory(**fake)
    options.setdefault("wait_for_participant", False)
    config = RoomConfig.from_options(RoomOptions(room_id="abcd-efgh-ijkl", auth_token=TOKEN, **options))
    return VideoSDKTransport(config, meeting_factory=factory, **extra), factory


def room(factory: MeetingFactory) -> FakeRoomClient:
    assert factory.room is not None
    return factory.room


async def test_joins_as_an_agent_with_its_own_microphone_track() -> None:
    transport, factory = make(name="Assistant", agent_participant_id="agent-7")
    await transport.start()
    try:
        config = factory.config
        assert (config["meeting_id"], config["name"], config["peer_type"]) == ("abcd-efgh-ijkl", "Assistant", "agent")
        assert config["participant_id"] == "agent-7"  # VideoSDK's RoomOptions.agent_participant_id
        assert config["token"] == TOKEN and config["mic_enabled"] and not config["webcam_enabled"]
        assert config["custom_microphone_audio_track"] is transport._track
        assert transport.meeting.local_participant.display_name == "Assistant"
        # the SDK saw our track published as the local participant's audio stream
        assert [s.kind for s in transport.meeting.local_participant.streams.values()] == ["audio"]
    finally:
        await transport.close()


async def test_waits_for_the_first_participant() -> None:
    transport, factory = make(wait_for_participant=True)
    starting = asyncio.ensure_future(transport.start())
    await asyncio.wait_for(factory.joined.wait(), TIMEOUT)
    await asyncio.sleep(0.05)
    assert not starting.done()
    room(factory).peer_joins("p1", "Alice")
    await asyncio.wait_for(starting, TIMEOUT)
    assert transport.participants == {"p1": "Alice"} and transport.listening_to == "p1"
    await transport.close()


async def test_a_shutdown_request_stops_the_wait_for_a_participant() -> None:
    transport, factory = make(wait_for_participant=True)
    ctx = JobContext(transport=transport)
    connecting = asyncio.ensure_future(ctx.connect())
    await asyncio.wait_for(factory.joined.wait(), TIMEOUT)
    ctx.request_shutdown("interrupted")  # what Ctrl-C does
    await asyncio.wait_for(connecting, TIMEOUT)
    await asyncio.wait_for(ctx.shutdown(), TIMEOUT)
    assert room(factory)._closed


async def test_microphone_is_paced_every_20ms_with_silence_when_idle() -> None:
    transport, factory = make()
    await transport.start()
    try:
        fake = room(factory)
        await asyncio.wait_for(fake.wait_sent(5), TIMEOUT)
        assert all(not np.any(f.to_ndarray()) for f in fake.sent)  # idle: silence
        first = len(fake.sent)
        for i in range(0, 24000, 960):  # 0.5 s of tone, 20 ms frames
            await transport.play(AudioFrame(tone(0.5, 48000).data[i:i + 960], 48000))
        await asyncio.wait_for(transport.wait_for_playout(), TIMEOUT)
        assert transport.played == pytest.approx(0.5, abs=1 / 48000)
        await asyncio.wait_for(fake.wait_sent(first + 30), TIMEOUT)
        frames = fake.sent
        assert {(f.samples, f.sample_rate, f.format.name, f.layout.name) for f in frames} == {(960, 48000, "s16", "mono")}
        assert [f.pts for f in frames[:first + 30]] == [960 * i for i in range(first + 30)]
        loud = [i for i, f in enumerate(frames) if np.any(f.to_ndarray())]
        assert len(loud) == 25 and loud == list(range(loud[0], loud[0] + 25))
        assert not np.any(frames[loud[-1] + 1].to_ndarray())  # back to silence
        span = fake.sent_at[first + 29] - fake.sent_at[first]
        assert span == pytest.approx(29 * 0.02, abs=0.03)
    finally:
        await transport.close()


async def test_clear_drops_queued_audio_and_keeps_what_was_heard() -> None:
    transport, factory = make()
    await transport.start()
    try:
        fake = room(factory)
        player = asyncio.ensure_future(transport.play(tone(2.0, 48000)))
        await asyncio.wait_for(fake.wait_sent(len(fake.sent) + 8), TIMEOUT)
        assert transport.played > 0.1
        transport.clear()
        heard = transport.played
        await asyncio.wait_for(transport.wait_for_playout(), TIMEOUT)
        player.cancel()
        await asyncio.sleep(0.1)
        assert transport.played == pytest.approx(heard, abs=0.021)
        assert not np.any(fake.sent[-1].to_ndarray())
    finally:
        await transport.close()


async def test_remote_audio_arrives_as_48k_stereo_core_frames() -> None:
    transport, factory = make(peers=(("p1", "Alice"),))
    await transport.start()
    try:
        fake = room(factory)
        fake.peer_publishes_audio("p1")
        reader = transport.audio_input()
        fake.peer_says("p1", tone(0.1, 48000))
        frames = [await asyncio.wait_for(anext(reader), TIMEOUT) for _ in range(5)]
        assert {(f.sample_rate, f.channels, f.samples_per_channel) for f in frames} == {(48000, 2, 960)}
        got = np.concatenate([f.data for f in frames])
        assert np.array_equal(got[:, 0], tone(0.1, 48000).data[:, 0])
    finally:
        await transport.close()


async def test_listens_to_the_active_speaker() -> None:
    transport, factory = make(peers=(("p1", "Alice"), ("p2", "Bob")))
    await transport.start()
    try:
        fake = room(factory)
        fake.peer_publishes_audio("p1")
        fake.peer_publishes_audio("p2")
        reader = transport.audio_input()
        fake.peer_says("p2", tone(0.02, 48000))  # Bob is not listened to yet: dropped
        fake.peer_says("p1", AudioFrame(np.full((960, 1), 7, np.int16), 48000))
        assert int((await asyncio.wait_for(anext(reader), TIMEOUT)).data[0, 0]) == 7
        fake.active_speaker("p2")
        assert transport.active_speaker == transport.listening_to == "p2"
        fake.peer_says("p2", AudioFrame(np.full((960, 1), 9, np.int16), 48000))
        assert int((await asyncio.wait_for(anext(reader), TIMEOUT)).data[0, 0]) == 9
        fake.peer_leaves("p2")
        assert transport.listening_to == "p1" and transport.participants == {"p1": "Alice"}
        fake.active_speaker("agent-peer")  # the agent itself is never "the user"
        assert transport.active_speaker is None and transport.listening_to == "p1"
    finally:
        await transport.close()


async def test_other_agents_are_not_listened_to() -> None:
    transport, factory = make()
    await transport.start()
    try:
        room(factory).peer_joins("bot", "Other agent", agent=True)
        assert transport.participants == {} and transport.listening_to is None
    finally:
        await transport.close()


async def test_ends_when_the_room_stays_empty() -> None:
    transport, factory = make(peers=(("p1", "Alice"),), session_timeout_seconds=0.05)
    await transport.start()
    room(factory).peer_leaves("p1")
    assert "empty" in await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
    await asyncio.wait_for(transport.close(), TIMEOUT)
    assert room(factory)._closed  # left the meeting


async def test_a_participant_coming_back_cancels_the_empty_room_timer() -> None:
    transport, factory = make(peers=(("p1", "Alice"),), session_timeout_seconds=0.1)
    await transport.start()
    try:
        room(factory).peer_leaves("p1")
        room(factory).peer_joins("p2", "Bob")
        await asyncio.sleep(0.2)
        assert not transport._ended_future().done()
    finally:
        await transport.close()


async def test_nobody_joins_in_time() -> None:
    transport, _ = make(wait_for_participant=True, no_participant_timeout_seconds=0.05)
    await asyncio.wait_for(transport.start(), TIMEOUT)  # returns: the transport has ended
    assert "no participant joined" in await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
    await transport.close()


async def test_session_timeout_none_ends_when_the_last_participant_leaves() -> None:
    """VideoSDK's ``session_timeout_seconds`` counts from the last participant leaving (``None``: end then)."""
    transport, factory = make(peers=(("p1", "Alice"),), session_timeout_seconds=None,
                              no_participant_timeout_seconds=None)
    await transport.start()
    assert not transport._ended_future().done()  # no limit on the session itself
    room(factory).peer_leaves("p1")
    assert "the last participant left" in await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
    await transport.close()


async def test_removed_by_the_host_ends_cleanly() -> None:
    transport, factory = make(peers=(("p1", "Alice"),))
    await transport.start()
    reader = asyncio.ensure_future(_drain(transport))
    room(factory).removed_by_host()
    assert "left the room" in await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
    await asyncio.wait_for(transport.close(), TIMEOUT)
    await asyncio.wait_for(reader, TIMEOUT)


@pytest.mark.parametrize("how", ["socket_fails", "socket_closes_quietly"])
async def test_dropped_signalling_is_reported_and_ends(how: str, caplog: pytest.LogCaptureFixture) -> None:
    transport, factory = make(peers=(("p1", "Alice"),), signalling_check=0.02)
    await transport.start()
    reader = asyncio.ensure_future(_drain(transport))
    getattr(room(factory), how)()
    reason = await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
    assert "signalling" in reason
    assert any(r.levelno == logging.ERROR and ("signalling" in r.getMessage() or "socket" in r.getMessage())
               for r in caplog.records)
    await asyncio.wait_for(transport.close(), TIMEOUT)
    await asyncio.wait_for(reader, TIMEOUT)


async def test_join_failure_is_a_clear_error_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    transport, factory = make(fail_join=True)
    with pytest.raises(RoomError, match="could not join VideoSDK room abcd-efgh-ijkl") as info:
        await transport.start()
    assert TOKEN not in str(info.value)
    assert "refused" in caplog.text and TOKEN not in caplog.text
    assert transport._track.readyState == "ended"
    await transport.close()


async def test_a_join_without_answer_times_out() -> None:
    transport, factory = make(hang_join=True, join_timeout=0.1)
    with pytest.raises(RoomError, match="no answer within 0.1 s"):
        await transport.start()
    await asyncio.wait_for(transport.close(), TIMEOUT)
    assert room(factory)._closed  # the half-done join was released


async def test_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    transport, factory = make(peers=(("p1", "Alice"),), playground=True)
    await transport.start()
    room(factory).socket_fails()
    await transport.close()
    assert "secret=" in caplog.text and TOKEN not in caplog.text  # the SDK layer logged its URL, redacted
    assert "playground.videosdk.live" in caplog.text
    assert f"token={TOKEN}&meetingId=abcd-efgh-ijkl" in capsys.readouterr().out  # printed because asked


async def test_no_playground_link_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    transport, _ = make()
    await transport.start()
    await transport.close()
    assert "playground" not in capsys.readouterr().out


async def _drain(transport: VideoSDKTransport) -> None:
    async for _ in transport.audio_input():
        pass


class TestVideoSDKTransportContract(TransportContract):
    async def create_transport(self) -> VideoSDKTransport:
        transport, factory = make(peers=(("user", "User"),))
        await transport.start()
        room(factory).peer_publishes_audio("user")
        transport.fake = room(factory)  # type: ignore[attr-defined]
        return transport

    async def send_user_audio(self, transport: Any, audio: AudioFrame) -> None:
        transport.fake.peer_says("user", audio)
