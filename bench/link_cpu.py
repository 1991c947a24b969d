"""What a provider link costs: CPU and memory per session of a realtime plugin on its real SDK, over a websocket.

N sessions in one process, each ``AgentSession(Agent, RealTimePipeline(<plugin>))`` talking to the plugin's own
fake server (``agentsession_openai.fake.realtime`` or ``agentsession_gemini.fake``, the real wire protocol, TLS
for Gemini) in a process of its own, whose CPU is not counted. Each session's caller sends 20 ms frames in real
time, 1.5 s of "speech" (a tone the fakes' energy VADs hear) in every 5 s, silence otherwise; the fake ends the
turn after its silence and answers with 2.5 s of audio in 100 ms chunks; a paced device (``PacedTransport``,
20 ms blocks in real time) plays it. Callers start at phases spread over the 5 s cycle, as users who arrived
at different times.

``--compare PY`` runs the same measurement under other interpreters, interleaved with this one, one process at
a time (the agent side uses only the public API, so ``PY`` may be a wrapper that puts an older commit's
``core/src`` and plugin ``src`` folders on ``PYTHONPATH``): the way to measure a change to a link against the
previous commit.

    python bench/link_cpu.py --provider gemini -n 10 -n 50
    python bench/link_cpu.py --provider gemini --compare /tmp/base/py --repeat 2
    python bench/link_cpu.py --quick          # both providers, N = 5, 3 s (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from child_server import ChildServer

ROOT = Path(__file__).resolve().parent
RATES = {"openai": 24000, "gemini": 16000}  # the rate each model takes the user's audio at
CYCLE, SPEECH, ANSWER, CHUNK = 5.0, 1.5, 2.5, 0.1
OPENAI_KEY = "sk-test-fake-realtime-0123456789abcdef"  # the key the OpenAI fake accepts
GEMINI_KEY = "bench-key-0123456789abcdef"

# ---------------------------------------------------------------------------------------------- server


def serve(pipe: Connection, provider: str) -> None:
    """The fake server's process (see ``ChildServer``): sends ``(base_url, cafile)``, then runs until "stop"."""
    gc.disable()  # short run, acyclic garbage: no collection pauses in the answers' pacing

    async def run() -> None:
        stop = asyncio.Event()
        server: Any
        if provider == "openai":
            from agentsession_openai.fake.realtime import FakeRealtimeServer

            server = FakeRealtimeServer()
            server.reply_audio, server.chunk, server.chunk_delay = ANSWER, CHUNK, CHUNK
        else:
            from agentsession_gemini.fake import FakeLiveServer

            server = FakeLiveServer(reply_chunks=round(ANSWER / CHUNK), chunk_seconds=CHUNK, chunk_delay=CHUNK,
                                    silence_ms=500)
        async with server:
            loop = asyncio.get_running_loop()

            def on_message() -> None:  # "stop", or the parent is gone
                with contextlib.suppress(EOFError, OSError):
                    pipe.recv()
                    pipe.send(list(server.protocol_errors))
                stop.set()

            loop.add_reader(pipe.fileno(), on_message)
            cafile = str(getattr(server, "cert_path", "") or "")
            pipe.send((server.base_url, cafile))
            await stop.wait()
            loop.remove_reader(pipe.fileno())

    asyncio.run(run())


class ServerProcess(ChildServer):
    def __init__(self, provider: str) -> None:
        super().__init__(serve, provider, name=f"fake-{provider}")
        self.base_url, self.cafile = self.hello


# ---------------------------------------------------------------------------------------------- agent


async def agent(provider: str, n: int, seconds: float, warmup: float, base_url: str, cafile: str) -> dict[str, Any]:
    """N sessions against the fake at ``base_url``; the window's CPU, RSS and what was heard."""
    from agentsession import Agent, AgentSession, AudioFrame, PacedTransport, RealTimePipeline

    rate = RATES[provider]
    frame_samples = rate // 50
    tone = (np.sin(2 * np.pi * 400 * np.arange(frame_samples) / rate) * 8000).astype(np.int16).reshape(-1, 1)
    speech, silence = AudioFrame(tone, rate), AudioFrame(np.zeros_like(tone), rate)
    speech_frames, cycle_frames = round(SPEECH * 50), round(CYCLE * 50)

    class Caller(PacedTransport):
        def __init__(self, phase: float) -> None:
            super().__init__(24000)
            self.k = round(phase * cycle_frames)
            self.out = 0.0

        async def audio_input(self) -> AsyncIterator[AudioFrame]:
            loop = asyncio.get_running_loop()
            t = loop.time()
            while True:
                yield speech if self.k % cycle_frames < speech_frames else silence
                self.k += 1
                t += 0.02
                await asyncio.sleep(t - loop.time())

        def on_output(self, samples: Any, real: int, at: float) -> None:
            self.out += real / 24000

    def model() -> Any:
        if provider == "openai":
            from agentsession_openai import OpenAIRealtime

            return OpenAIRealtime(api_key=OPENAI_KEY, base_url=base_url)
        from google.genai import types

        from agentsession_gemini import GeminiRealtime

        options = types.HttpOptions(base_url=base_url, async_client_args={"ssl": client_ssl})
        return GeminiRealtime(api_key=GEMINI_KEY, http_options=options)

    client_ssl = ssl.create_default_context(cafile=cafile) if cafile else None
    errors: list[str] = []
    pairs: list[tuple[Any, Caller]] = []
    rss0 = _rss_mb()
    try:
        for i in range(n):
            transport = Caller(i / n)
            session = AgentSession(Agent(instructions="You are a helpful voice assistant."), RealTimePipeline(model()))
            session.on("error", lambda event: errors.append(str(event)))
            await transport.start()
            await session.start(transport=transport)
            pairs.append((session, transport))
        await asyncio.sleep(warmup)
        out0 = sum(t.out for _, t in pairs)
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        heard = (sum(t.out for _, t in pairs) - out0) / n
        rss = _rss_mb()
    finally:
        await asyncio.gather(*(s.close() for s, _ in pairs), return_exceptions=True)
        await asyncio.gather(*(t.close() for _, t in pairs), return_exceptions=True)
    return {"provider": provider, "sessions": n, "seconds": round(wall, 2),
            "cpu_pct_per_session": round(100 * cpu / wall / n, 4), "rss_mb_per_session": round((rss - rss0) / n, 2),
            "agent_audio_s_per_session": round(heard, 2), "errors": errors[:3], "python": sys.executable}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- driver


def run_child(python: str, provider: str, n: int, seconds: float, warmup: float, server: ServerProcess) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--child", provider, "-n", str(n), "--seconds", str(seconds),
               "--warmup", str(warmup), "--url", server.base_url, "--cafile", server.cafile]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120 + 3 * (seconds + warmup))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{python} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=sorted(RATES), action="append")
    parser.add_argument("-n", type=int, action="append", help="session counts (repeatable)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--compare", action="append", default=[], metavar="PY",
                        help="another interpreter to measure the same way, interleaved (repeatable)")
    parser.add_argument("--quick", action="store_true", help="both providers, N = 5, 3 s windows")
    parser.add_argument("--child", choices=sorted(RATES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n = (args.n or [10])[0]
        print(json.dumps(asyncio.run(agent(args.child, n, args.seconds, args.warmup, args.url, args.cafile))))
        return
    if args.quick:
        args.provider, args.n, args.seconds, args.warmup = args.provider or sorted(RATES), args.n or [5], 3.0, 2.0
    pythons = [sys.executable, *args.compare]
    failed = False
    for provider in args.provider or ["openai", "gemini"]:
        server = ServerProcess(provider)
        try:
            print(f"{provider}: % of a core per session (agent process), RSS MB per session, agent audio heard s/session")
            for n in args.n or [10, 50]:
                rows: dict[str, list[dict[str, Any]]] = {p: [] for p in pythons}
                for rep in range(args.repeat):
                    order = pythons if rep % 2 == 0 else pythons[::-1]  # alternate who goes first
                    for python in order:
                        rows[python].append(run_child(python, provider, n, args.seconds, args.warmup, server))
                first = statistics.median(r["cpu_pct_per_session"] for r in rows[pythons[0]])
                for python in pythons:
                    cpu = statistics.median(r["cpu_pct_per_session"] for r in rows[python])
                    rss = statistics.median(r["rss_mb_per_session"] for r in rows[python])
                    heard = min(r["agent_audio_s_per_session"] for r in rows[python])
                    errors = [e for r in rows[python] for e in r["errors"]]
                    print(f"  N={n:<4} {cpu:7.3f} % (x{cpu / first:.2f})  {rss:6.2f} MB  {heard:5.2f} s heard"
                          f"  {'errors: ' + errors[0] if errors else ''}  [{python}]", flush=True)
                    expected = args.seconds * ANSWER / CYCLE * 0.5  # at least half the answers' audio
                    if errors or heard < expected:
                        failed = True
        finally:
            server.close()
    if failed:
        sys.exit("a run had session errors, or its sessions heard too little of the answers")


if __name__ == "__main__":
    from importlib.metadata import entry_points

    # core and the plugin alone: installed observer plugins (a recorder, say) would add their own work
    os.environ.setdefault("AGENTSESSION_DISABLE_PLUGINS", ",".join(ep.name for ep in entry_points(group="agentsession")))
    main()
