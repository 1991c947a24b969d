"""How agentsession scales in one process: N sessions side by side, N = 1, 10, 50, 200, 500.

Each N runs in a fresh process (so RSS is that N's own): ``session_overhead.py``'s sessions (a streaming fake
model, 20 ms of agent audio every 20 ms, and a paced transport with 20 ms of user audio in every 20 ms), a
warm-up, then a window of ``--seconds``. Printed per N: CPU % of a core per session, RSS per session (the
process's growth from before the sessions started, divided by N), p99 and max lateness (how late the transports'
20 ms input ticks fire: the event loop's saturation gauge; the max is its longest stall, a full garbage
collection say), p99 latency (model emits a frame -> the session
hands it to the transport) and output underruns (20 ms output blocks that found no audio while more was due).

    python bench/scale.py             # N = 1, 10, 50, 200, 500, 5 s each
    python bench/scale.py --quick     # N = 1, 10, 50, 1.5 s each (CI)
    python bench/scale.py --uvloop    # the same on uvloop (the fast extra), each N side by side with asyncio's loop
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from session_overhead import RATE, MeasuringTransport, SessionWire, pct  # noqa: E402

from agentsession import AudioFrame  # noqa: E402
from agentsession._manager import discover  # noqa: E402


class LatenessTransport(MeasuringTransport):
    """``MeasuringTransport`` that also records how late each input tick fires."""

    lateness: list[float] = []  # shared by every session of the process

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        silence = AudioFrame.silence(0.02, RATE)
        loop = asyncio.get_running_loop()
        t = loop.time()
        while True:
            yield silence
            t += 0.02
            await asyncio.sleep(t - loop.time())
            self.lateness.append(loop.time() - t)


class ScaleWire(SessionWire):
    def __init__(self, latencies: list[float]) -> None:
        super().__init__(latencies)
        self.transport = LatenessTransport(latencies, self.model.emitted)
        self.model.emitted = self.transport.emitted


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def child(n: int, seconds: float) -> None:
    latencies: list[float] = []
    gc.collect()
    rss0 = rss_mb()
    wires = [ScaleWire(latencies) for _ in range(n)]
    for wire in wires:
        await asyncio.sleep(0.02 / n)  # users arrive at any phase of the 20 ms tick
        await wire.start()
    await asyncio.sleep(1.0)  # warm-up
    gc.collect()
    await asyncio.sleep(0.1)
    latencies.clear()
    LatenessTransport.lateness.clear()
    underruns0 = sum(w.transport.playout.underruns for w in wires)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rss = rss_mb()
    underruns = sum(w.transport.playout.underruns for w in wires) - underruns0
    lateness = list(LatenessTransport.lateness)
    for wire in wires:
        await wire.close()
    print(json.dumps({"n": n, "cpu_pct_per_session": 100.0 * cpu / wall / n, "rss_mb": rss,
                      "rss_mb_per_session": (rss - rss0) / n, "lateness_p99_ms": pct(lateness, 99),
                      "lateness_max_ms": 1000 * max(lateness, default=float("nan")),
                      "latency_p99_ms": pct(latencies, 99), "underruns": underruns}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1, 10, 50 for 1.5 s (what CI runs)")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("-n", type=int, action="append", help="session counts (repeatable)")
    parser.add_argument("--uvloop", action="store_true", help="also run each N on uvloop, right after asyncio's")
    parser.add_argument("--child", choices=("asyncio", "uvloop"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    ns = args.n or ([1, 10, 50] if args.quick else [1, 10, 50, 200, 500])
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    if args.child:
        factory = importlib.import_module("uvloop").new_event_loop if args.child == "uvloop" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(child(ns[0], seconds))
        return
    env = {**os.environ, "AGENTSESSION_DISABLE_PLUGINS": ",".join(p.name for p in discover())}  # core alone
    print(f"{'N':>5} {'loop':>8} {'cpu %/session':>14} {'RSS MB':>7} {'RSS MB/session':>15} {'p99 lateness ms':>16}"
          f" {'max lateness ms':>16} {'p99 latency ms':>15} {'underruns':>10}")
    for n in ns:
        for loop in ("asyncio", "uvloop") if args.uvloop else ("asyncio",):
            out = subprocess.run([sys.executable, __file__, "--child", loop, "-n", str(n), "--seconds", str(seconds)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{n:>5} {loop:>8} {r['cpu_pct_per_session']:>14.3f} {r['rss_mb']:>7.1f}"
                  f" {r['rss_mb_per_session']:>15.3f} {r['lateness_p99_ms']:>16.2f}"
                  f" {r['lateness_max_ms']:>16.2f} {r['latency_p99_ms']:>15.3f}"
                  f" {r['underruns']:>10}")


if __name__ == "__main__":
    main()
