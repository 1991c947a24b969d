"""``SpeechPlayout``: the agent's audio on its way to the transport, frame by frame, knowing whose it is."""

from __future__ import annotations

import asyncio
import contextvars
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine
from itertools import islice
from types import CoroutineType
from typing import Any

from ._audio import AudioConverter, AudioFrame, _frame
from ._background_audio import BackgroundMixer
from ._speech import Response
from ._transport import Transport


class SpeechPlayout:
    """Feeds the transport the frames of each response in order and tells, per response, how much of it
    was heard (``Response.heard``), to the frame.

    The transport buffers at most a few frames (it applies back-pressure); what it cleared on an
    interruption is put back in front of the queue unless it belonged to a stopped response, so stopping
    one response never costs another its audio. ``on_started(response)`` is called when a response's first
    frame goes out, ``on_played(response)`` once all of it has been played.
    """

    def __init__(self, transport: Transport, on_started: Callable[[Response], None],
                 on_played: Callable[[Response], None], on_frame: Callable[[AudioFrame], None] | None = None,
                 on_idle: Callable[[], None] | None = None) -> None:
        self._transport = transport
        self._convert = AudioConverter(transport.sample_rate, transport.channels, max_frame_ms=transport.max_frame_ms)
        self._on_started = on_started
        self._on_played = on_played
        self.on_frame = on_frame
        self._on_idle = on_idle  # called when the playout runs out of audio (states are derived from it)
        self._queue: deque[tuple[Response, AudioFrame]] = deque()
        self._in_flight: deque[tuple[Response, AudioFrame, float]] = deque()  # sent, maybe not played: (.., end)
        self._pending: list[Response] = []  # started, not yet played out
        self._submitted = transport.played
        self._wake = asyncio.Event()
        self._parked = False  # the task waits for audio with nothing to finish: a frame may go out at once
        self._task: asyncio.Task[None] | None = None
        self._context: contextvars.Context | None = None  # the task's: an eagerly started play() runs in it too
        self._paused = False
        self.mixer: BackgroundMixer | None = None  # background/thinking tracks, when any plays
        # a transport without ``play_nowait``: its ``play`` is started at once, as the playout task, and only if
        # it must wait (back-pressure) does the task finish it (no task switch per frame for a ``play`` that
        # never waits)
        self._eager = type(transport).play_nowait is Transport.play_nowait
        self._waiting: tuple[Coroutine[Any, Any, None], object, Response, AudioFrame, AudioFrame] | None = None
        self._playing = False  # a response's frame is in a play() that has not returned
        # the transport was cleared while that play was pending: where its frame goes back in the queue (after the
        # frames taken back, which came before it)
        self._recall_at: int | None = None

    @property
    def active(self) -> bool:
        """Whether audio is being played or is waiting to be."""
        return bool(self._queue) or bool(self._pending)

    @property
    def played(self) -> float:
        return self._transport.played

    def start(self) -> asyncio.Task[None]:
        self._context = contextvars.copy_context()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="agentsession:playout",
                                                             context=self._context)
        return self._task

    def push(self, response: Response, frame: AudioFrame) -> None:
        """Queue a chunk of ``response``'s audio (any size and rate: converted for the transport). While the
        transport has room and nothing waits before it, a frame goes to it at once (``play_nowait``), without
        a hop through the playout task; the queue and the task are there for back-pressure."""
        queued = False
        for out in self._convert.push(frame):
            if not self._play_now(response, out):
                self._queue.append((response, out))
                response.queued += 1
                queued = True
        if queued:
            self._wake.set()

    def end(self, response: Response) -> None:
        """``response`` has no more audio: queue its tail; if it had none, it is played out now."""
        for out in self._convert.flush():
            if not self._play_now(response, out):
                self._queue.append((response, out))
                response.queued += 1
        if response.start is None and not response.queued:
            response.played_out = True
            self._on_played(response)
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Go quiet now, keeping every frame: what the transport had not played yet is taken back, in order, and
        ``resume()`` plays on from there (a user who may be interrupting: ``InterruptConfig.resume_on_false_interrupt``)."""
        if not self._paused:
            self._paused = True
            self._take_back(set())

    def kick(self) -> None:
        """Something new to play (a background track started): wake the feeder."""
        self._wake.set()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._wake.set()

    def stop(self, responses: Collection[Response]) -> None:
        """Drop every frame of ``responses`` now; the transport keeps playing the others' without a gap."""
        stopped = set(map(id, responses))
        if any(id(r) in stopped for r, _, end in self._in_flight if end > self._transport.played):
            self._take_back(stopped)
        self._convert.clear()
        if self._recall_at is not None:  # a pending play's frame goes back behind the kept frames before it
            self._recall_at = sum(id(r) not in stopped for r, _ in islice(self._queue, self._recall_at))
        kept: deque[tuple[Response, AudioFrame]] = deque()
        for r, f in self._queue:
            if id(r) in stopped:
                r.queued -= 1
            else:
                kept.append((r, f))
        self._queue = kept
        for r in responses:
            r.played_out = True
        self._pending = [r for r in self._pending if id(r) not in stopped]
        self._wake.set()

    def _take_back(self, stopped: set[int]) -> None:
        """Clear the transport and put what it had not played back in front of the queue (but the frames of the
        ``stopped`` responses): of a frame it was playing, the part not played yet, so nothing is heard twice."""
        self._transport.clear()
        played = self._transport.played
        resend: list[tuple[Response, AudioFrame]] = []
        for r, f, end in self._in_flight:
            if end > played and id(r) not in stopped and not r.played_out:
                rest = _unplayed(f, end - played)
                if rest is not None:
                    resend.append((r, rest))
        for r, _ in resend:
            if r.start is not None and r.start >= played:  # nothing of it was heard: it starts again
                r.submitted, r.start = 0.0, None
                if r in self._pending:
                    self._pending.remove(r)
            r.queued += 1
        self._queue.extendleft(reversed(resend))
        if self._playing:  # the frame in a pending play() came after these: it goes back behind them
            self._recall_at = len(resend) if self._recall_at is None else self._recall_at + len(resend)
        self._in_flight.clear()
        self._submitted = played

    async def _run(self) -> None:
        transport = self._transport
        while True:
            if self._waiting is not None:  # a play() started from push() had to wait: finish it before anything
                play, step, response, frame, heard = self._waiting
                try:
                    await _finish(play, step)
                finally:
                    self._waiting = None
                    self._playing = False
                self._after_play(response, frame, heard)
                continue
            if self._paused:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._queue:
                if self._pending and self._pending[0].done:
                    await self._drain_or_more()
                    continue
                mixer = self.mixer
                if mixer is not None and mixer.active and not self._pending:  # the tracks alone, paced by the transport
                    alone = mixer.alone()
                    await transport.play(alone)
                    self._submitted += alone.duration
                    if self.on_frame is not None:
                        self.on_frame(alone)
                    continue
                self._wake.clear()
                if self._on_idle is not None and not self._pending:  # nothing left to play: states change
                    self._on_idle()
                self._parked = True
                try:
                    await self._wake.wait()
                finally:
                    self._parked = False
                continue
            response, frame = self._queue.popleft()
            response.queued -= 1
            if response.start is None:
                self._started(response)
            mixer = self.mixer
            heard = frame if mixer is None else mixer.mix(frame)
            self._playing = True
            try:
                await transport.play(heard)
            finally:
                self._playing = False
            self._after_play(response, frame, heard)

    def _after_play(self, response: Response, frame: AudioFrame, heard: AudioFrame) -> None:
        """``play`` returned after waiting for room: account for the frame, unless it must not be heard now."""
        recall, self._recall_at = self._recall_at, None
        if response.played_out:  # stopped while this frame waited for room: it must not be heard
            self._transport.clear()
            self._submitted = self._transport.played
        elif recall is not None:  # the transport was cleared meanwhile (a pause): it goes back in its place
            self._transport.clear()
            self._take_back_one(response, frame, recall)
        else:
            self._sent(response, frame, heard)

    def _play_now(self, response: Response, frame: AudioFrame) -> bool:
        """Hand ``frame`` to the transport now if nothing is ahead of it and there is room; return whether it
        was taken (by the transport, or by the playout task for a ``play`` that has to wait)."""
        if not self._parked or self._queue or response.played_out or self._paused or self._waiting is not None:
            return False
        heard = frame if self.mixer is None else self.mixer.mix(frame)
        if self._eager:
            step = self._start_play(heard)
            if step is not None:  # it waits for room: the task finishes it, then the frame counts as sent
                if response.start is None:
                    self._started(response)
                self._waiting = (step[0], step[1], response, frame, heard)
                self._playing = True
                self._wake.set()
                return True
        elif not self._transport.play_nowait(heard):
            return False
        if response.start is None:
            self._started(response)
        self._sent(response, frame, heard)
        return True

    def _start_play(self, frame: AudioFrame) -> tuple[Coroutine[Any, Any, None], object] | None:
        """Run ``transport.play(frame)`` up to its first wait, as the playout task: ``current_task()`` is that
        task (a timeout or cancel scope entered in it belongs to the task that finishes it) and the context is
        its context (a context variable ``play`` sets is the task's, not the caller's). Return the coroutine and
        what it waits on, or None if it returned without waiting."""
        task, context = self._task, self._context
        assert task is not None and context is not None
        loop = task.get_loop()
        caller = asyncio.current_task(loop)
        if caller is not None:
            _leave_task(loop, caller)
        _enter_task(loop, task)
        try:
            play = context.run(self._transport.play, frame)  # a plain-function play() runs as it is called
            if type(play) is not CoroutineType:  # a play() that returns some other awaitable
                play = _awaited(play)
            step = context.run(play.send, None)
        except StopIteration:
            return None
        finally:
            _leave_task(loop, task)
            if caller is not None:
                _enter_task(loop, caller)
        return play, step

    def _started(self, response: Response) -> None:
        response.start = self._submitted
        self._pending.append(response)
        self._on_started(response)

    def _sent(self, response: Response, frame: AudioFrame, heard: AudioFrame) -> None:
        """Account for a frame the transport took (``heard``: with the background mixed in)."""
        duration = frame.duration
        self._submitted += duration
        response.submitted += duration
        self._in_flight.append((response, frame, self._submitted))
        played = self._transport.played
        while self._in_flight and self._in_flight[0][2] <= played:
            self._in_flight.popleft()
        if self._pending and self._pending[0] is not response:
            self._confirm(played)
        if self.on_frame is not None:
            self.on_frame(heard)

    def _take_back_one(self, response: Response, frame: AudioFrame, at: int) -> None:
        self._submitted = self._transport.played
        if response.start is not None and response.start >= self._submitted and not response.submitted:
            response.start = None
            self._pending.remove(response)
        response.queued += 1
        self._queue.insert(at, (response, frame))

    async def _drain_or_more(self) -> None:
        """The queue is empty and audio is still in the transport: wait until it is played, or more comes."""
        self._wake.clear()
        drained = asyncio.ensure_future(self._transport.wait_for_playout())
        more = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((drained, more), return_when=asyncio.FIRST_COMPLETED)
        finally:
            more.cancel()
            drained.cancel()
        self._confirm(self._transport.played, drained=drained.done() and not drained.cancelled())

    def _confirm(self, played: float, *, drained: bool = False) -> None:
        """Report the responses whose every frame has been played."""
        while self._pending:
            head = self._pending[0]
            if not head.done or head.queued or head.start is None:
                return
            if not drained and played + 1e-6 < head.start + head.submitted:
                return
            self._pending.pop(0)
            head.played_out = True
            self._on_played(head)


def _unplayed(frame: AudioFrame, seconds: float) -> AudioFrame | None:
    """The last ``seconds`` of ``frame`` (to the sample; all of it if it is not that long), or None if that is
    not one sample."""
    keep = round(seconds * frame.sample_rate)
    if keep <= 0:
        return None
    skip = frame.samples_per_channel - keep
    if skip <= 0:
        return frame
    return _frame(frame.data[skip:], frame.sample_rate, frame.timestamp + skip / frame.sample_rate)


async def _finish(coro: Coroutine[Any, Any, None], step: object) -> None:
    """Drive ``coro``, started by hand and suspended on ``step`` (what it yielded), to its end, as a task would:
    wait for the future it yielded, then resume it; cancelling the task closes it."""
    while True:
        if step is not None and not asyncio.isfuture(step):
            coro.close()
            raise RuntimeError(f"Transport.play yielded {step!r}, which asyncio cannot wait for")
        try:
            if step is None:
                await asyncio.sleep(0)  # a bare yield
            else:
                step._asyncio_future_blocking = False  # taken, as a task takes what its coroutine yields
                await step
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # this task is cancelled (the session closes)
                coro.close()
                raise
        except Exception:
            pass  # the future failed (or was cancelled): coro sees the same exception where it awaited it
        try:
            step = coro.send(None)
        except StopIteration:
            return


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable
