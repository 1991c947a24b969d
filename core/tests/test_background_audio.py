"""Background and thinking audio, mixed once in core on the output path (virtual clock, FakeTransport)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from agentsession import AgentSession, AgentState, BackgroundAudioHandlerConfig, RealTimePipeline
from agentsession._background_audio import DUCKED
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeTransport, virtual_clock, wait_for_state
from core_helpers import QuietAgent, settle

RATE = 24000


def write_level_wav(path: Path, level: int, seconds: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.full(int(16000 * seconds), level, dtype="<i2").tobytes())


async def started(model: FakeRealtimeModel, agent: QuietAgent | None = None) -> tuple[AgentSession, FakeTransport]:
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(agent or QuietAgent(), RealTimePipeline(model))
    await session.start(transport=transport)
    return session, transport


@virtual_clock
async def test_a_session_without_tracks_has_no_mixer() -> None:
    session, transport = await started(FakeRealtimeModel())
    await session.say("Hi.", wait_for_playback=True)
    assert session._answers.playout is not None and session._answers.playout.mixer is None
    await session.close()


@virtual_clock
async def test_background_plays_alone_then_ducked_under_the_voice(tmp_path: Path) -> None:
    write_level_wav(tmp_path / "bed.wav", 1000, 0.5)
    model = FakeRealtimeModel([FakeResponse("Hello there.", audio=1.0)])
    session, transport = await started(model)
    await session.play_background_audio(BackgroundAudioHandlerConfig(str(tmp_path / "bed.wav"), volume=0.5,
                                                                     looping=True))
    await settle(1.0)
    assert session.agent_state is AgentState.IDLE  # the background does not make the agent speak
    quiet = transport.output.copy()
    assert quiet.shape[0] >= 0.9 * RATE and np.median(np.abs(quiet[RATE // 10:])) == pytest.approx(500, abs=25)
    handle = await session.reply(wait_for_playback=False)
    await handle
    voiced = transport.output[quiet.shape[0]:].astype(np.float64)
    # under the voice the bed is there, ducked: the mix differs from the voice alone by ~500 * DUCKED
    model2 = FakeRealtimeModel([FakeResponse("Hello there.", audio=1.0)])
    session2, transport2 = await started(model2)
    await (await session2.reply(wait_for_playback=False))
    alone = transport2.output.astype(np.float64)
    n = min(alone.shape[0], voiced.shape[0]) - 480
    start = int(np.argmax(np.abs(voiced[:, 0]) > 1500))  # where the voice starts in the mixed output
    diff = voiced[start:start + n // 2, 0] - alone[int(np.argmax(np.abs(alone[:, 0]) > 1500)):][: n // 2, 0]
    assert np.median(diff) == pytest.approx(500 * DUCKED, abs=30)
    await session.stop_background_audio()
    await session.close()
    await session2.close()


@virtual_clock
async def test_thinking_audio_plays_while_thinking_and_stops_when_the_answer_starts() -> None:
    agent = QuietAgent()
    agent.set_thinking_audio(volume=1.0)
    model = FakeRealtimeModel([FakeResponse("Let me see.", audio=0.5, delay=2.0)])
    session, transport = await started(model, agent)
    handle = await session.reply(wait_for_playback=False)
    await wait_for_state(session, AgentState.THINKING)
    await settle(1.5)
    thinking = transport.output.copy()
    assert np.max(np.abs(thinking)) > 1000, "no thinking sound while thinking"
    await handle
    played = transport.output.shape[0]
    mixer = session._answers.playout.mixer if session._answers.playout else None
    assert mixer is not None and mixer.thinking is None  # the answer started: the thinking sound stopped
    await settle(1.0)
    assert transport.output.shape[0] == played  # idle again: nothing more is played
    await session.close()
