"""The session's Python cost per echoed frame, with no timer in the way: frames yielded back to back.

One session runs an echo model (each 20 ms / 16 kHz input frame comes back at once as a 24 kHz frame of one
endless response) and a transport whose ``audio_input`` yields frames without waiting and whose ``play`` only
counts. The same model and transport wired together with no session (the model's frames handed straight to
``play``) is the floor, measured in the same process, interleaved. In a real process each frame also waits for
a timer and runs with colder caches (the peers' harness at N=200 measures about 2.5x these figures), so read
the difference, not the absolute times.

With ``--sessions N``, N sessions (and, for the floor, N wired pairs) are served in turn: every round gives each
caller one frame, with no timer, so N sessions' objects are in play between two frames of one, as in a busy
process; ``--evict-mb M`` also reads M MB of other memory between rounds (caches gone cold).

    python bench/frame_cost.py            # 20,000 frames, 5 repeats
    python bench/frame_cost.py --quick    # 3,000 frames, 3 repeats (CI)
    python bench/frame_cost.py --sessions 200 [--evict-mb 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from importlib.metadata import entry_points

import numpy as np

# core alone: an installed observer plugin would add its own work to every frame
os.environ["AGENTSESSION_DISABLE_PLUGINS"] = ",".join(ep.name for ep in entry_points(group="agentsession"))

from agentsession import Agent, AgentAudio, AgentSession, AudioFrame, RealTimePipeline, Transport  # noqa: E402
from agentsession.testing import FakeRealtimeModel  # noqa: E402

IN_RATE, OUT_RATE = 16000, 24000
TONE = (np.sin(np.arange(320) / 8) * 8000).astype(np.int16).reshape(-1, 1)


class EchoModel(FakeRealtimeModel):
    """Every input frame comes back at once as the agent's audio, in one endless response (a model answering)."""

    def __init__(self) -> None:
        super().__init__(sample_rate=IN_RATE)

    def push_audio(self, frame: AudioFrame) -> None:
        out = np.repeat(frame.data, 3, axis=0)[::2]  # 320 samples at 16 kHz -> 480 at 24 kHz
        self.channel.emit(AgentAudio(AudioFrame(out, OUT_RATE), response_id="echo"))


class Rounds:
    """Turns for ``--sessions``: each caller's next frame waits for the next round (a future, no timer)."""

    def __init__(self) -> None:
        self._round: asyncio.Future[None] | None = None

    def wait(self) -> asyncio.Future[None]:
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
        return self._round

    def next(self) -> None:
        round_, self._round = self._round, None
        if round_ is not None:
            round_.set_result(None)


class BurstTransport(Transport):
    """Yields ``frames`` input frames back to back once ``go`` is set, then stops its clock at the last one
    played; with ``rounds``, one frame a round for ever instead (``frames``, ``go`` and the clock unused). ``play``
    counts."""

    sample_rate = OUT_RATE
    channels = 1

    def __init__(self, frames: int, rounds: Rounds | None = None) -> None:
        super().__init__()
        self.frames, self.played_frames, self._played, self.cpu, self._start = frames, 0, 0.0, 0.0, 0.0
        self.go, self.done = asyncio.Event(), asyncio.Event()
        self.rounds = rounds

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        if self.rounds is not None:
            frame = AudioFrame(TONE, IN_RATE)
            while True:
                await self.rounds.wait()
                yield frame
        await self.go.wait()
        frame = AudioFrame(TONE, IN_RATE)
        self._start = time.process_time()
        for _ in range(self.frames):
            yield frame
        await asyncio.Event().wait()  # the caller stays on the line

    async def play(self, frame: AudioFrame) -> None:
        self.played_frames += 1
        self._played += frame.duration
        if self.played_frames == self.frames:  # the last frame is out: the clock stops
            self.cpu = time.process_time() - self._start
            self.done.set()

    def clear(self) -> None:
        pass

    @property
    def played(self) -> float:
        return self._played

    async def wait_for_playout(self) -> None:
        pass


async def through_session(frames: int) -> float:
    transport = BurstTransport(frames)
    session = AgentSession(Agent(instructions="echo"), RealTimePipeline(EchoModel()))
    await session.start(transport=transport)
    try:
        transport.go.set()
        await transport.done.wait()
        assert transport.played_frames == frames, "the session lost frames"
    finally:
        await session.close()
    return transport.cpu / frames


def wire(transport: BurstTransport, model: EchoModel) -> None:
    """The model's frames straight to ``play`` (run to its end: it never waits)."""

    def sink(event: object) -> None:
        if isinstance(event, AgentAudio):
            play = transport.play(event.frame)
            try:
                play.send(None)
            except StopIteration:
                pass

    model.channel.attach(sink)  # type: ignore[arg-type]


async def wired(frames: int) -> float:
    """The floor: the same model and transport, wired."""
    transport, model = BurstTransport(frames), EchoModel()
    wire(transport, model)
    transport.go.set()
    frames_in = transport.audio_input()
    for _ in range(frames):
        model.push_audio(await anext(frames_in))
    await frames_in.aclose()
    assert transport.done.is_set()
    return transport.cpu / frames


async def in_turn(sessions: int, rounds: int, evict_mb: int, through: bool) -> float:
    """CPU per frame of ``sessions`` sessions (``through``) or wired pairs, served one frame each per round."""
    clock = Rounds()
    transports = [BurstTransport(0, rounds=clock) for _ in range(sessions)]
    other = np.ones(evict_mb * 2**20 // 8) if evict_mb else None  # memory read between rounds
    started: list[AgentSession] = []
    pumps: list[asyncio.Task[None]] = []

    async def pump(transport: BurstTransport, model: EchoModel) -> None:
        async for frame in transport.audio_input():
            model.push_audio(frame)

    async def run(count: int) -> None:
        for _ in range(count):
            clock.next()
            if other is not None:
                other.sum()
            for _ in range(3):  # every caller's step (woken by the round) runs, then its frame is played
                await asyncio.sleep(0)

    try:
        for transport in transports:
            if through:
                session = AgentSession(Agent(instructions="echo"), RealTimePipeline(EchoModel()))
                await session.start(transport=transport)
                started.append(session)
            else:
                model = EchoModel()
                wire(transport, model)
                pumps.append(asyncio.create_task(pump(transport, model)))
        await run(20)  # each session's answer has begun
        before = sum(t.played_frames for t in transports)
        start = time.process_time()
        await run(rounds)
        cpu = time.process_time() - start
        played = sum(t.played_frames for t in transports) - before
        assert played == sessions * rounds, f"{played} frames played of {sessions * rounds}"
    finally:
        for session in started:
            await session.close()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    return cpu / played


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3,000 frames, 3 repeats (CI)")
    parser.add_argument("--sessions", type=int, default=1, help="N sessions served in turn (default: one, in bursts)")
    parser.add_argument("--evict-mb", type=int, default=0, help="with --sessions: MB of other memory read per round")
    args = parser.parse_args()
    if args.sessions < 1 or args.evict_mb < 0:
        parser.error("--sessions must be at least 1 and --evict-mb at least 0")
    frames, repeats = (3000, 3) if args.quick else (20000, 5)
    session_us: list[float] = []
    floor_us: list[float] = []
    rounds = max(1, frames // args.sessions)
    for _ in range(repeats):
        if args.sessions > 1:
            floor_us.append(await in_turn(args.sessions, rounds, args.evict_mb, through=False) * 1e6)
            session_us.append(await in_turn(args.sessions, rounds, args.evict_mb, through=True) * 1e6)
        else:
            floor_us.append(await wired(frames) * 1e6)
            session_us.append(await through_session(frames) * 1e6)
    floor, session = statistics.median(floor_us), statistics.median(session_us)
    what = f"{args.sessions} sessions x {rounds} rounds" if args.sessions > 1 else f"{frames} frames"
    if args.evict_mb and args.sessions > 1:
        what += f", {args.evict_mb} MB read per round"
    print(f"{what} x {repeats} (median): floor {floor:.1f} us/frame, session {session:.1f} us/frame, "
          f"the session adds {session - floor:.1f} us ({session / floor:.1f}x the floor)")


if __name__ == "__main__":
    asyncio.run(main())
