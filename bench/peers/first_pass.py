"""Where the harness's start puts the echo's callers: N agentsession sessions started as ``agentsession_echo.py``
starts them (one after the other, no yield between), then the pass that runs every session's first frame.
Prints how long the starts and that pass took, how far apart the callers' 20 ms clocks start (each starts at its
session's first frame) and how far ahead of its caller each null device's clock runs (it starts on the first
frame it plays).

    cd ../shared/peers && python /path/to/bench/peers/first_pass.py 200
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

sys.path.insert(0, ".")  # the harness's folder
import anchor_common  # noqa: E402

from agentsession import Agent, AgentSession, RealTimePipeline  # noqa: E402
from agentsession_echo import CallerTransport, EchoModel  # noqa: E402

callers: dict[int, float] = {}
devices: dict[int, float] = {}
all_played = asyncio.Event()
wanted = 0
_wait, _play = anchor_common.Pacer.wait_next, anchor_common.PlayoutClock.play


async def wait_next(self: anchor_common.Pacer) -> None:
    if self._t0 is None:
        callers[id(self._counters)] = asyncio.get_running_loop().time()
    await _wait(self)


async def play(self: anchor_common.PlayoutClock, duration: float) -> None:
    if self._next is None:
        devices[id(self._counters)] = asyncio.get_running_loop().time()
        if len(devices) == wanted:
            all_played.set()
    await _play(self, duration)


anchor_common.Pacer.wait_next = wait_next  # type: ignore[method-assign]
anchor_common.PlayoutClock.play = play  # type: ignore[method-assign]


async def main(n: int) -> None:
    global wanted
    wanted = n
    loop = asyncio.get_running_loop()
    pairs = []
    began = time.perf_counter()
    for _ in range(n):
        transport = CallerTransport(anchor_common.Counters())
        session = AgentSession(Agent(instructions="x"), RealTimePipeline(EchoModel()))
        await transport.start()
        await session.start(transport=transport)
        pairs.append((session, transport))
    started = time.perf_counter() - began
    first = loop.time()
    await all_played.wait()
    passed = loop.time() - first
    starts = sorted(callers.values())
    ahead = [devices[k] - callers[k] for k in callers]
    print(f"N={n}: starts {started * 1e3:.1f} ms, first pass {passed * 1e3:.1f} ms, callers spread over "
          f"{(starts[-1] - starts[0]) * 1e3:.2f} ms ({(starts[-1] - starts[0]) / max(1, n - 1) * 1e6:.0f} us per "
          f"session), devices ahead by {statistics.median(ahead) * 1e3:.2f} ms median, {max(ahead) * 1e3:.2f} max")
    for session, transport in pairs:
        await session.close()
        await transport.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
