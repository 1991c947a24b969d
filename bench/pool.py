"""Figures for core's process pool, with the parrot agent (examples/parrot.py, every installed plugin loaded):

1. job start latency, from ``submit`` (the registry's assignment) to the entrypoint running: cold (a process
   started for the job) vs warm (a process already waiting), p50/p95;
2. jobs at the load threshold: realtime parrot conversations (file mode, a looped WAV as the user) added one
   at a time; the machine's CPU busy fraction with each count, and the count where
   load = max(jobs / max_processes, CPU) first reaches the threshold;
3. memory per idle pooled process (RSS and PSS).

    .venv/bin/python bench/pool.py [--quick] [--threshold 0.75] [--max-processes 10 (4 with --quick)]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

from agentsession._pool import CPUMonitor, JobSpec, ProcessPool

ROOT = Path(__file__).resolve().parent.parent
PARROT = [sys.executable, str(ROOT / "examples" / "parrot.py")]
HELLO = ROOT / "examples" / "hello.wav"


def quiet(process: object, line: str) -> None:
    pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def file_job(name: str, wav: Path, speed: str = "max") -> JobSpec:
    return JobSpec(name, ["--log-level", "WARNING", "file", "--input", str(wav), "--speed", speed])


async def latency(runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cold": [], "warm": []}
    cold = ProcessPool(PARROT, max_processes=1, num_idle_processes=0, output=quiet)
    await cold.start()
    for k in range(runs):
        job = cold.submit(file_job(f"cold-{k}", HELLO))
        await job.started
        out["cold"].append(job.start_latency or 0.0)
        await job.done
    await cold.aclose()
    warm = ProcessPool(PARROT, max_processes=2, num_idle_processes=1, output=quiet)
    await warm.start()
    for k in range(runs):
        await warm.wait_idle()
        job = warm.submit(file_job(f"warm-{k}", HELLO))
        await job.started
        assert job.warm
        out["warm"].append(job.start_latency or 0.0)
        await job.done
    await warm.aclose()
    return out


def pss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1000
    except OSError:
        return None
    return None


async def idle_memory(count: int) -> list[tuple[float, float | None]]:
    pool = ProcessPool(PARROT, max_processes=count, num_idle_processes=count, output=quiet)
    await pool.start()
    await pool.wait_idle()
    await asyncio.sleep(1)  # let them settle after their imports
    found = [(p.rss_mb() or 0.0, pss_mb(p.pid)) for p in pool.processes]
    await pool.aclose()
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def looped_wav(seconds: float, folder: Path) -> Path:
    with wave.open(str(HELLO)) as r:
        params, frames = r.getparams(), r.readframes(r.getnframes())
        per = r.getnframes() / r.getframerate()
    path = folder / "long.wav"
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        for _ in range(int(seconds / per) + 1):
            w.writeframes(frames)
    return path


async def capacity(threshold: float, max_processes: int, window: float, hold: float) -> list[tuple[int, float, float]]:
    """Per number of running conversations: (count, machine CPU busy, the pool's own share of the machine's CPU).
    The machine is shared (other work runs on it): the pool's own share is what the conversations cost."""
    cores = os.cpu_count() or 1
    cpu = CPUMonitor()
    cpu.busy()
    await asyncio.sleep(window)
    rows = [(0, cpu.busy(min_interval=0), 0.0)]
    with tempfile.TemporaryDirectory() as folder:
        wav = looped_wav(hold, Path(folder))
        pool = ProcessPool(PARROT, max_processes=max_processes, num_idle_processes=1, output=quiet)
        await pool.start()
        try:
            for k in range(1, max_processes + 1):
                job = pool.submit(file_job(f"talk-{k}", wav, speed="realtime"))
                await job.started
                await asyncio.sleep(1.0)  # its start-up out of the window
                pids = [p.pid for p in pool.processes if p.job is not None]
                cpu.busy(min_interval=0)
                used, t0 = cpu_seconds(pids), time.monotonic()
                await asyncio.sleep(window)
                own = (cpu_seconds(pids) - used) / (time.monotonic() - t0) / cores
                busy = cpu.busy(min_interval=0)
                rows.append((k, busy, own))
                print(f"  {k} conversations: their CPU {own:.1%} of the machine ({own / k:.1%} each); machine busy "
                      f"{busy:.0%}", flush=True)
                if k / max_processes >= threshold or own >= threshold:
                    break
        finally:
            await pool.aclose(grace=5)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter windows")
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--max-processes", type=int, help="default 10 (4 with --quick)")
    o = parser.parse_args()
    o.max_processes = o.max_processes or (4 if o.quick else 10)
    runs = 5 if o.quick else 20
    print(f"job start latency, submit -> entrypoint running ({runs} runs each):")
    found = await latency(runs)
    for kind, values in found.items():
        print(f"  {kind}: p50 {percentile(values, 0.5) * 1000:.0f} ms, p95 {percentile(values, 0.95) * 1000:.0f} ms, "
              f"mean {statistics.mean(values) * 1000:.0f} ms")
    print("memory per idle pooled process:")
    memory = await idle_memory(2 if o.quick else 4)
    for rss, pss in memory:
        print(f"  RSS {rss:.0f} MB, PSS {pss:.0f} MB" if pss is not None else f"  RSS {rss:.0f} MB")
    print(f"realtime parrot conversations until load >= {o.threshold} (max_processes={o.max_processes}):")
    rows = await capacity(o.threshold, o.max_processes, window=1.0 if o.quick else 5.0, hold=120.0)
    print(f"  machine busy with no conversation (other work on this shared machine): {rows[0][1]:.0%}")
    each = statistics.mean(own / k for k, _, own in rows[1:])
    print(f"  one conversation costs {each:.1%} of this {os.cpu_count()}-core machine: CPU alone reaches "
          f"{o.threshold} at {o.threshold / each:.0f} conversations; with max_processes={o.max_processes} the job "
          f"count caps a worker at {math.ceil(o.threshold * o.max_processes)} jobs")


if __name__ == "__main__":
    asyncio.run(main())
