"""Event-loop wake-ups from a device thread: what ``PlayoutBuffer``'s back-pressure costs while answers arrive
faster than they play (a provider's burst into a sound card's callback, as the console gets it).

N sessions in one process; one thread pulls a 20 ms block from every session's ``PlayoutBuffer`` every 20 ms (a
sound card's callback). Each session's model answers every 2 s with 1 s of audio emitted at once, so its playout
waits for room most of the time and each pull that makes room may wake the loop (``call_soon_threadsafe``).
Two ways, side by side, each in a fresh process, interleaved: ``half`` (a waiting ``put`` is woken once half the
buffer has played: what core does) and ``per-block`` (woken after every pull: core before d0c7f54). Printed:
loop wake-ups from the device thread per second per session, and CPU % of a core per session (device thread
included), with the ratio of ``half`` to ``per-block``.

    python bench/device_wakeups.py            # N = 1, 10, 3 repeats of 5 s
    python bench/device_wakeups.py --quick    # N = 10, 1 repeat of 2 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from agentsession import (
    Agent,
    AgentAudio,
    AgentSession,
    AudioFrame,
    BufferedTransport,
    ModelOptions,
    RealTimePipeline,
    ResponseDone,
)
from agentsession._manager import discover
from agentsession.testing import FakeRealtimeModel

RATE = 24000
BLOCK = RATE // 50  # 20 ms


class BurstModel(FakeRealtimeModel):
    """Every 2 s, a response of 1 s of audio, all of it at once."""

    async def start(self, options: ModelOptions) -> None:
        await super().start(options)
        self._task = asyncio.get_running_loop().create_task(self._answer())

    async def _answer(self) -> None:
        frame = AudioFrame(np.full((BLOCK, 1), 1000, np.int16), RATE)
        for n in range(10**9):
            rid = f"burst-{n}"
            for _ in range(50):
                self.channel.emit(AgentAudio(frame, response_id=rid))
            self.channel.emit(ResponseDone(response_id=rid))
            await asyncio.sleep(2.0)

    async def close(self) -> None:
        self._task.cancel()
        await super().close()


class DeviceTransport(BufferedTransport):
    """Output pulled by the shared device thread; no input (the model answers on its own)."""

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        await asyncio.Event().wait()
        yield AudioFrame.silence(0.02, RATE)


def device(transports: list[DeviceTransport], stop: threading.Event) -> None:
    tick = time.monotonic()
    while not stop.is_set():
        for transport in transports:
            transport.playout.pull(BLOCK)
        tick += 0.02
        time.sleep(max(0.0, tick - time.monotonic()))


async def child(n: int, seconds: float, way: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    wakes = 0
    threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        nonlocal wakes
        wakes += 1
        return threadsafe(callback, *args, context=context)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    transports = [DeviceTransport(RATE) for _ in range(n)]
    if way == "per-block":
        for transport in transports:
            transport.playout._low_water = transport.playout._max_samples
    sessions = [AgentSession(Agent(instructions="burst"), RealTimePipeline(BurstModel())) for _ in range(n)]
    for session, transport in zip(sessions, transports, strict=True):
        await session.start(transport=transport)
    stop = threading.Event()
    thread = threading.Thread(target=device, args=(transports, stop), daemon=True)
    thread.start()
    await asyncio.sleep(1.0)  # warm-up
    wakes0, cpu0, wall0 = wakes, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    woke, cpu, wall = wakes - wakes0, time.process_time() - cpu0, time.perf_counter() - wall0
    stop.set()
    thread.join()
    for session in sessions:
        await session.close()
    return {"n": n, "way": way, "wakes_per_s_per_session": woke / wall / n,
            "cpu_pct_per_session": 100.0 * cpu / wall / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 10, one repeat of 2 s (what CI runs)")
    parser.add_argument("-n", type=int, action="append", help="session counts (repeatable)")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--child", choices=("half", "per-block"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    ns = args.n or ([10] if args.quick else [1, 10])
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    if args.child:
        print(json.dumps(asyncio.run(child(ns[0], seconds, args.child))))
        return
    env = {**os.environ, "AGENTSESSION_DISABLE_PLUGINS": ",".join(p.name for p in discover())}  # core alone
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"{'N':>4} {'wake-ups/s/session: per-block':>30} {'half':>6} {'cpu %/session: per-block':>25} {'half':>6}"
          f" {'half/per-block':>15}")
    for n in ns:
        got: dict[str, list[dict[str, Any]]] = {"per-block": [], "half": []}
        for _ in range(repeats):
            for way in got:
                out = subprocess.run([sys.executable, __file__, "--child", way, "-n", str(n), "--seconds", str(seconds)],
                                     env=env, capture_output=True, text=True, check=True).stdout
                got[way].append(json.loads(out.strip().splitlines()[-1]))
        wakes = {w: statistics.median(r["wakes_per_s_per_session"] for r in rows) for w, rows in got.items()}
        cpu = {w: statistics.median(r["cpu_pct_per_session"] for r in rows) for w, rows in got.items()}
        print(f"{n:>4} {wakes['per-block']:>30.1f} {wakes['half']:>6.1f} {cpu['per-block']:>25.3f} {cpu['half']:>6.3f}"
              f" {cpu['half'] / cpu['per-block']:>15.2f}")


if __name__ == "__main__":
    main()
