"""``VideoSDKTransport``: the agent as a participant of a VideoSDK meeting."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from agentsession import AgentSessionError, AudioFrame, BufferedTransport, JobContext, protect_secret

from ._config import RoomConfig
from ._convert import from_av

if TYPE_CHECKING:
    from agentsession.plugin import SessionView

logger = logging.getLogger("agentsession.videosdk")

MeetingFactory = Callable[..., Any]

#: SDK error messages after which the meeting is unusable (signalling gone, or the agent can't be heard)
FATAL_ERRORS = ("socket", "timed out", "join", "enable mic", "producing audio")
LEFT_REASON = "left the room (the room closed or the agent was removed)"
#: how long ``close`` waits for the SDK to confirm it left
LEAVE_TIMEOUT = 5.0


class RoomError(AgentSessionError):
    """The meeting could not be joined."""


class VideoSDKTransport(BufferedTransport):
    """Joins ``config.room_id`` as an agent participant named ``config.name``.

    Output: a microphone track the SDK's sender pulls every 20 ms from a ``PlayoutBuffer`` (``sample_rate``
    48 kHz mono: the Opus encoder only upmixes it). Input: the audio of one remote participant at a time
    (the first to join, then whoever the SFU reports as the active speaker), as 48 kHz stereo frames that
    the session converts. Ends (``wait_ended``) when the room closes, the agent is removed, the room stays
    empty, the session times out or signalling fails.
    """

    def __init__(self, config: RoomConfig, *, meeting_factory: MeetingFactory | None = None,
                 sample_rate: int = 48000, input_buffer: float = 1.0, join_timeout: float = 30.0,
                 signalling_check: float = 1.0) -> None:
        self.config = config
        super().__init__(sample_rate, 1)
        self.join_timeout = join_timeout
        self.signalling_check = signalling_check
        self._factory = meeting_factory
        self._input: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize=max(1, int(input_buffer * 50)))
        self._dropped = 0
        self.meeting: Any = None
        self._track: Any = None
        self._sdk: Any = None
        self._joined: asyncio.Event = asyncio.Event()
        self._left: asyncio.Event = asyncio.Event()
        self._first_participant: asyncio.Event = asyncio.Event()
        self._participants_changed = asyncio.Event()
        self._join_error: str | None = None
        #: remote human participants present: id -> display name, in join order
        self.participants: dict[str, str] = {}
        #: the participant whose audio goes to the session
        self.listening_to: str | None = None
        #: the participant the SFU last reported as speaking
        self.active_speaker: str | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    # ------------------------------------------------------------------ Transport

    async def start(self) -> None:
        """Join the meeting and publish the microphone; with ``wait_for_participant``, wait for someone."""
        if self.meeting is not None:
            return
        self._sdk = sdk = _import_sdk()
        protect_secret(self.config.token)  # the SDK and websockets log URLs and headers with the token
        factory = self._factory or sdk.create_meeting
        self._track = sdk.MicrophoneTrack(self.playout)
        config: dict[str, Any] = {
            "meeting_id": self.config.room_id,
            "token": self.config.token,
            "name": self.config.name,
            "peer_type": "agent",
            "mic_enabled": True,
            "webcam_enabled": False,
            "custom_microphone_audio_track": self._track,
            "auto_consume": True,
            "loop": asyncio.get_running_loop(),
            "sdk_metadata": {"sdk": "agentsession", "sdk_version": _version()},
        }
        if self.config.signaling_base_url:
            config["signaling_base_url"] = self.config.signaling_base_url
        if self.config.participant_id:
            config["participant_id"] = self.config.participant_id
        self.meeting = factory(**config)
        self.meeting.add_event_listener(sdk.MeetingEvents({
            "joined": self._on_joined,
            "left": self._on_left,
            "state": self._on_state,
            "error": self._on_error,
            "participant_joined": self._on_participant_joined,
            "participant_left": self._on_participant_left,
            "speaker": self._on_speaker,
        }))
        logger.info("joining VideoSDK room %s as %r", self.config.room_id, self.config.name)
        try:
            await asyncio.wait_for(self.meeting.async_join(), self.join_timeout)
        except TimeoutError:
            self._join_error = f"no answer within {self.join_timeout:g} s"
            self.meeting.leave()  # release what the half-done join opened (the SDK leaves in a task of its own)
            await self._until_left()
        if not self._joined.is_set():
            reason = self._join_error or "the SDK gave no reason"
            await self._teardown()
            raise RoomError(f"could not join VideoSDK room {self.config.room_id}: {reason} "
                            "(check the room id, the token and the network)")
        if self.config.playground:
            print(f"VideoSDK playground for this room: {self.config.playground_url()}", flush=True)
            logger.info("playground: %s", self.config.playground_url(masked=True))
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_signalling(), name="videosdk-watchdog")
        if not self.participants:
            self._arm_empty()
            if self.config.wait_for_participant:
                logger.info("waiting for a participant to join room %s", self.config.room_id)
                await self._until_participant_or_end()

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        while True:
            if self._closed and self._input.empty():
                return
            frame = await self._input.get()
            if frame is None:
                self._input.put_nowait(None)  # for any other reader
                return
            yield frame

    def bind(self, session: SessionView) -> None:
        session.on("agent_state_changed", self._send_agent_state)
        session.on("agent_transcript", lambda data: self._send_transcript(data, self._local_id()))
        session.on("user_transcript", lambda data: self._send_transcript(data, self.listening_to))

    def end(self, reason: str) -> None:
        if self._ended is None or not self._ended.done():
            log = logger.debug if reason == "closed" else logger.info
            log("VideoSDK room %s: session ends (%s)", self.config.room_id, reason)
        super().end(reason)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.end("closed")
        await self._teardown()
        await super().close()

    # ------------------------------------------------------------------ meeting events

    def _on_joined(self, data: Any) -> None:
        logger.info("joined VideoSDK room %s", self.config.room_id)
        self._joined.set()

    def _on_left(self, data: Any) -> None:
        self._left.set()
        if self._joined.is_set():
            self.end(LEFT_REASON)

    def _on_state(self, data: Any) -> None:
        state = data.get("state") if isinstance(data, dict) else None
        logger.debug("VideoSDK meeting state: %s", state)
        if state == "FAILED":
            self._join_error = self._join_error or "connection failed"
        elif state == "CLOSED" and self._joined.is_set():
            self._left.set()
            self.end(LEFT_REASON)

    def _on_error(self, data: Any) -> None:
        message = str(data.get("message", data) if isinstance(data, dict) else data)
        fatal = any(word in message.lower() for word in FATAL_ERRORS)
        if not self._joined.is_set():
            self._join_error = message
            logger.error("VideoSDK error while joining: %s", message)
        elif fatal and not self._closing:
            logger.error("VideoSDK error: %s; leaving the room", message)
            self.end(f"signalling error: {message}")
        else:
            logger.warning("VideoSDK error: %s", message)

    async def wait_for_participant(self, participant_id: str | None = None) -> str:
        """Wait until ``participant_id`` (or anyone, if ``None``) is in the meeting; return their id."""
        while True:
            if participant_id is None and self.participants:
                return next(iter(self.participants))
            if participant_id is not None and participant_id in self.participants:
                return participant_id
            self._participants_changed.clear()
            await self._participants_changed.wait()

    def _on_participant_joined(self, participant: Any) -> None:
        pid, name = participant.id, participant.display_name
        self.participants[pid] = name
        self._participants_changed.set()
        logger.info("participant joined: %s (%s)", name, pid)
        participant.add_event_listener(self._sdk.ParticipantEvents(participant, self._on_stream, self._on_stream_gone))
        for stream in list(participant.streams.values()):
            self._on_stream(participant, stream)
        if self.listening_to is None:
            self.listening_to = pid
        self._cancel("empty")
        self._first_participant.set()

    def _on_participant_left(self, participant: Any) -> None:
        pid = participant.id
        name = self.participants.pop(pid, None)
        if name is None:
            return
        logger.info("participant left: %s (%s)", name, pid)
        reader = self._readers.pop(pid, None)
        if reader is not None:
            reader.cancel()
        if self.active_speaker == pid:
            self.active_speaker = None
        if self.listening_to == pid:
            self.listening_to = next(iter(self.participants), None)
            if self.listening_to is not None:
                logger.info("now listening to %s", self.participants[self.listening_to])
        if not self.participants:
            self._arm_empty()

    def _on_speaker(self, speaker_id: Any) -> None:
        self.active_speaker = speaker_id if speaker_id in self.participants else None
        if self.active_speaker is not None and self.active_speaker != self.listening_to:
            self.listening_to = self.active_speaker
            logger.info("now listening to %s (active speaker)", self.participants[self.active_speaker])

    def _on_stream(self, participant: Any, stream: Any) -> None:
        if stream.kind != "audio" or participant.id not in self.participants:
            return
        old = self._readers.pop(participant.id, None)
        if old is not None:
            old.cancel()
        self._readers[participant.id] = asyncio.get_running_loop().create_task(
            self._read(participant.id, stream), name=f"videosdk-audio-{participant.id}")

    def _on_stream_gone(self, participant: Any, stream: Any) -> None:
        if stream.kind == "audio":
            reader = self._readers.pop(participant.id, None)
            if reader is not None:
                reader.cancel()

    async def _read(self, pid: str, stream: Any) -> None:
        """Forward one participant's audio while they are the one listened to."""
        bad_format = False
        while True:
            try:
                raw = await stream.track.recv()
            except self._sdk.MediaStreamError:
                logger.debug("audio of %s ended", pid)
                return
            if pid != self.listening_to:
                continue
            try:
                frame = from_av(raw)
            except ValueError as exc:
                if not bad_format:
                    logger.warning("dropping audio of %s: %s", pid, exc)
                    bad_format = True
                continue
            self._push(frame)

    def _push(self, frame: AudioFrame) -> None:
        if self._input.full():
            self._input.get_nowait()
            self._dropped += 1
            if self._dropped in (1, 100, 1000) or self._dropped % 10000 == 0:
                logger.warning("session is not reading the room's audio: %d frames dropped", self._dropped)
        self._input.put_nowait(frame)

    # ------------------------------------------------------------------ timers and watchdog

    def _arm_empty(self) -> None:
        """With ``auto_end_session`` (VideoSDK's rules): end when nobody joined within the no-participant
        timeout, or when the room stayed empty for the session timeout after the last participant left."""
        if not self.config.auto_end_session:
            return
        if not self._first_participant.is_set():
            timeout = self.config.no_participant_timeout
            if timeout is not None:
                self._arm("empty", timeout, f"no participant joined within {timeout:g} s")
            return
        timeout = self.config.session_timeout
        if timeout is None:
            self.user_gone = True  # nobody left to hear a goodbye
            self.end("the last participant left")
        else:
            self._arm("empty", timeout, f"the room stayed empty for {timeout:g} s")

    def _arm(self, name: str, delay: float, reason: str) -> None:
        self._cancel(name)

        async def fire() -> None:
            await asyncio.sleep(delay)
            self.end(reason)

        self._timers[name] = asyncio.get_running_loop().create_task(fire(), name=f"videosdk-{name}-timer")

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    async def _until_participant_or_end(self) -> None:
        waits = [asyncio.ensure_future(self._first_participant.wait()), asyncio.ensure_future(self.wait_ended())]
        job = JobContext.current()
        if job is not None:  # Ctrl-C while waiting
            waits.append(asyncio.ensure_future(job.wait_for_shutdown()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _watch_signalling(self) -> None:
        """Catch a signalling socket closed without an SDK event (a clean close from the server side)."""
        while True:
            await asyncio.sleep(self.signalling_check)
            if _signalling_closed(self.meeting):
                logger.error("VideoSDK signalling connection closed; leaving the room")
                self.end("signalling connection lost")
                return

    # ------------------------------------------------------------------ room side of the session

    def _local_id(self) -> str | None:
        local = getattr(self.meeting, "local_participant", None)
        return getattr(local, "id", None)

    def _send_agent_state(self, data: dict[str, Any]) -> None:
        local = getattr(self.meeting, "local_participant", None)
        state = getattr(data.get("state"), "value", data.get("state"))
        if self._closing or local is None or not hasattr(local, "send_state_changed"):
            return
        try:
            local.send_state_changed(self._sdk.AgentState(state))
        except ValueError:  # starting / closing: no room counterpart
            return

    def _send_transcript(self, data: dict[str, Any], peer_id: str | None) -> None:
        local = getattr(self.meeting, "local_participant", None)
        if self._closing or not data.get("final") or peer_id is None or local is None:
            return
        if not hasattr(local, "send_transcript"):
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        local.send_transcript(data["text"], peer_id, stamp, type="final")

    # ------------------------------------------------------------------ teardown

    async def _teardown(self) -> None:
        for timer in list(self._timers):
            self._cancel(timer)
        tasks = [t for t in [self._watchdog, *self._readers.values()] if t is not None]
        self._watchdog, self._readers = None, {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.meeting is not None and self._joined.is_set() and not self._left.is_set():
            self.meeting.leave()
            await self._until_left()
        if self._track is not None:
            self._track.stop()
        self.playout.clear()
        self._closed = True
        if self._input.full():
            self._input.get_nowait()
        self._input.put_nowait(None)

    async def _until_left(self) -> None:
        try:
            await asyncio.wait_for(self._left.wait(), LEAVE_TIMEOUT)
        except TimeoutError:
            logger.warning("VideoSDK did not confirm leaving room %s within %g s", self.config.room_id,
                           LEAVE_TIMEOUT)

    def __repr__(self) -> str:
        return f"<VideoSDKTransport room={self.config.room_id!r} name={self.config.name!r}>"


def _import_sdk() -> Any:
    try:
        from . import _sdk
    except ImportError as exc:
        raise RoomError(
            f"the VideoSDK SDK is not installed ({exc}): pip install 'agentsession-videosdk[sdk]' "
            "(in an environment of its own if other plugins need av>=17 or websockets>15: see the README)"
        ) from exc
    return _sdk


def _version() -> str:
    try:
        return metadata.version("agentsession-videosdk")
    except metadata.PackageNotFoundError:
        return "0"


def _signalling_closed(meeting: Any) -> bool:
    """Whether the SDK's signalling websocket is closed (private SDK state, read defensively)."""
    client = getattr(meeting, "_Meeting__room_client", None)
    socket = getattr(client, "_RoomClient__websocket", None)
    state = getattr(socket, "state", None)
    return getattr(state, "name", None) == "CLOSED" and not getattr(client, "_closed", False)

