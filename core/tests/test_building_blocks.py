"""Emitter, playout buffer, VAD, virtual clock, secrets, room options."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from agentsession import (
    AudioFrame,
    EnergyVAD,
    EventEmitter,
    PlayoutBuffer,
    RedactingFilter,
    RoomOptions,
    VirtualClockEventLoop,
    mask,
    protect_secret,
    run_virtual,
)
from agentsession._speech import Response, SpeechHandle
from agentsession._speech_playout import SpeechPlayout
from agentsession._transport import BufferedTransport, Transport
from agentsession._vad import UtteranceCollector
from agentsession.testing import tone, virtual_clock

# ---------------------------------------------------------------- EventEmitter

def test_emitter_without_a_loop_calls_inline_and_once_fires_once() -> None:
    em = EventEmitter()
    got: list[object] = []
    em.on("x", got.append)
    em.once("x", lambda d: got.append(("once", d)))
    em.emit("x", 1)
    em.emit("x", 2)
    assert got == [1, ("once", 1), 2]
    em.off("x", got.append)
    em.emit("x", 3)
    assert got == [1, ("once", 1), 2]


async def test_emitter_defers_callbacks_and_isolates_failures(caplog: pytest.LogCaptureFixture) -> None:
    em = EventEmitter()
    got: list[object] = []
    done = asyncio.Event()

    def bad(_: object) -> None:
        raise RuntimeError("bad callback")

    async def good_async(d: object) -> None:
        got.append(("async", d))
        done.set()

    em.on("x", bad)
    em.on("x", got.append)
    em.on("x")(good_async)  # decorator form
    with caplog.at_level(logging.ERROR):
        em.emit("x", 1)
        assert got == []  # nothing runs inside emit
        await asyncio.wait_for(done.wait(), 1)
    assert got == [1, ("async", 1)]
    assert "bad callback" in caplog.text


async def test_emitter_aclose_cancels_running_async_callbacks() -> None:
    em = EventEmitter()
    started = asyncio.Event()

    async def forever(_: object) -> None:
        started.set()
        await asyncio.Event().wait()

    em.on("x", forever)
    em.emit("x")
    await asyncio.wait_for(started.wait(), 1)
    await em.aclose()
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_emitter_rejects_non_callables() -> None:
    with pytest.raises(TypeError):
        EventEmitter().on("x", 42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- PlayoutBuffer

async def test_playout_counts_only_real_samples_and_pads_underruns() -> None:
    buf = PlayoutBuffer(24000, max_buffered=1.0)
    await buf.put(AudioFrame(np.full((300, 1), 7, np.int16), 24000))
    out, real = buf.pull(480)
    assert real == 300 and np.all(out[:300] == 7) and np.all(out[300:] == 0)
    assert buf.played == pytest.approx(300 / 24000)
    assert buf.underruns == 1  # ran dry while audio was expected
    await buf.wait_drained()
    out, real = buf.pull(480)
    assert real == 0 and buf.underruns == 1  # draining: silence is expected, not an underrun


async def test_playout_clear_drops_and_played_never_goes_back() -> None:
    buf = PlayoutBuffer(24000, max_buffered=1.0)
    await buf.put(AudioFrame.silence(0.1, 24000))
    buf.pull(480)
    buf.clear()
    assert buf.buffered == 0 and buf.played == pytest.approx(0.02)
    await asyncio.wait_for(buf.wait_drained(), 1)


async def test_playout_back_pressure_released_by_a_device_thread() -> None:
    buf = PlayoutBuffer(24000, max_buffered=0.04)
    frame = AudioFrame.silence(0.02, 24000)
    await buf.put(frame)
    await buf.put(frame)
    blocked = asyncio.ensure_future(buf.put(frame))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    threading.Thread(target=buf.pull, args=(480,)).start()  # a PortAudio callback would do this
    await asyncio.wait_for(blocked, 2)
    assert buf.buffered == pytest.approx(0.04)


async def test_a_burst_wakes_the_loop_once_per_half_buffer_not_per_device_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer that arrives faster than it plays fills the buffer; the device thread's pulls then wake the
    event loop (a wake-up costs more than a frame's work on a VM) once per half buffer, not once per block."""
    buf = PlayoutBuffer(24000, max_buffered=0.1)
    frame = AudioFrame.silence(0.02, 24000)
    loop = asyncio.get_running_loop()
    wakes = 0
    threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        nonlocal wakes
        wakes += 1
        return threadsafe(callback, *args, context=context)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)

    async def answer() -> None:  # 1 s of audio, all there at once
        for _ in range(50):
            await buf.put(frame)

    producer = asyncio.ensure_future(answer())
    await asyncio.sleep(0)
    pulled = 0
    while not producer.done() or buf.buffered:
        device = threading.Thread(target=buf.pull, args=(480,))  # a PortAudio callback, one 20 ms block
        device.start()
        device.join()
        pulled += 1
        for _ in range(3):  # let the loop take what the pull woke
            await asyncio.sleep(0)
    assert pulled == 50 and buf.played == pytest.approx(1.0)
    assert wakes <= 50 // 3 + 1  # one per three blocks (100 ms buffer, woken at 50 ms), not 45


async def test_playout_rejects_the_wrong_format() -> None:
    with pytest.raises(ValueError, match="48000"):
        await PlayoutBuffer(48000).put(AudioFrame.silence(0.02, 24000))
    with pytest.raises(ValueError, match="48000"):
        PlayoutBuffer(48000).put_nowait(AudioFrame.silence(0.02, 24000))


def test_playout_put_nowait_takes_a_frame_only_while_there_is_room() -> None:
    buf = PlayoutBuffer(24000, max_buffered=0.04)
    frame = AudioFrame.silence(0.02, 24000)
    assert buf.put_nowait(frame) and buf.put_nowait(frame)
    assert not buf.put_nowait(frame) and buf.buffered == pytest.approx(0.04)
    buf.pull(480)
    assert buf.put_nowait(frame)


async def test_speech_playout_hands_frames_over_at_once_and_queues_only_under_back_pressure() -> None:
    transport = _CountingTransport(max_buffered=0.04)
    started: list[Response] = []
    playout = SpeechPlayout(transport, started.append, lambda r: None)
    task = playout.start()
    await asyncio.sleep(0)  # the playout task parks, waiting for audio
    response = Response("r1", SpeechHandle(lambda h: None, trigger="say"))
    frames = [AudioFrame(np.full((480, 1), i, np.int16), 24000) for i in range(4)]
    playout.push(response, frames[0])
    playout.push(response, frames[1])
    # no await since: the transport took both frames from push() itself
    assert transport.awaited == 0 and transport.playout.buffered == pytest.approx(0.04) and started == [response]
    playout.push(response, frames[2])  # full: queued for the task, which awaits play()
    playout.push(response, frames[3])
    assert response.queued == 2 and transport.playout.buffered == pytest.approx(0.04)
    await asyncio.sleep(0)
    out = [transport.playout.pull(480)[0][0, 0] for _ in range(2)]
    for _ in range(5):
        await asyncio.sleep(0)
    out += [transport.playout.pull(480)[0][0, 0] for _ in range(2)]
    assert out == [0, 1, 2, 3] and transport.awaited == 2  # in order; the task only for back-pressure
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _parked_playout(transport: Transport) -> tuple[SpeechPlayout, asyncio.Task[None], Response]:
    """A playout for ``transport`` whose task waits for audio, and a response to push."""
    playout = SpeechPlayout(transport, lambda r: None, lambda r: None)
    task = playout.start()
    await asyncio.sleep(0)
    return playout, task, Response("r1", SpeechHandle(lambda h: None, trigger="say"))


class _GatedTransport(Transport):
    """A transport with only an async ``play`` (no ``play_nowait``): it takes frames at once while ``open`` is
    set, else waits for it (under an ``asyncio.timeout``, as a real sink may); it records the task each
    ``play`` ran as, before and after its wait."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[int] = []
        self.ran_as: list[asyncio.Task[object] | None] = []
        self.open = asyncio.Event()
        self.open.set()
        self.closed_plays = 0

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        return
        yield

    async def play(self, frame: AudioFrame) -> None:
        self.ran_as.append(asyncio.current_task())
        try:
            if not self.open.is_set():
                async with asyncio.timeout(60):
                    await self.open.wait()
                self.ran_as.append(asyncio.current_task())
            self.frames.append(int(frame.data[0, 0]))
        except GeneratorExit:
            self.closed_plays += 1
            raise

    def clear(self) -> None:
        pass

    @property
    def played(self) -> float:
        return 0.0

    async def wait_for_playout(self) -> None:
        pass


async def test_speech_playout_starts_an_async_play_at_once_and_finishes_one_that_waits_in_its_task() -> None:
    transport = _GatedTransport()
    playout, task, response = await _parked_playout(transport)
    frame = [AudioFrame(np.full((480, 1), i, np.int16), 24000) for i in range(5)]
    playout.push(response, frame[0])
    assert transport.frames == [0] and transport.ran_as == [task]  # no task switch, as the playout task
    transport.open.clear()
    playout.push(response, frame[1])  # play() must wait: the playout task finishes it
    playout.push(response, frame[2])  # behind it: queued
    assert transport.frames == [0] and response.queued == 1
    for _ in range(3):
        await asyncio.sleep(0)
    transport.open.set()
    for _ in range(5):
        await asyncio.sleep(0)
    playout.push(response, frame[3])
    assert transport.frames == [0, 1, 2, 3]  # in order, none lost
    assert set(transport.ran_as) == {task}  # the timeout entered in play() belonged to the task that waited
    assert response.submitted == pytest.approx(0.08)
    transport.open.clear()
    playout.push(response, frame[4])
    await asyncio.sleep(0)
    task.cancel()  # the session closes while play() waits: the play is closed, not left pending
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and transport.closed_plays == 1 and transport.frames == [0, 1, 2, 3]


_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class _ContextTransport(_GatedTransport):
    """``play`` records the context variable it sees, then sets it (a span, a log context, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def play(self, frame: AudioFrame) -> None:
        self.seen.append(_SEEN.get())
        if not self.open.is_set():
            await self.open.wait()
        _SEEN.set(f"play {int(frame.data[0, 0])}")


async def test_speech_playout_runs_a_started_play_in_the_playout_tasks_context() -> None:
    transport = _ContextTransport()
    playout, task, response = await _parked_playout(transport)
    frame = [AudioFrame(np.full((480, 1), i, np.int16), 24000) for i in range(3)]

    async def model() -> None:  # the model's task pushes the audio, with a value of its own
        _SEEN.set("model")
        playout.push(response, frame[0])
        transport.open.clear()
        playout.push(response, frame[1])  # waits for room: the playout task finishes it
        assert _SEEN.get() == "model"  # what play() set stayed in the playout task's context

    await asyncio.create_task(model())
    transport.open.set()
    for _ in range(5):
        await asyncio.sleep(0)
    playout.push(response, frame[2])
    # each play() saw what the one before it set, as plays awaited one after another in one task would
    assert transport.seen == ["unset", "play 0", "play 1"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _FutureTransport(_GatedTransport):
    """``play`` is a plain function returning a future (some other awaitable than a coroutine)."""

    pending: tuple[asyncio.Future[None], int]

    def play(self, frame: AudioFrame) -> asyncio.Future[None]:  # type: ignore[override]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.open.is_set():
            self.frames.append(int(frame.data[0, 0]))
            future.set_result(None)
        else:
            self.pending = (future, int(frame.data[0, 0]))  # resolved by the test
        return future


class _PlainContextTransport(_FutureTransport):
    """A plain-function ``play`` (its body runs when called) that records and sets the context variable."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def play(self, frame: AudioFrame) -> asyncio.Future[None]:  # type: ignore[override]
        self.seen.append(_SEEN.get())
        _SEEN.set(f"play {int(frame.data[0, 0])}")
        return super().play(frame)


async def test_speech_playout_calls_a_plain_play_in_the_playout_tasks_context() -> None:
    transport = _PlainContextTransport()
    playout, task, response = await _parked_playout(transport)
    frame = [AudioFrame(np.full((480, 1), i, np.int16), 24000) for i in range(2)]

    async def model() -> None:
        _SEEN.set("model")
        playout.push(response, frame[0])
        assert _SEEN.get() == "model"

    await asyncio.create_task(model())
    playout.push(response, frame[1])
    assert transport.seen == ["unset", "play 0"] and transport.frames == [0, 1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("then", ["stop", "pause"])
async def test_speech_playout_a_play_that_waits_when_the_answer_is_stopped_or_paused(then: str) -> None:
    transport = _GatedTransport()
    playout, task, response = await _parked_playout(transport)
    playout.push(response, AudioFrame(np.full((480, 1), 0, np.int16), 24000))
    transport.open.clear()
    playout.push(response, AudioFrame(np.full((480, 1), 1, np.int16), 24000))  # waits for room
    await asyncio.sleep(0)
    if then == "stop":
        playout.stop([response])  # interrupted while its frame waited: that frame must not count as heard
    else:
        playout.pause()  # a user who may be interrupting: the frames come back, to play on resume()
    transport.open.set()
    for _ in range(5):
        await asyncio.sleep(0)
    if then == "stop":
        assert response.submitted == pytest.approx(0.02) and response.played_out and not playout.active
    else:  # nothing was heard yet (this transport plays nothing): both frames wait for resume(), in order
        assert response.submitted == 0 and response.queued == 2
        playout.resume()
        for _ in range(5):
            await asyncio.sleep(0)
        assert response.submitted == pytest.approx(0.04) and response.queued == 0
        assert transport.frames[-2:] == [0, 1]  # the frame whose play was pending goes after the one before it
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("max_frame_ms", [None, 20, 40])
async def test_speech_playout_plays_a_providers_chunk_in_frames_of_up_to_the_transports_max_frame_ms(
        max_frame_ms: int | None) -> None:
    transport = _CountingTransport(max_buffered=0.2)
    if max_frame_ms is not None:
        transport.max_frame_ms = max_frame_ms  # None: the default, 100 ms (a sink that takes longer frames)
    sizes: list[int] = []
    put = transport.playout.put_nowait

    def put_nowait(frame: AudioFrame) -> bool:
        sizes.append(frame.samples_per_channel)
        return put(frame)

    transport.playout.put_nowait = put_nowait  # type: ignore[method-assign]
    playout, task, response = await _parked_playout(transport)
    playout.push(response, AudioFrame(np.zeros((2400, 1), np.int16), 24000))  # 100 ms delta
    playout.push(response, AudioFrame(np.zeros((1000, 1), np.int16), 24000))  # odd-sized: whole 20 ms go, 40 wait
    assert sizes == {None: [2400, 960], 20: [480] * 5 + [480] * 2, 40: [960, 960, 480, 960]}[max_frame_ms]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("chunk_ms", [20, 100])  # the session's frames, or a provider's 100 ms chunks whole
@pytest.mark.parametrize("paused_at_ms", [0, 10, 20, 50, 90])
async def test_speech_playout_pause_takes_back_only_what_was_not_played(chunk_ms: int, paused_at_ms: int) -> None:
    transport = _CountingTransport(max_buffered=0.2)
    playout, task, response = await _parked_playout(transport)
    ramp = np.arange(2400, dtype=np.int16).reshape(-1, 1)  # 100 ms at 24 kHz: every sample tells where it was
    size = 24 * chunk_ms
    for i in range(0, 2400, size):
        playout.push(response, AudioFrame(ramp[i : i + size], 24000))
    out = [transport.playout.pull(24 * paused_at_ms)[0]] if paused_at_ms else []
    playout.pause()  # the user may be interrupting: the transport is cleared, what it had not played goes back
    assert transport.playout.buffered == 0
    playout.resume()
    for _ in range(10):
        await asyncio.sleep(0)
    rest, real = transport.playout.pull(4800)
    out.append(rest[:real])
    assert np.array_equal(np.concatenate(out), ramp)  # every sample once, in order: nothing heard twice
    assert response.heard(transport.played) == pytest.approx(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_speech_playout_stopping_one_answer_gives_the_one_playing_back_only_what_was_not_played() -> None:
    transport = _CountingTransport(max_buffered=0.2)
    playout, task, first = await _parked_playout(transport)
    second = Response("r2", SpeechHandle(lambda h: None, trigger="say"))
    ramp = np.arange(2400, dtype=np.int16).reshape(-1, 1)
    playout.push(first, AudioFrame(ramp, 24000))  # both 100 ms chunks go to the transport at once
    playout.push(second, AudioFrame(np.full((2400, 1), -1, np.int16), 24000))
    out = [transport.playout.pull(720)[0]]  # 30 ms of the first heard
    playout.stop([second])  # the transport is cleared: the first's unplayed 70 ms go back, none of the second
    for _ in range(10):
        await asyncio.sleep(0)
    rest, real = transport.playout.pull(4800)
    out.append(rest[:real])
    assert np.array_equal(np.concatenate(out), ramp)
    assert first.heard(transport.played) == pytest.approx(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_speech_playout_takes_a_play_that_returns_another_awaitable() -> None:
    transport = _FutureTransport()
    playout, task, response = await _parked_playout(transport)
    playout.push(response, AudioFrame(np.full((480, 1), 7, np.int16), 24000))
    transport.open.clear()
    playout.push(response, AudioFrame(np.full((480, 1), 8, np.int16), 24000))  # its future is resolved later
    playout.push(response, AudioFrame(np.full((480, 1), 9, np.int16), 24000))
    for _ in range(3):
        await asyncio.sleep(0)
    future, value = transport.pending
    transport.frames.append(value)
    transport.open.set()
    future.set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.frames == [7, 8, 9] and response.submitted == pytest.approx(0.06)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _Odd:
    def __await__(self) -> Generator[object, None, None]:
        yield 42  # what no asyncio task can wait for


class _OddTransport(_GatedTransport):
    async def play(self, frame: AudioFrame) -> None:
        await _Odd()


async def test_speech_playout_fails_loudly_on_a_play_that_yields_what_asyncio_cannot_wait_for() -> None:
    playout, task, response = await _parked_playout(_OddTransport())
    playout.push(response, AudioFrame.silence(0.02, 24000))
    with pytest.raises(RuntimeError, match="cannot wait for"):
        await task


class _CountingTransport(BufferedTransport):
    """A buffered transport that counts the frames ``play`` had to be awaited for."""

    def __init__(self, max_buffered: float) -> None:
        super().__init__(24000, max_buffered=max_buffered)
        self.awaited = 0

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        return
        yield

    async def play(self, frame: AudioFrame) -> None:
        self.awaited += 1
        await super().play(frame)


# ---------------------------------------------------------------- VAD

def frames(audio: AudioFrame) -> list[AudioFrame]:
    n = audio.sample_rate // 50
    return [AudioFrame(audio.data[i : i + n], audio.sample_rate) for i in range(0, audio.samples_per_channel, n)]


def speech(rate: int = 16000) -> AudioFrame:
    silence = np.zeros((rate // 2, 1), np.int16)
    return AudioFrame(np.concatenate([silence, tone(1.0, rate, 300).data, silence, silence]), rate)


def test_energy_vad_finds_start_and_end_positions() -> None:
    vad = EnergyVAD(min_speech=0.1, min_silence=0.5)
    events = [e for f in frames(speech()) for e in vad.push(f)]
    assert [(e.kind, round(e.position, 2)) for e in events] == [("start", 0.5), ("end", 1.5)]


def test_energy_vad_ignores_a_click_shorter_than_min_speech() -> None:
    vad = EnergyVAD(min_speech=0.1)
    click = AudioFrame(np.concatenate([tone(0.04, 16000).data, np.zeros((16000, 1), np.int16)]), 16000)
    assert [e for f in frames(click) for e in vad.push(f)] == []


def test_utterance_collector_keeps_the_preroll() -> None:
    collector = UtteranceCollector(EnergyVAD(), preroll=0.3)
    ends = [(e, a) for f in frames(speech()) for e, a in collector.push(f) if a is not None]
    (event, audio), = ends
    assert audio.duration == pytest.approx(0.3 + 1.0 + 0.5, abs=0.021)  # preroll + speech + silence to decide


# ---------------------------------------------------------------- virtual clock

def test_virtual_clock_jumps_idle_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        return loop.time()

    started = time.monotonic()
    assert run_virtual(main()) == pytest.approx(3600)
    assert time.monotonic() - started < 1


def test_virtual_clock_waits_for_executor_work_for_real() -> None:
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, time.sleep, 0.05)
        try:
            await asyncio.wait_for(asyncio.shield(job), timeout=10)  # must not time out by a jump
            return True, loop.time()
        except TimeoutError:
            return False, loop.time()

    finished, at = run_virtual(main())
    assert finished and at < 1.0


def test_virtual_clock_waits_for_the_executor_s_shutdown_for_real() -> None:
    """Joining the default executor's threads (``asyncio.run``'s last step) is real work too: the clock must not
    jump meanwhile (Python 3.12+ bounds the join with a 300 s timeout, which a jump would expire at once)."""
    released = threading.Event()

    class SlowToJoin(ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            released.wait(5)
            super().shutdown(wait, cancel_futures=cancel_futures)

    jumped: list[float] = []

    def too_soon() -> None:  # runs only if the clock jumps while the join waits
        jumped.append(asyncio.get_running_loop().time())
        released.set()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(SlowToJoin(max_workers=1))
        await loop.run_in_executor(None, time.sleep, 0)
        timer = loop.call_later(1000, too_soon)
        threading.Timer(0.05, released.set).start()
        await loop.shutdown_default_executor()
        timer.cancel()
        return loop.time()

    assert run_virtual(main()) < 1.0
    assert jumped == []


def test_virtual_clock_loop_runs_timers_in_order() -> None:
    order: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockEventLoop)
        for delay in (5, 1, 3):
            loop.call_later(delay, order.append, delay)
        await asyncio.sleep(10)

    run_virtual(main())
    assert order == [1, 3, 5]


@virtual_clock
async def test_virtual_clock_decorator() -> None:
    await asyncio.sleep(100)
    assert asyncio.get_running_loop().time() == pytest.approx(100)


# ---------------------------------------------------------------- secrets

def test_mask_and_room_options_repr_hide_tokens() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.secret-room-token"
    assert token not in mask(token) and mask(token).startswith("eyJh")
    options = RoomOptions(room_id="abc-def", auth_token=token)
    assert token not in repr(options) and token not in str(options)


def test_redacting_filter_masks_secrets_in_log_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting with %s", ("sk-test-0123456789abcdef",), None)
    RedactingFilter().filter(record)
    assert "sk-test-0123456789abcdef" not in record.getMessage()


def test_a_protected_secret_is_masked_in_every_log_record(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-protected-0123456789abcdef"
    protect_secret(secret)  # as a plugin does with the key it was given in code
    library = logging.getLogger("some.library.with.no.filters")
    with caplog.at_level(logging.DEBUG):
        library.debug("> Authorization: Bearer %s", secret)
        library.warning("a malformed call %s %s", secret)  # one argument short
        try:
            raise ConnectionError(f"handshake refused for key {secret}")
        except ConnectionError:
            library.exception("connecting failed")
    assert "handshake refused for key" in caplog.text  # the traceback was logged...
    assert secret not in caplog.text  # ...masked like the rest
    assert f"Authorization: Bearer {mask(secret)}" in caplog.text and "a malformed call" in caplog.text


# ---------------------------------------------------------------- models by name

def test_create_model_by_name() -> None:
    from agentsession import ParrotModel, PluginError, available_models, create_model

    assert "parrot" in available_models()
    assert isinstance(create_model("parrot", max_utterance=5.0), ParrotModel)
    with pytest.raises(PluginError, match="'no-such-model'.*parrot"):
        create_model("no-such-model")
