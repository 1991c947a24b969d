"""What the OpenAI Realtime plugin adds: N sessions against the plugin's fake Realtime server on loopback.

Each session is ``AgentSession(RealTimePipeline(OpenAIRealtime(...)))`` with the paced transport of
``session_overhead.py`` (20 ms of user audio in every 20 ms, sent up the websocket by the plugin) and one
long spoken response, started with ``session.say()``: the server streams ``response.output_audio.delta``
events of 20 ms of 24 kHz pcm16 every 20 ms, on an absolute clock. The server (the plugin's test fake,
``agentsession_openai.fake.realtime``, which builds its events from the SDK's pydantic types
and validates every client event) runs in a separate process, so the CPU measured is the agent's alone.

Latency is from the websocket layer reading a delta off the socket (timestamped as its frame is queued
by ``websockets``, before the SDK parses it) to the session calling ``Transport.play`` with that audio;
20 ms in and 20 ms out, the k-th frame played is the k-th delta received. Next to it, at the same N,
``session_overhead.py``'s no-network fake model through the same session, so the cost of the websocket
and SDK path is the ratio.

    python bench/openai_realtime.py            # N = 1, 50, 5 s each
    python bench/openai_realtime.py --quick    # N = 1, 10, 1.5 s each
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import os
import signal
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from child_server import ChildServer  # noqa: E402
from openai.resources.realtime.realtime import AsyncRealtimeConnection  # noqa: E402
from session_overhead import MeasuringTransport, SessionWire, measure, pct  # noqa: E402
from websockets.frames import Frame  # noqa: E402

from agentsession import Agent, AgentSession, RealTimePipeline  # noqa: E402
from agentsession._manager import discover  # noqa: E402
from agentsession_openai import OpenAIRealtime  # noqa: E402
from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer, Reply  # noqa: E402
from agentsession_openai.fake.realtime import Connection as FakeConnection  # noqa: E402

CHUNK = 0.02  # seconds of audio per delta, and between deltas
WARMUP = 0.3
AUDIO_DELTA = b'"response.output_audio.delta"'
SAY = "This is a long benchmark answer, streamed in real time, twenty milliseconds at a time."

# ---------------------------------------------------------------------------------------------- server

_TICK: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("bench_tick", default=None)


class PacedServer(FakeRealtimeServer):
    """The plugin's fake, speaking ``audio`` seconds per reply in real time: ``CHUNK`` seconds of audio per
    delta, one delta every ``CHUNK`` seconds on an absolute clock (the fake's own ``chunk_delay`` is a
    fixed sleep between sends, which drifts late under load)."""

    def __init__(self, audio: float) -> None:
        super().__init__()
        self.reply_audio = audio
        self.chunk = CHUNK
        self.late: list[float] = []  # per delta: how late it went out, in seconds

    @property
    def chunk_delay(self) -> float:
        """Read by ``_speak`` once per delta, right after sending it: the time left to the next tick."""
        tick = _TICK.get()
        if tick is None:
            return self.chunk
        now = asyncio.get_running_loop().time()
        self.late.append(now - tick[0])
        tick[0] += self.chunk
        return max(0.0, tick[0] - now)

    @chunk_delay.setter
    def chunk_delay(self, value: float) -> None:  # the base class sets a fixed delay: pacing replaces it
        pass

    async def _speak(self, conn: FakeConnection, rid: str, item_id: str, reply: Reply, output_index: int = 0) -> str:
        _TICK.set([asyncio.get_running_loop().time()])  # this response's task has a context of its own
        return await super()._speak(conn, rid, item_id, reply, output_index)

    async def _on_event(self, conn: FakeConnection, event: Any, raw: dict[str, Any]) -> None:
        await super()._on_event(conn, event, raw)
        if event.type == "input_audio_buffer.append":  # validated and handled: don't keep 10 a second
            conn.received.pop()


def serve(pipe: Connection, audio: float) -> None:
    """The server process: sends its base URL, then answers ``"stats"`` (its CPU seconds so far and how
    late each delta went out since the last ``"stats"``) and ``"stop"`` (its protocol errors, then exits);
    exits too when the parent's end of the pipe closes."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us by the pipe
    gc.disable()  # the server is the benchmark's clock: no collection pauses (its garbage is acyclic, a short run)

    async def run() -> None:
        stop = asyncio.Event()
        server = PacedServer(audio)
        async with server:

            def on_message() -> None:
                try:
                    message = pipe.recv()
                except (EOFError, OSError):  # the parent is gone
                    stop.set()
                    return
                if message == "stats":
                    pipe.send((time.process_time(), server.late))
                    server.late = []
                elif message == "stop":
                    pipe.send(list(server.protocol_errors))
                    stop.set()

            loop = asyncio.get_running_loop()
            loop.add_reader(pipe.fileno(), on_message)
            pipe.send(server.base_url)
            await stop.wait()
            loop.remove_reader(pipe.fileno())

    asyncio.run(run())


class ServerProcess(ChildServer):
    """``with ServerProcess(audio) as server``: the fake in a child process, always stopped on exit."""

    def __init__(self, audio: float) -> None:
        super().__init__(serve, audio, name="fake-realtime-server")
        self.base_url: str = self.hello

    def stats(self) -> tuple[float, list[float]]:
        """The server's CPU seconds so far, and how late each delta went out since the last call."""
        cpu, late = self.ask("stats")
        return float(cpu), list(late)


# ---------------------------------------------------------------------------------------------- agent


class ProbedRealtime(OpenAIRealtime):
    """``OpenAIRealtime`` noting when each audio delta's websocket frame was read off the socket."""

    def __init__(self, base_url: str, emitted: deque[float], parse: list[float]) -> None:
        super().__init__(api_key=API_KEY, base_url=base_url)
        self.emitted = emitted  # shared with the transport: popped in play() order
        self.parse = parse  # socket read -> the plugin handling the parsed event (websockets + SDK)
        self._arrived: deque[float] = deque()
        self.unprobed = 0  # deltas the probe missed (0, or the latencies are misaligned)

    async def link_open(self, first: bool) -> AsyncRealtimeConnection:
        conn = await super().link_open(first)
        # the plugin has read session.updated: no delta is queued yet, so the probe sees every one of them
        assembler = conn._connection.recv_messages
        put = assembler.put
        arrived = self._arrived

        def probe(frame: Frame) -> None:  # called from the protocol's data_received, per frame
            data = frame.data
            if frame.fin and AUDIO_DELTA in (data.tobytes() if isinstance(data, memoryview) else data):
                arrived.append(time.perf_counter())
            put(frame)

        assembler.put = probe  # type: ignore[method-assign]
        return conn

    def _on_audio(self, rid: str, item_id: str, content_index: int, delta: str) -> None:
        now = time.perf_counter()
        if self._arrived:
            at = self._arrived.popleft()
        else:
            at = now
            self.unprobed += 1
        current = self._current
        if current is not None and current.server_id == rid:  # what the plugin forwards (not a stopped response)
            self.emitted.append(at)
            self.parse.append(now - at)
        super()._on_audio(rid, item_id, content_index, delta)


class RealtimeWire:
    def __init__(self, latencies: list[float], parse: list[float], base_url: str) -> None:
        emitted: deque[float] = deque()
        self.transport = MeasuringTransport(latencies, emitted)
        self.model = ProbedRealtime(base_url, emitted, parse)
        self.session = AgentSession(Agent(instructions="bench"), RealTimePipeline(self.model))

    async def start(self) -> None:
        await self.transport.start()
        await self.session.start(transport=self.transport)
        await self.session.say(SAY)

    async def close(self) -> None:
        await self.session.close()
        await self.transport.close()


async def measure_realtime(server: ServerProcess, n: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    parse: list[float] = []
    errors: list[dict[str, Any]] = []
    wires = [RealtimeWire(latencies, parse, server.base_url) for _ in range(n)]
    try:
        for wire in wires:
            wire.session.on("error", errors.append)
            await wire.start()  # connects: starts are spread by the handshakes, as real users arrive
        await asyncio.sleep(WARMUP)
        gc.collect()
        # what arrived during the collection drains before measuring, not into it (a delta read off the
        # socket just before gc.collect() would otherwise count the collection as latency)
        await asyncio.sleep(0.1)
        latencies.clear()
        parse.clear()
        server0, _ = server.stats()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        server1, late = server.stats()
    finally:
        await asyncio.gather(*(wire.close() for wire in wires), return_exceptions=True)
    return {
        "cpu": 100.0 * cpu / wall / n,
        "server_cpu": 100.0 * (server1 - server0) / wall / n,
        "late": late,
        "latencies": latencies,
        "parse": parse,
        "delivered": len(latencies) * CHUNK / (n * wall),  # fraction of real time (1.0: no frame late)
        "errors": errors,
        "unprobed": sum(wire.model.unprobed for wire in wires),
    }


async def main(ns: list[int], seconds: float) -> None:
    audio = WARMUP + seconds + 0.1 * max(ns) + 5.0  # longer than any session's run: one response each
    with ServerProcess(audio) as server:
        print(f"{'N':>4} {'cpu %/session: core':>20} {'openai':>7} {'ratio':>6} {'p50 ms: core':>13} {'openai':>7}"
              f" {'p99 ms: core':>13} {'openai':>7} {'ratio':>6} {'ws+sdk p99':>11}"
              f" {'server: cpu %':>14} {'late max':>9}")
        notes: list[str] = []
        for n in ns:
            cpu_core, lat_core = await measure(SessionWire, n, seconds, aligned=False)
            r = await measure_realtime(server, n, seconds)
            lat: list[float] = r["latencies"]
            print(f"{n:>4} {cpu_core:>20.3f} {r['cpu']:>7.3f} {r['cpu'] / cpu_core:>6.2f}"
                  f" {pct(lat_core, 50):>13.3f} {pct(lat, 50):>7.3f}"
                  f" {pct(lat_core, 99):>13.3f} {pct(lat, 99):>7.3f} {pct(lat, 99) / pct(lat_core, 99):>6.2f}"
                  f" {pct(r['parse'], 99):>11.3f}"
                  f" {r['server_cpu']:>14.3f} {1000 * max(r['late'], default=float('nan')):>9.3f}", flush=True)
            if r["cpu"] * n > 75:
                notes.append(f"N={n}: the agent process used {r['cpu'] * n:.0f}% of its one core (one event loop):"
                             " near saturation the tail is queueing and varies from run to run")
            if r["delivered"] < 0.97:
                notes.append(f"N={n}: only {100 * r['delivered']:.1f}% of real-time audio arrived (server behind?)")
            if r["unprobed"]:
                notes.append(f"N={n}: {r['unprobed']} deltas not seen by the socket probe: latencies misaligned")
            if r["errors"]:
                notes.append(f"N={n}: {len(r['errors'])} session errors, first: {r['errors'][0]}")
    for note in notes + [f"fake server protocol error: {e}" for e in server.errors[:5]]:
        print("!", note)
    print("cpu: % of one core per session, agent process only (core: session_overhead's fake model, no network)\n"
          "latency: websocket frame read -> transport.play (core: model emit -> play); ws+sdk p99: of it, socket read"
          " -> the plugin handling the parsed event\nserver: the fake's process, cpu % per session and how late its"
          " most late delta went out (ms)")


if __name__ == "__main__":
    # measure core and the plugin alone: installed observer plugins (a recorder, say) would add their own work
    os.environ["AGENTSESSION_DISABLE_PLUGINS"] = ",".join(p.name for p in discover())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1, 10 for 1.5 s")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("-n", type=int, action="append", help="session counts (repeatable)")
    args = parser.parse_args()
    asyncio.run(main(args.n or ([1, 10] if args.quick else [1, 50]), args.seconds or (1.5 if args.quick else 5.0)))
