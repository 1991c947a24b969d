"""OpenAIRealtime's link liveness against the fake server made to fail: drops, stalls, a slow-loris, refusals.

These run on core's virtual clock (real sockets on loopback, virtual time), so the default bounds (10 s for
an answer, 15 s of silence, 2 s to close) are checked as they are, in milliseconds of real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection

from agentsession import (
    AgentAudio,
    AudioFrame,
    ChatContext,
    Error,
    ModelOptions,
    PipelineEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    UserSpeechStarted,
)
from agentsession.testing import virtual_clock
from agentsession_openai import OpenAIRealtime
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

RATE = 24000
TICK = 0.5  # the watchdog's period with the default bounds


class Recorder:
    """Every event of a model with the loop time it came at."""

    def __init__(self, model: OpenAIRealtime) -> None:
        self.events: list[tuple[float, PipelineEvent]] = []
        self._changed = asyncio.Event()
        model.channel.attach(self._sink)

    def _sink(self, event: PipelineEvent | None) -> None:
        if event is not None:
            self.events.append((asyncio.get_running_loop().time(), event))
            self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def until(self, accept: Callable[[PipelineEvent], bool], timeout: float = 120.0) -> tuple[float, Any]:
        """The first event ``accept`` takes (and its time), waiting up to ``timeout`` seconds of virtual time."""

        async def find() -> tuple[float, Any]:
            while True:
                found = next(((t, e) for t, e in self.events if accept(e)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)


def is_(kind: type[Any], **fields: Any) -> Callable[[PipelineEvent], bool]:
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())


async def started(server: FakeRealtimeServer, **kwargs: Any) -> tuple[OpenAIRealtime, Recorder]:
    model = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, input_transcription=None, **kwargs)
    recorder = Recorder(model)
    await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
    return model, recorder


def frames(pcm: np.ndarray) -> list[AudioFrame]:
    """20 ms frames of mono int16 ``pcm``."""
    n = RATE // 50
    return [AudioFrame(pcm[i : i + n].reshape(-1, 1), RATE) for i in range(0, len(pcm), n)]


def quiet_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Audio below any VAD's threshold, but unique sample by sample (so order and loss can be checked)."""
    return np.random.default_rng(seed).integers(-200, 200, int(seconds * RATE)).astype(np.int16)


def voice(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def find(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Where ``needle`` first occurs in ``haystack``."""
    windows = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    return int(np.flatnonzero((windows == needle).all(axis=1))[0])


async def speak(model: OpenAIRealtime, pcm: np.ndarray) -> None:
    """Push ``pcm`` in real (virtual) time, 20 ms at a time."""
    for frame in frames(pcm):
        model.push_audio(frame)
        await asyncio.sleep(0.02)


async def wait_connections(server: FakeRealtimeServer, n: int) -> None:
    while len(server.connections) < n:
        server.connected.clear()
        await server.connected.wait()


async def tasks_left() -> list[asyncio.Task[Any]]:
    """The client's tasks still there once those close() cancelled (websockets' keepalive, say) have ended."""
    cancelled = [task for task in client_tasks() if task.cancelling()]
    if cancelled:
        await asyncio.wait(cancelled, timeout=0.01)
    return client_tasks()


def client_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks of the model, its SDK connection or its websocket (not the fake server's)."""
    out = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, OpenAIRealtime | ClientConnection) or task.get_name().startswith("openai-realtime"):
            out.append(task)
    return out


# ---------------------------------------------------------------------- stalls


@virtual_clock
async def test_a_server_that_stalls_during_a_response_is_left_after_stall_timeout() -> None:
    async with FakeRealtimeServer() as server:
        server.reply_audio, server.chunk_delay = 60.0, 0.1  # a response that streams for a minute
        model, rec = await started(server)
        try:
            first = server.current
            await model.say("A long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            loop = asyncio.get_running_loop()
            server.stall()
            stalled_at = loop.time()
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - stalled_at <= model.stall_timeout + TICK + 0.2
            assert reconnecting.attempt == 1 and reconnecting.reason.startswith("stalled: no server event")
            assert "during a response" in reconnecting.reason
            cut = [e for _, e in rec.events if isinstance(e, Error | ResponseDone)]
            assert cut == [Error("the OpenAI Realtime connection dropped during a response; it was cut short",
                                 recoverable=True, code="connection_lost"),
                           ResponseDone(interrupted=True, response_id="a")]
            back_at, back = await rec.until(is_(Reconnected))
            assert back.downtime == pytest.approx(back_at - at, abs=0.01) and back.audio_lost == 0.0
            assert server.current is not first and model.reconnects == 1
            server.reply_audio, server.chunk_delay = 0.3, 0.002
            await model.say("Then this.", response_id="b")
            await rec.until(is_(ResponseDone, response_id="b"))
        finally:
            await model.close()


@virtual_clock
async def test_a_request_with_no_answer_within_response_timeout_is_a_stall_and_is_asked_again() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server)
        try:
            loop = asyncio.get_running_loop()
            server.stall()
            asked_at = loop.time()
            await model.say("Hello?", response_id="a")
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.response_timeout <= at - asked_at <= model.response_timeout + TICK + 0.2
            assert reconnecting.reason == "stalled: no answer to response.create in 10 s"
            assert not rec.of(ResponseDone)  # never begun: nothing to cut, it is asked again
            done_at, done = await rec.until(is_(ResponseDone, response_id="a"))
            assert not done.interrupted
            creates = [c.response.metadata for c in server.current.of_type("response.create")]
            assert creates == [{"agentsession_response_id": "a"}]
        finally:
            await model.close()


@virtual_clock
async def test_update_agent_unanswered_is_a_stall() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server, response_timeout=3.0)
        try:
            server.stall()
            await model.update_agent("You are a pirate.", [])
            _, reconnecting = await rec.until(is_(Reconnecting))
            assert reconnecting.reason == "stalled: no answer to session.update in 3 s"
            await rec.until(is_(Reconnected))
            assert server.current.session["instructions"] == "You are a pirate."  # the reconnect sent it
        finally:
            await model.close()


@virtual_clock
async def test_voice_with_no_server_event_is_a_stall_and_the_speech_is_heard_after_the_reconnect() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server, stall_timeout=5.0)  # within outage_buffer: all of it is kept
        try:
            loop = asyncio.get_running_loop()
            first = server.stall()
            spoke_at = loop.time()
            speaking = asyncio.ensure_future(speak(model, np.concatenate([voice(1.0), np.zeros(RATE * 30, np.int16)])))
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - spoke_at <= model.stall_timeout + TICK + 0.2
            assert "while the user spoke" in reconnecting.reason
            _, back = await rec.until(is_(Reconnected))
            assert back.audio_lost == 0.0
            await rec.until(is_(UserSpeechStarted))  # the new connection heard the words the stalled one swallowed
            await rec.until(is_(ResponseDone))
            assert server.current is not first
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            assert np.array_equal(heard[: RATE], voice(1.0))  # from the first word, in order
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_what_a_stall_swallowed_beyond_outage_buffer_is_reported_lost() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server)  # stall_timeout 15 s, outage_buffer 10 s
        try:
            loop = asyncio.get_running_loop()
            server.stall()
            said = np.concatenate([voice(1.0), quiet_noise(30.0, seed=4)])
            spoke_at = loop.time()
            speaking = asyncio.ensure_future(speak(model, said))
            _, back = await rec.until(is_(Reconnected))
            down = loop.time() - spoke_at  # all of it went into the stalled link or waited for the new one
            assert back.audio_lost == pytest.approx(down - model.outage_buffer, abs=0.1)
            await server.wait_for("input_audio_buffer.append", count=100)
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            start = int(round(back.audio_lost * 10)) * RATE // 10  # the last 10 s, from a 100 ms chunk's start
            assert np.array_equal(heard[: 10 * RATE], said[start : start + 10 * RATE])
            assert model.audio_lost == back.audio_lost
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_a_turn_the_server_saw_start_and_never_ended_is_a_stall() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server, stall_timeout=5.0)
        try:
            speaking = asyncio.ensure_future(speak(model, voice(3.0)))
            await rec.until(is_(UserSpeechStarted))
            server.stall()  # mid-sentence
            await speaking
            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            speaking = asyncio.ensure_future(speak(model, np.zeros(RATE * 30, np.int16)))
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - stopped_at <= model.stall_timeout + TICK + 0.2
            assert "no end of the user's turn" in reconnecting.reason
            await rec.until(is_(Reconnected))
            await rec.until(is_(ResponseDone))  # the new connection got the whole turn and answered it
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            assert np.array_equal(heard[: 3 * RATE], voice(3.0))
            speaking.cancel()
        finally:
            await model.close()


@virtual_clock
async def test_a_drop_while_the_user_speaks_over_an_answer_sends_their_whole_turn_to_the_new_connection() -> None:
    async with FakeRealtimeServer() as server:
        server.reply_audio, server.chunk_delay = 60.0, 0.1
        model, rec = await started(server, turn_detection={"create_response": False})
        try:
            await model.say("A long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            said = np.concatenate([quiet_noise(0.5, seed=6), voice(1.5), np.zeros(5 * RATE, np.int16)])
            speaking = asyncio.ensure_future(speak(model, said))
            await rec.until(is_(UserSpeechStarted))  # while the answer's deltas keep coming
            await asyncio.sleep(0.5)
            await server.drop()
            _, back = await rec.until(is_(Reconnected))
            assert back.audio_lost == 0.0
            await speaking
            await server.wait_for("input_audio_buffer.append", count=len(server.connections[0].of_type(
                "input_audio_buffer.append")) + 10)
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            onset = find(heard, voice(1.5)[:3])
            assert np.array_equal(heard[onset : onset + int(1.5 * RATE)], voice(1.5))  # the whole turn
            assert onset <= int(0.4 * RATE)  # with a little lead-in, not all that came before
        finally:
            await model.close()


@virtual_clock
async def test_a_quiet_room_is_not_a_stall() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server)
        try:
            await speak(model, quiet_noise(60.0))  # a minute in which the server has nothing to say
            assert not rec.of(Reconnecting) and len(server.connections) == 1
            assert len(server.current.audio) == 60 * RATE * 2
        finally:
            await model.close()


@virtual_clock
async def test_a_slow_loris_server_is_left_after_stall_timeout() -> None:
    async with FakeRealtimeServer() as server:
        server.reply_audio, server.chunk_delay = 60.0, 0.1
        model, rec = await started(server)
        try:
            await model.say("A long story.", response_id="a")
            await rec.until(is_(AgentAudio))
            loop = asyncio.get_running_loop()
            server.trickle()  # a byte every 0.5 s: no message completes
            trickled_at = loop.time()
            at, reconnecting = await rec.until(is_(Reconnecting))
            assert model.stall_timeout <= at - trickled_at <= model.stall_timeout + TICK + 0.2
            assert rec.of(ResponseDone) == [ResponseDone(interrupted=True, response_id="a")]
            await rec.until(is_(Reconnected))
        finally:
            await model.close()


# ---------------------------------------------------------------------- close


@pytest.mark.parametrize("fault", ["stall", "trickle"])
@virtual_clock
async def test_close_is_bounded_whatever_the_socket_does(fault: str) -> None:
    async with FakeRealtimeServer() as server:
        server.reply_audio, server.chunk_delay = 60.0, 0.1
        model, rec = await started(server)
        await model.say("A long story.", response_id="a")
        await rec.until(is_(AgentAudio))
        getattr(server, fault)()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await model.close()
        assert loop.time() - began <= model.close_timeout + 0.1  # websockets alone would wait 10 s
        assert await tasks_left() == []


@virtual_clock
async def test_close_during_a_reconnect_is_bounded() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server)
        server.stall()
        await model.say("Hello?", response_id="a")
        server.stall_new = True  # the next connection is accepted, then stalls before its session is set up
        await rec.until(is_(Reconnecting))
        await asyncio.wait_for(wait_connections(server, 2), 5.0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await model.close()
        assert loop.time() - began <= model.close_timeout + 0.1
        assert await tasks_left() == []


# ---------------------------------------------------------------------- audio during an outage


@pytest.mark.parametrize(("outage_buffer", "lost"), [(10.0, 2.0), (20.0, 0.0)])
@virtual_clock
async def test_audio_during_an_outage_is_sent_after_the_reconnect_and_what_did_not_fit_is_reported(
    outage_buffer: float, lost: float
) -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server, reconnect_delay=1.0, outage_buffer=outage_buffer)
        try:
            loop = asyncio.get_running_loop()
            first = server.current
            server.refuse = 3  # three attempts refused (503), the fourth gets in: 1 + 2 + 4 + 8 = 15 s down
            await server.drop()
            await rec.until(is_(Reconnecting, attempt=1))
            dropped_at = loop.time()
            said = quiet_noise(12.0, seed=1)
            await speak(model, said)  # all of it while the link is down
            assert not rec.of(Reconnected)
            at, back = await rec.until(is_(Reconnected))
            assert [e.attempt for e in rec.of(Reconnecting)] == [1, 2, 3, 4]
            assert [e.reason for e in rec.of(Reconnecting)][1:] == [
                f"attempt {n} failed: the OpenAI Realtime API refused the connection (HTTP 503)" for n in (1, 2, 3)]
            assert back.downtime == pytest.approx(15.0, abs=0.3) and at - dropped_at == pytest.approx(15.0, abs=0.3)
            assert back.audio_lost == pytest.approx(lost, abs=1e-6) and model.audio_lost == back.audio_lost
            second = server.current
            assert second is not first
            kept = said[int(lost * RATE) :]
            await server.wait_for("input_audio_buffer.append", count=len(first.of_type("input_audio_buffer.append"))
                                  + len(kept) // (RATE // 10))
            assert np.array_equal(np.frombuffer(bytes(second.audio), np.int16), kept)  # in order, nothing twice
        finally:
            await model.close()


@virtual_clock
async def test_audio_sent_into_a_stalled_link_is_sent_again_after_the_reconnect() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server)
        try:
            await speak(model, quiet_noise(1.0, seed=2))
            await server.wait_for("input_audio_buffer.append", count=10)
            first = server.current
            server.stall()
            said = quiet_noise(3.0, seed=3)
            await speak(model, said)  # sent into the stalled socket: never read by the server
            await model.say("Hello?", response_id="a")
            await rec.until(is_(Reconnected))
            await rec.until(is_(ResponseDone, response_id="a"))
            await server.wait_for("input_audio_buffer.append", count=10 + 40)
            # what was sent since the server last answered goes again: here its last event (session.updated) came
            # before any of it, so the new connection gets all of it, in order
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            assert np.array_equal(heard, np.concatenate([quiet_noise(1.0, seed=2), said]))
            assert server.current is not first and model.audio_lost == 0.0
        finally:
            await model.close()
