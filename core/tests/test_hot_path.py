"""The session's steady audio path costs the event loop nothing of its own: no timer and no task switch per frame.

On a VM an event-loop wake-up costs far more than the Python work of a frame (``shared/peers/calibrate_wakeup.py``:
70-180 us of CPU each here), so a timer or an extra task hop per frame would show at scale before anything else.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from agentsession import (
    Agent,
    AgentAudio,
    AgentSession,
    AudioFrame,
    RealTimePipeline,
    Transport,
)
from agentsession.testing import FakeRealtimeModel

FRAMES = 100


class EchoModel(FakeRealtimeModel):
    """Every input frame comes back at once as the agent's audio, in one endless response (a model answering)."""

    def push_audio(self, frame: AudioFrame) -> None:
        self.channel.emit(AgentAudio(frame, response_id="echo"))


class SteppedTransport(Transport):
    """The test hands it one input frame at a time; ``play`` takes each output frame at once."""

    def __init__(self) -> None:
        super().__init__()
        self.input: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self.out = 0
        self.played_one = asyncio.Event()
        self._played = 0.0

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        while True:
            yield await self.input.get()

    async def play(self, frame: AudioFrame) -> None:
        self.out += 1
        self._played += frame.duration
        self.played_one.set()

    def clear(self) -> None:
        pass

    @property
    def played(self) -> float:
        return self._played

    async def wait_for_playout(self) -> None:
        pass


def _owner(callback: Any) -> str:
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return task.get_name()
    return getattr(callback, "__qualname__", repr(callback))


async def test_a_steady_frame_schedules_no_timer_and_wakes_only_the_input_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = SteppedTransport()
    session = AgentSession(Agent(instructions="echo"), RealTimePipeline(EchoModel()))
    await session.start(transport=transport)
    frame = AudioFrame(np.ones((480, 1), np.int16), 24000)

    async def one_frame() -> None:
        transport.played_one.clear()
        transport.input.put_nowait(frame)
        await transport.played_one.wait()

    for _ in range(10):  # the answer starts, the playout parks: steady from here
        await one_frame()
    loop = asyncio.get_running_loop()
    soon: Counter[str] = Counter()
    timers: list[str] = []
    call_soon, call_at = loop.call_soon, loop.call_at

    def counting_call_soon(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        soon[_owner(callback)] += 1
        return call_soon(callback, *args, context=context)

    def counting_call_at(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        timers.append(_owner(callback))
        return call_at(when, callback, *args, context=context)

    monkeypatch.setattr(loop, "call_soon", counting_call_soon)
    monkeypatch.setattr(loop, "call_at", counting_call_at)
    me = asyncio.current_task()
    assert me is not None
    out0 = transport.out
    for _ in range(FRAMES):
        await one_frame()
    monkeypatch.undo()
    assert transport.out - out0 == FRAMES
    assert timers == []
    # per frame: the input loop wakes for the frame, and this test for its answer; nothing else runs
    assert soon == Counter({"agentsession:audio-input": FRAMES, me.get_name(): FRAMES})
    await session.close()


async def test_a_session_s_running_pieces_are_few_objects_for_the_garbage_collector() -> None:
    """Every object a session keeps is scanned by each full collection, which stops every session's audio: with
    500 sessions in a process those collections were 20-25 ms, and the underruns came with them. The plugin
    manager is shared and the model's event queue is never made (the session's sink takes every event)."""
    transport = SteppedTransport()
    model = EchoModel()
    session = AgentSession(Agent(instructions="echo"), RealTimePipeline(model))
    other = AgentSession(Agent(instructions="echo"), RealTimePipeline(EchoModel()))
    await session.start(transport=transport)
    await other.start()
    try:
        transport.input.put_nowait(AudioFrame(np.ones((480, 1), np.int16), 24000))
        await transport.played_one.wait()
        assert model.channel._queue is None
        assert session.plugin_manager is other.plugin_manager
    finally:
        await session.close()
        await other.close()


class DeltaModel(FakeRealtimeModel):
    """Each input frame is answered by a 100 ms chunk of the agent's audio, as a provider sends its deltas."""

    def push_audio(self, frame: AudioFrame) -> None:
        self.channel.emit(AgentAudio(AudioFrame(np.ones((2400, 1), np.int16), 24000), response_id="delta"))


class SizedTransport(SteppedTransport):
    """A ``SteppedTransport`` that records the length of every frame ``play`` gets."""

    def __init__(self, max_frame_ms: int | None) -> None:
        super().__init__()
        if max_frame_ms is not None:
            self.max_frame_ms = max_frame_ms
        self.sizes: list[int] = []

    async def play(self, frame: AudioFrame) -> None:
        self.sizes.append(frame.samples_per_channel)
        await super().play(frame)


@pytest.mark.parametrize("max_frame_ms", [None, 20])
async def test_a_providers_100_ms_chunk_is_one_play_unless_the_transport_takes_20_ms_frames_only(
        max_frame_ms: int | None) -> None:
    transport = SizedTransport(max_frame_ms)  # None: the default (100)
    session = AgentSession(Agent(instructions="answer"), RealTimePipeline(DeltaModel()))
    await session.start(transport=transport)
    for _ in range(3):
        transport.played_one.clear()
        transport.input.put_nowait(AudioFrame(np.ones((480, 1), np.int16), 24000))
        await transport.played_one.wait()  # plays that never wait run from the audio path: the chunk is out
    assert transport.sizes == ([2400] * 3 if max_frame_ms is None else [480] * 15)
    assert transport.played == pytest.approx(0.3)
    await session.close()
