"""What an AgentSession costs: CPU per session and the latency it adds, N sessions side by side.

Each session runs a streaming fake model (20 ms of agent audio every 20 ms, real time) and a paced
transport that also delivers 20 ms of user audio every 20 ms. The same fakes are run once wired directly
(model -> transport, no session: the floor) and once through AgentSession, in the same process, so the
printed overhead is the session's own. Latency is from the model emitting a frame to the session handing
it to ``Transport.play``. Sessions start at phases spread over the 20 ms tick, as real users arrive;
``--aligned`` starts them all on one tick, the worst case for tail latency.

    python bench/session_overhead.py            # N = 1, 50, 200, 5 s each
    python bench/session_overhead.py --quick    # N = 1, 50, 1.5 s each (CI)
    python bench/session_overhead.py -n 50 --observers   # sessions without, then with, the OTel plugin and
                                                         # the recorder (a turn every second), side by side

Installed plugins are disabled (core alone is measured) except with ``--observers``, which runs each N
in two processes at the same time (a neighbour's load on the machine falls on both alike): one as usual,
one with ``agentsession-otel`` (exporting OTLP/HTTP to a sink process on loopback) and
``agentsession-recorder`` (to a temporary folder) enabled; each side runs ``--repeat`` times and the
medians are compared. Both have the same turns (``--turn-seconds``). ``--observer console_io`` (a plugin
with no session hooks) gives an A/A run: how much the two sides differ by chance.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentsession import (
    Agent,
    AgentAudio,
    AgentSession,
    AudioFrame,
    ModelOptions,
    PacedTransport,
    PlayoutBuffer,
    RealtimeModel,
    RealTimePipeline,
    ResponseDone,
    ToolResult,
)
from agentsession._manager import discover

RATE = 24000
FRAME = RATE // 50


class StreamingModel(RealtimeModel):
    """Emits one 20 ms frame every 20 ms and notes when, in ``emitted`` (the session re-frames, and with
    20 ms frames in and out the k-th frame played is the k-th frame emitted)."""

    def __init__(self, emitted: deque[float], turn_frames: int | None = None) -> None:
        super().__init__()
        self.emitted = emitted
        self.received = 0
        self.turn_frames = turn_frames  # end a response (a turn, with usage) every so many frames
        self._frames = 0
        self._turn = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, options: ModelOptions) -> None:
        self._task = asyncio.get_running_loop().create_task(self._stream(self._emit))

    def _emit(self, frame: AudioFrame) -> None:
        rid = f"stream-{self._turn}"
        self.channel.emit(AgentAudio(frame, response_id=rid))
        self._frames += 1
        if self.turn_frames and self._frames % self.turn_frames == 0:
            self.channel.emit(ResponseDone(usage={"input_tokens": 120, "output_tokens": 30}, response_id=rid))
            self._turn += 1

    async def _stream(self, sink: object) -> None:
        data = (np.sin(np.arange(FRAME) / 10) * 8000).astype(np.int16).reshape(-1, 1)
        loop = asyncio.get_running_loop()
        t = loop.time()
        while True:
            self.emitted.append(time.perf_counter())
            sink(AudioFrame(data, RATE))  # type: ignore[operator]
            t += 0.02
            await asyncio.sleep(t - loop.time())

    def push_audio(self, frame: AudioFrame) -> None:
        self.received += 1

    async def send_text(self, text: str, *, response_id: str) -> None: ...
    async def say(self, text: str, *, response_id: str) -> None: ...
    async def reply(self, instructions: str | None = None, *, response_id: str) -> None: ...
    async def interrupt(self, heard: Mapping[str, float | None]) -> None: ...
    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None: ...

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.channel.end()


class MeasuringTransport(PacedTransport):
    """Paced output (20 ms blocks), 20 ms input frames in real time, and a latency probe on ``play``."""

    def __init__(self, latencies: list[float], emitted: deque[float]) -> None:
        super().__init__(RATE)
        self.playout = PlayoutBuffer(RATE, max_buffered=2.0)  # back-pressure would measure clock phase, not us
        self.latencies = latencies
        self.emitted = emitted

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        silence = AudioFrame.silence(0.02, RATE)
        loop = asyncio.get_running_loop()
        t = loop.time()
        while True:
            yield silence
            t += 0.02
            await asyncio.sleep(t - loop.time())

    async def play(self, frame: AudioFrame) -> None:
        self.latencies.append(time.perf_counter() - self.emitted.popleft())
        await super().play(frame)

    def play_nowait(self, frame: AudioFrame) -> bool:
        if not super().play_nowait(frame):
            return False  # the session awaits play() instead, which measures it
        self.latencies.append(time.perf_counter() - self.emitted.popleft())
        return True


class DirectWire:
    """The floor: the same fakes with no session between them."""

    def __init__(self, latencies: list[float]) -> None:
        emitted: deque[float] = deque()
        self.model = StreamingModel(emitted)
        self.transport = MeasuringTransport(latencies, emitted)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.transport.start()
        self.tasks.append(asyncio.ensure_future(self.model._stream(self._out)))
        self.tasks.append(asyncio.ensure_future(self._in()))
        self._queue: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self.tasks.append(asyncio.ensure_future(self._play()))

    def _out(self, frame: AudioFrame) -> None:
        self._queue.put_nowait(frame)

    async def _play(self) -> None:
        while True:
            await self.transport.play(await self._queue.get())

    async def _in(self) -> None:
        async for frame in self.transport.audio_input():
            self.model.push_audio(frame)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.transport.close()


class SessionWire:
    turn_frames: int | None = None  # --turn-seconds

    def __init__(self, latencies: list[float]) -> None:
        emitted: deque[float] = deque()
        self.transport = MeasuringTransport(latencies, emitted)
        self.model = StreamingModel(emitted, self.turn_frames)
        self.session = AgentSession(Agent(instructions="bench"), RealTimePipeline(self.model))

    async def start(self) -> None:
        await self.transport.start()
        await self.session.start(transport=self.transport)

    async def close(self) -> None:
        await self.session.close()
        await self.transport.close()


async def measure(
    kind: type[DirectWire] | type[SessionWire], n: int, seconds: float, aligned: bool
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    wires = [kind(latencies) for _ in range(n)]
    for wire in wires:
        if not aligned:  # real sessions start whenever their users arrive, not on one shared 20 ms tick
            await asyncio.sleep(0.02 / n)
        await wire.start()
    await asyncio.sleep(0.3)  # warm-up
    gc.collect()
    await asyncio.sleep(0.1)  # frames in flight during the collection are not ours to count
    latencies.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for wire in wires:
        await wire.close()
    return 100.0 * cpu / wall / n, latencies


def pct(values: list[float], q: int) -> float:
    # "inclusive": interpolated between the samples, never past the largest (the default extrapolates with few)
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else float("nan")


async def main(ns: list[int], seconds: float, aligned: bool) -> None:
    print(f"{'N':>5} {'cpu %/session: floor':>22} {'session':>8} {'added':>7} {'ratio':>6}"
          f" {'p50 ms: floor':>14} {'session':>8} {'p99 ms: floor':>14} {'session':>8}")
    for n in ns:
        cpu_floor, lat_floor = await measure(DirectWire, n, seconds, aligned)
        cpu_sess, lat_sess = await measure(SessionWire, n, seconds, aligned)
        print(f"{n:>5} {cpu_floor:>22.3f} {cpu_sess:>8.3f} {cpu_sess - cpu_floor:>7.3f} {cpu_sess / cpu_floor:>6.2f}"
              f" {pct(lat_floor, 50):>14.3f} {pct(lat_sess, 50):>8.3f} {pct(lat_floor, 99):>14.3f} {pct(lat_sess, 99):>8.3f}")


#: an OTLP/HTTP collector stand-in for --observers: answers every export with 200 and drops it
SINK = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""
OBSERVERS = ["otel", "recorder"]


def recorded(folder: Path) -> tuple[int, int]:
    """How many recordings, and turns in them, the recorder wrote."""
    files = list(folder.glob("*.jsonl"))
    return len(files), sum(f.read_text().count('"event": "metrics"') for f in files)


async def child(n: int, seconds: float, aligned: bool, repeat: int, turn_s: float) -> None:
    """One side of ``--observers`` (plugins as the environment says): ``repeat`` times the floor, then the
    sessions; prints the figures as one JSON line."""
    SessionWire.turn_frames = max(1, round(turn_s / 0.02)) if turn_s > 0 else None
    floor, cpu, lat = [], [], []
    for _ in range(repeat):
        floor.append((await measure(DirectWire, n, seconds, aligned))[0])
        used, latencies = await measure(SessionWire, n, seconds, aligned)
        cpu.append(used)
        lat += latencies
    otel: Any = next((p.module for p in discover() if p.name == "otel" and p.module is not None), None)
    if otel is not None:
        otel.reset()  # flush and shut the plugin's exporters down while the sink still listens
    folder = os.environ.get("AGENTSESSION_RECORDER_DIR")
    print(json.dumps({"floor": floor, "cpu": cpu, "p50": pct(lat, 50), "p99": pct(lat, 99),
                      "recorded": recorded(Path(folder)) if folder else [0, 0]}))


def compare_observers(ns: list[int], seconds: float, aligned: bool, repeat: int, turn_s: float) -> None:
    """Run each N in two processes at the same time, one without plugins and one with the observers, so
    that a neighbour's load on this machine falls on both alike; print medians of ``repeat`` runs."""
    turns = f"a turn every {turn_s:g} s per session" if turn_s > 0 else "no turns (one endless answer per session)"
    print(f"{turns}; observers: {', '.join(OBSERVERS)}; both sides at once, in two processes; cpu % of a core "
          f"per session (median of {repeat} runs); latency: model -> transport.play")
    print(f"{'N':>5} {'cpu: floor':>10} {'session':>8} {'+observers':>10} {'overhead':>9}"
          f" {'p99 ms: session':>16} {'+observers':>10}")
    blocked = [p.name for p in discover()]
    missing = set(OBSERVERS) - set(blocked)
    if missing:
        raise SystemExit(f"--observers needs these plugins installed: {', '.join(sorted(missing))}")
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        endpoint = f"http://127.0.0.1:{sink.stdout.readline().strip()}"
        with tempfile.TemporaryDirectory(prefix="bench-recordings-") as folder:
            plain_env = {**os.environ, "AGENTSESSION_DISABLE_PLUGINS": ",".join(blocked)}
            observed_env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "AGENTSESSION_RECORDER_DIR": folder,
                            "AGENTSESSION_DISABLE_PLUGINS": ",".join(p for p in blocked if p not in OBSERVERS)}
            for n in ns:
                args = [sys.executable, __file__, "--child", "-n", str(n), "--seconds", str(seconds),
                        "--repeat", str(repeat), "--turn-seconds", str(turn_s), *(["--aligned"] if aligned else [])]
                procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
                         for env in (plain_env, observed_env)]
                plain, observed = (json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
                cpu_sess, cpu_obs = statistics.median(plain["cpu"]), statistics.median(observed["cpu"])
                print(f"{n:>5} {statistics.median(plain['floor'] + observed['floor']):>10.3f} {cpu_sess:>8.3f}"
                      f" {cpu_obs:>10.3f} {100 * (cpu_obs / cpu_sess - 1):>+8.1f}% {plain['p99']:>16.3f}"
                      f" {observed['p99']:>10.3f}")
                print(f"      runs: session {' '.join(f'{c:.3f}' for c in plain['cpu'])};"
                      f" +observers {' '.join(f'{c:.3f}' for c in observed['cpu'])}"
                      f" (the observers recorded {observed['recorded'][0]} sessions,"
                      f" {observed['recorded'][1]} turns so far)")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1, 50 for 1.5 s (what CI runs)")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("-n", type=int, action="append", help="session counts (repeatable)")
    parser.add_argument("--aligned", action="store_true",
                        help="start every session on the same 20 ms tick (the worst case for tail latency)")
    parser.add_argument("--observers", action="store_true",
                        help="run each N with and without the OTel plugin and the recorder, at once, and compare")
    parser.add_argument("--observer", action="append", metavar="PLUGIN",
                        help="with --observers: the plugins to enable (repeatable; default otel and recorder)")
    parser.add_argument("--turn-seconds", type=float, default=1.0,
                        help="with --observers: each session's model ends a turn this often (default 1 s; 0: never)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="with --observers: runs per side, the median is printed (default 3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    ns = args.n or ([1, 50] if args.quick else [1, 50, 200])
    if args.child:  # one side of --observers: the parent set the plugins in the environment
        asyncio.run(child(ns[0], seconds, args.aligned, args.repeat, args.turn_seconds))
        raise SystemExit(0)
    print("start phases:", "aligned (worst case)" if args.aligned else "spread over the 20 ms tick")
    if args.observers:
        OBSERVERS[:] = args.observer or OBSERVERS
        compare_observers(ns, seconds, args.aligned, args.repeat, args.turn_seconds)
    else:
        # measure core alone: installed observer plugins (a recorder, say) would add their own work to every session
        os.environ["AGENTSESSION_DISABLE_PLUGINS"] = ",".join(p.name for p in discover())
        asyncio.run(main(ns, seconds, args.aligned))
