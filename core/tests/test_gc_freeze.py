"""The first session's start freezes the heap the imports built, once per process (``_gc.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r'''
import asyncio, gc, json, weakref
from agentsession import Agent, AgentSession, RealTimePipeline
from agentsession.testing import FakeRealtimeModel, FakeTransport

class Cycle:
    pass

async def one_session() -> None:
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(Agent(instructions="x"), RealTimePipeline(FakeRealtimeModel()))
    await session.start(transport=transport)
    await session.close()
    await transport.close()

async def main() -> None:
    gc.disable()  # only the start's own collection may find the cycle
    garbage = Cycle()
    garbage.me = garbage
    collected = []
    weakref.finalize(garbage, collected.append, True)
    del garbage
    before = gc.get_freeze_count()
    await one_session()
    first = gc.get_freeze_count()
    found_by_start = bool(collected)
    await one_session()
    print(json.dumps({"before": before, "first": first, "second": gc.get_freeze_count(),
                      "garbage_collected_first": found_by_start}))

asyncio.run(main())
'''


def _run(**env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != "AGENTSESSION_GC_FREEZE"} | env
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_first_start_collects_then_freezes_once() -> None:
    result = _run()
    before, first = result["before"], result["first"]
    assert isinstance(before, int) and isinstance(first, int)
    # modules, classes, the imports' objects (Python 3.12.1 reports a few hundred frozen at startup already)
    assert first > before + 1000
    # the second session's start froze nothing more (frozen objects freed by reference counting leave the count)
    assert result["second"] <= result["first"]
    assert result["garbage_collected_first"] is True  # garbage of before the start was collected, not kept


def test_opt_out_keeps_the_heap_as_it_is() -> None:
    result = _run(AGENTSESSION_GC_FREEZE="0")
    assert result["first"] == result["second"] == result["before"]
    assert result["garbage_collected_first"] is False
