"""OpenAIRealtime's liveness where the Realtime protocol has its own say (server VAD turns, session.update).

The faults every link shares (stalls, a slow-loris, refusals, bounded close, outage audio, masking, the size
cap) are the core contract's, in ``test_realtime_link.py``. On core's virtual clock (real sockets on
loopback, virtual time).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from agentsession import (
    AgentAudio,
    ChatContext,
    ModelOptions,
    Reconnected,
    Reconnecting,
    ResponseDone,
    UserSpeechStarted,
    testing,
)
from agentsession.testing import EventRecorder, find_pcm, is_event, push_in_time, virtual_clock, voice_pcm
from agentsession_openai import OpenAIRealtime
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

RATE = 24000
TICK = 0.5  # the watchdog's period with the default bounds


async def started(server: FakeRealtimeServer, **kwargs: Any) -> tuple[OpenAIRealtime, EventRecorder]:
    model = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url, input_transcription=None, **kwargs)
    recorder = EventRecorder(model)
    await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
    return model, recorder


def quiet_noise(seconds: float, seed: int = 0) -> np.ndarray:
    return testing.quiet_noise(seconds, RATE, seed)


def voice(seconds: float) -> np.ndarray:
    return voice_pcm(seconds, RATE)


async def speak(model: OpenAIRealtime, pcm: np.ndarray) -> None:
    await push_in_time(model, pcm, RATE)


@virtual_clock
async def test_update_agent_unanswered_is_a_stall() -> None:
    async with FakeRealtimeServer() as server:
        model, rec = await started(server, response_timeout=3.0)
        try:
            server.stall()
            await model.update_agent("You are a pirate.", [])
            _, reconnecting = await rec.until(is_event(Reconnecting))
            assert reconnecting.reason == "stalled: no answer to session.update in 3 s"
            await rec.until(is_event(Reconnected))
            assert server.current.session["instructions"] == "You are a pirate."  # the reconnect sent it
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
            _, back = await rec.until(is_event(Reconnected))
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
            await rec.until(is_event(UserSpeechStarted))
            server.stall()  # mid-sentence
            await speaking
            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            speaking = asyncio.ensure_future(speak(model, np.zeros(RATE * 30, np.int16)))
            at, reconnecting = await rec.until(is_event(Reconnecting))
            assert model.stall_timeout <= at - stopped_at <= model.stall_timeout + TICK + 0.2
            assert "no end of the user's turn" in reconnecting.reason
            await rec.until(is_event(Reconnected))
            await rec.until(is_event(ResponseDone))  # the new connection got the whole turn and answered it
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
            await rec.until(is_event(AgentAudio))
            said = np.concatenate([quiet_noise(0.5, seed=6), voice(1.5), np.zeros(5 * RATE, np.int16)])
            speaking = asyncio.ensure_future(speak(model, said))
            await rec.until(is_event(UserSpeechStarted))  # while the answer's deltas keep coming
            await asyncio.sleep(0.5)
            await server.drop()
            _, back = await rec.until(is_event(Reconnected))
            assert back.audio_lost == 0.0
            await speaking
            await server.wait_for("input_audio_buffer.append", count=len(server.connections[0].of_type(
                "input_audio_buffer.append")) + 10)
            heard = np.frombuffer(bytes(server.current.audio), np.int16)
            onset = find_pcm(heard, voice(1.5)[:3])
            assert np.array_equal(heard[onset : onset + int(1.5 * RATE)], voice(1.5))  # the whole turn
            assert onset <= int(0.4 * RATE)  # with a little lead-in, not all that came before
        finally:
            await model.close()

