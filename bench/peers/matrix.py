"""The peers' workloads (``../shared/peers``: the echo and OpenAI Realtime) for agentsession, its floors and
LiveKit Agents, interleaved in one run, one process at a time, the order reversed on every other repeat; prints
each cell's CPU per session and the ratios to LiveKit, raw and above the floor, and appends the rows to a file.

Per workload and N, the runs are:

- ``floor``: no framework (echo: the harness's ``bare_echo.py``; realtime: ``realtime_floor.py``, a raw websocket);
- ``floor-aiohttp`` (realtime): the same floor on ``aiohttp``'s websocket, LiveKit's (``websockets`` is ours: the
  ``openai`` SDK's); the table's last column is then each framework above its own library's floor;
- ``parts``: agentsession without its session (echo: ``echo_wired.py``; realtime: ``realtime_model_only.py``);
- ``agentsession``: the harness's own agentsession script, on this checkout (or ``--python``);
- ``before`` (with ``--before PY``): the same script under another interpreter, a wrapper that puts an older
  commit's ``src`` folders first on ``PYTHONPATH``;
- ``livekit``: the harness's LiveKit script in ``--livekit`` (see the harness's README for that venv).

    python bench/peers/matrix.py --workload echo -n 50 -n 200 --repeats 2
    python bench/peers/matrix.py --workload realtime -n 10 -n 50 -n 100 --seconds 20
    python bench/peers/matrix.py --workload echo -n 50 --loop uvloop   # every run on uvloop (the fast extra's)
    python bench/peers/matrix.py --workload echo -n 50 --phases random # callers that did not all start at once
    python bench/peers/matrix.py --workload echo -n 200 --census       # the event loop's work per frame, counted
    python bench/peers/matrix.py --workload echo -n 50 --device-lead 5 # a null device that does not wait on early frames
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = {
    "echo": {"floor": "bare_echo.py", "parts": str(HERE / "echo_wired.py"),
             "agentsession": "agentsession_echo.py", "before": "agentsession_echo.py", "livekit": "livekit_echo.py"},
    "realtime": {"floor": str(HERE / "realtime_floor.py"),
                 "floor-aiohttp": [str(HERE / "realtime_floor.py"), "--client", "aiohttp"],
                 "parts": str(HERE / "realtime_model_only.py"),
                 "agentsession": "agentsession_realtime.py", "before": "agentsession_realtime.py",
                 "livekit": "livekit_realtime.py"},
}


#: a harness script run through ``-c``: its ``asyncio.run`` gets uvloop's loop (``--loop uvloop``)
UVLOOP = "import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())"
#: every caller's first frame at a random point of the 20 ms period (seeded: the same phases for every run), as
#: calls that arrived at different times have; the harness starts them all in one loop pass (``--phases random``)
RANDOM_PHASES = """
import anchor_common, random
_rng, _wait = random.Random(1234), anchor_common.Pacer.wait_next
async def _wait_next(self):
    if self._t0 is None:
        self._t0 = asyncio.get_running_loop().time() + _rng.uniform(0.0, self._period)
    await _wait(self)
anchor_common.Pacer.wait_next = _wait_next
"""
#: ``--device-lead MS`` (echo): the null device's clock starts ``MS`` before its first frame, so a frame that comes
#: up to ``MS`` earlier than the first did (against its caller's clock) plays at once instead of waiting on a timer of
#: its own; one that comes more than 20 ms - ``MS`` later than the first still finds the device dry. A diagnostic:
#: how much of each run's CPU is the harness's device waiting on frames its first frame's lateness made early
DEVICE_LEAD = """
import anchor_common
_lead, _play = {lead}, anchor_common.PlayoutClock.play
async def _led(self, duration):
    if self._next is None:
        self._next = asyncio.get_running_loop().time() - _lead
    await _play(self, duration)
anchor_common.PlayoutClock.play = _led
"""
#: ``--census``: in the measured window, the event loop's passes and the callbacks it ran, and the null device's
#: plays that found it busy (the frame came before the device had room, and waits on a timer of its own): the
#: loop's work per input frame, by count. The counting has a CPU cost of its own: a census run's CPU is not the
#: matrix's. The window is the harness's (``record_lateness``), as its callers' clocks see it
CENSUS = """
import asyncio.base_events, asyncio.events, atexit, json, anchor_common, realtime_common
_census, _window = {"passes": 0, "callbacks": 0, "plays": 0, "waited": 0}, [False]
_run_once, _run, _wait_next = asyncio.base_events.BaseEventLoop._run_once, asyncio.events.Handle._run, \
    anchor_common.Pacer.wait_next
def _pass(self):
    _census["passes"] += _window[0]
    _run_once(self)
def _callback(self):
    _census["callbacks"] += _window[0]
    _run(self)
async def _paced(self):
    _window[0] = self._counters.record_lateness
    await _wait_next(self)
def _counted(play):
    async def counted(self, duration):
        if _window[0]:
            _census["plays"] += 1
            _census["waited"] += self._next is not None and self._next > asyncio.get_running_loop().time()
        await play(self, duration)
    return counted
asyncio.base_events.BaseEventLoop._run_once, asyncio.events.Handle._run = _pass, _callback
anchor_common.Pacer.wait_next = _paced
anchor_common.PlayoutClock.play = _counted(anchor_common.PlayoutClock.play)
realtime_common.TurnPlayoutClock.play = _counted(realtime_common.TurnPlayoutClock.play)
atexit.register(lambda: print("CENSUS " + json.dumps(_census), file=sys.stderr))
"""
#: then the script itself, with its own folder first on ``sys.path`` as ``python script.py`` would have it
RUN = ("sys.argv = sys.argv[1:]; sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0]))); "
       "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_one(args: argparse.Namespace, workload: str, tag: str, python: str, n: int) -> dict:
    boot = [UVLOOP] if args.loop == "uvloop" else []
    if args.phases == "random":
        boot.append(RANDOM_PHASES)
    if args.device_lead:
        boot.append(DEVICE_LEAD.format(lead=args.device_lead / 1000))
    if args.census:
        boot.append(CENSUS)
    prefix = ["-c", "\n".join(["import asyncio, os, runpy, sys", *boot, RUN])] if boot else []
    script = SCRIPTS[workload][tag]
    cmd = [python, *prefix, *([script] if isinstance(script, str) else script), "--sessions", str(n),
           "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    env = {**os.environ, "REALTIME_SERVER_PY": args.python}
    proc = subprocess.run(cmd, cwd=args.peers, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"{tag} N={n} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    row: dict = json.loads(lines[-1])
    row.update(tag=tag, workload=workload, run=args.run, loop=args.loop, phases=args.phases,
               device_lead_ms=args.device_lead)
    census = [line for line in proc.stderr.splitlines() if line.startswith("CENSUS ")]
    if census:
        row["census"] = json.loads(census[-1].removeprefix("CENSUS "))
    return row


def census_table(rows: list[dict]) -> None:
    """The loop's work per input frame, by count (``--census``)."""
    print("| N | repeat | run | loop passes per input frame | callbacks per input frame | device plays that waited |")
    print("|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["sessions"], r["repeat"])):
        c, frames = row["census"], max(1, row["frames_in"])
        print(f"| {row['sessions']} | {row['repeat']} | {row['tag']} | {c['passes'] / frames:.2f} | "
              f"{c['callbacks'] / frames:.2f} | {c['waited'] / max(1, c['plays']):.0%} of {c['plays']} |")


def table(rows: list[dict], tags: list[str]) -> None:
    cells: dict[tuple[int, int], dict[str, dict]] = {}
    for row in rows:
        cells.setdefault((row["sessions"], row["repeat"]), {})[row["tag"]] = row
    print("| N | repeat | " + " | ".join(tags) + " | agentsession / LiveKit | above the floor | underruns | "
          "longest stall ms | RSS MB |" + (" above own library's floor |" if "floor-aiohttp" in tags else ""))
    print("|---" * (len(tags) + 7 + ("floor-aiohttp" in tags)) + "|")
    for (n, rep), cell in sorted(cells.items()):
        cpu = {t: cell[t]["cpu_pct_of_core_per_session"] for t in tags if t in cell}
        ours, lk, floor, lk_floor = (cpu.get(t) for t in ("agentsession", "livekit", "floor", "floor-aiohttp"))
        raw = f"{ours / lk:.2f}" if ours and lk else "-"
        above = f"{(ours - floor) / (lk - floor):.2f}" if ours and lk and floor is not None and lk > floor else "-"
        pick = [t for t in ("agentsession", "livekit") if t in cell]
        under = " / ".join(str(cell[t].get("output_underruns")) for t in pick)
        stall = " / ".join(f"{cell[t].get('input_lateness_ms_max', 0):.0f}" for t in pick)
        rss = " / ".join(f"{cell[t]['rss_mb']:.0f}" for t in pick)
        own = ""
        if "floor-aiohttp" in tags:
            floors = ours and lk and floor and lk_floor and lk > lk_floor
            own = f" {(ours - floor) / (lk - lk_floor):.2f} |" if floors else " - |"
        print(f"| {n} | {rep} | " + " | ".join(f"{cpu[t]:.3f}" if t in cpu else "-" for t in tags)
              + f" | {raw} | {above} | {under} | {stall} | {rss} |" + own)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=sorted(SCRIPTS), required=True)
    p.add_argument("-n", "--sessions", type=int, action="append", help="N (repeatable)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seconds", type=float, default=None, help="window (echo 10 s, realtime 20 s)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="every run's event loop")
    p.add_argument("--phases", choices=("harness", "random"), default="harness",
                   help="the callers' phases: as the harness starts them, or random (see RANDOM_PHASES)")
    p.add_argument("--peers", default=str(ROOT.parent / "shared" / "peers"), help="the harness's folder")
    p.add_argument("--python", default=sys.executable, help="python with this checkout installed")
    p.add_argument("--before", default=None, help="a second agentsession interpreter (an older commit's tree)")
    p.add_argument("--livekit", default="/tmp/peer-livekit/bin/python")
    p.add_argument("--skip", action="append", default=[], help="a tag not to run (floor, parts, livekit, ...)")
    p.add_argument("--device-lead", type=float, default=0.0, metavar="MS",
                   help="echo: start each null device's clock MS before its first frame (see DEVICE_LEAD)")
    p.add_argument("--census", action="store_true", help="count the event loop's work instead (CPU not comparable)")
    p.add_argument("--out", default=None, help="append the rows here (JSON lines)")
    p.add_argument("--run", default=time.strftime("%Y%m%d-%H%M%S"), help="this run's name in the rows")
    args = p.parse_args()
    if args.census and args.loop == "uvloop":
        p.error("--census counts asyncio's own loop: not with --loop uvloop")
    if not 0 <= args.device_lead < 20 or (args.device_lead and args.workload != "echo"):
        p.error("--device-lead takes 0 to 20 ms (less than a frame), with --workload echo")
    args.seconds = args.seconds or (10.0 if args.workload == "echo" else 20.0)
    pythons = {"floor": args.python, "parts": args.python, "agentsession": args.python, "livekit": args.livekit}
    if "floor-aiohttp" in SCRIPTS[args.workload]:
        pythons["floor-aiohttp"] = args.python
    if args.before:
        pythons["before"] = args.before
    tags = [t for t in ("floor", "floor-aiohttp", "parts", "before", "agentsession", "livekit")
            if t in pythons and t not in args.skip]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows: list[dict] = []
    for rep in range(1, args.repeats + 1):
        for n in args.sessions or [50]:
            for tag in tags if rep % 2 else tags[::-1]:
                row = run_one(args, args.workload, tag, pythons[tag], n)
                row.update(repeat=rep, commit=commit if tag != "before" else "before")
                rows.append(row)
                print(f"{tag:>12} N={n:<4} rep {rep}: {row['cpu_pct_of_core_per_session']:.3f} % of a core/session, "
                      f"underruns {row.get('output_underruns')}, RSS {row['rss_mb']:.0f} MB", file=sys.stderr)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    if args.census:
        census_table(rows)
    else:
        table(rows, tags)


if __name__ == "__main__":
    main()
