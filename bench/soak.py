"""Soak: N sessions for M minutes against fake providers with random faults. Is anything lost, stuck or leaked?

Every session has a simulated user: a paced transport that sends 20 ms of audio every 20 ms, an utterance
(0.8 s of tone) every 5-8 s and silence between, and that listens to what is played back. A turn is
*answered* when agent audio is played after the user's utterance and before the next one.

Two kinds of sessions run side by side in this process:

- **in-process** (``-n``): ``AgentSession`` over core's ``FakeRealtimeModel`` (with ``EnergyVAD``), wrapped
  to inject faults: ``drop`` (an outage of 1-6 s: the response in flight is cut with a recoverable error,
  user audio goes nowhere, then the "link" is back), ``stall`` (5-20 s: nothing comes back, audio goes
  nowhere, the response in flight freezes, then resumes), ``error`` (a recoverable provider error that
  ends the response in flight), ``slow`` (10-20 s of responses streamed ten times slower than real time:
  a provider read slowly), and rarely ``fatal`` (a non-recoverable error: the session closes, and the
  bench starts a new one in its place, as an app would).
- **wire** (``--wire``): ``OpenAIRealtime`` against the OpenAI plugin's fake Realtime server (real
  websocket, the SDK's types; ``agentsession_openai.fake.realtime``) in a child process, told
  to inject faults on that session's connection: ``drop`` (abort the TCP connection: the plugin
  reconnects), ``refuse`` (a drop, then the next 1-3 reconnection attempts refused with a 503), ``stall``
  (5-20 s without reading the socket or sending anything), ``slow`` (10-20 s of reading in short bursts),
  ``error`` (a server ``error`` event).

Faults come at random (Poisson, one per ``--fault-every`` seconds per session on average, ``--seed``).
A fault is *recovered* when a turn that starts after it ended is answered; the time to recover is from
its end to that answer. *Audio lost* is user audio that never reached the model: counted by the in-process
fake while it is down or stalled, and for the wire as the plugin reports it (the sum of its ``reconnected``
events' ``audio_lost``: what its outage buffer could not resend). The fake server's count is shown beside it
as a cross-check, not as the loss: audio resent after a reconnect arrives there twice, so the seconds the
transport delivered minus the seconds received can be zero while seconds were lost. The
``reconnecting``/``reconnected`` session events are counted, with the downtime and the audio lost that the
``reconnected`` events report (the in-process fake reports its drops so). Every
``--every`` seconds a row shows the turns so far and this process's tasks, open fds, threads and RSS; at
the end the sessions are closed and what is left is shown.

    python bench/soak.py                      # N = 50 in-process + 10 wire sessions, 10 minutes
    python bench/soak.py --quick              # N = 8 + 4, 1 minute
    python bench/soak.py -n 50 --wire 10 --minutes 10 --fault-every 30 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import random
import re
import signal
import statistics
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from child_server import ChildServer  # noqa: E402

from agentsession import (  # noqa: E402
    Agent,
    AgentAudio,
    AgentSession,
    AgentTranscript,
    AudioFrame,
    EnergyVAD,
    Error,
    PacedTransport,
    RealTimePipeline,
    Reconnected,
    Reconnecting,
    ResponseDone,
)
from agentsession._manager import discover  # noqa: E402
from agentsession.testing import FakeRealtimeModel, FakeResponse, tone  # noqa: E402

RATE = 24000
FRAME = 0.02
UTTERANCE = 0.8  # seconds of user speech per turn
GAP = (5.0, 8.0)  # seconds of silence between utterances
RECOVERY_GRACE = 15.0  # a fault that ended less than this before the end is not counted as unrecovered
IN_PROCESS_FAULTS = {"drop": 4, "stall": 2, "error": 3, "slow": 2, "fatal": 0.3}
WIRE_FAULTS = {"drop": 4, "refuse": 1, "stall": 2, "slow": 2, "error": 3}


# ------------------------------------------------------------------------------------------ the user


@dataclass
class Fault:
    kind: str
    start: float
    end: float
    recovered_at: float | None = None


@dataclass
class Tally:
    """One session slot's counts (a slot keeps its tally when a fatal error makes the bench replace its session)."""

    asked: int = 0
    answered: int = 0
    latencies: list[float] = field(default_factory=list)
    delivered: float = 0.0  # seconds of user audio the transport gave the session
    lost: float = 0.0  # seconds of user audio that never reached the model (in-process: counted by the fake)
    faults: list[Fault] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    reconnecting: int = 0  # reconnecting session events (one per attempt)
    reconnected: int = 0
    reported_lost: float = 0.0  # seconds of user audio the reconnected events reported lost
    downtimes: list[float] = field(default_factory=list)
    restarts: int = 0
    state: str = "idle"
    state_since: float = 0.0

    def answer(self, at: float, turn_end: float) -> None:
        self.answered += 1
        self.latencies.append(at - turn_end)
        for fault in self.faults:
            if fault.recovered_at is None and fault.end <= turn_end - UTTERANCE:
                fault.recovered_at = at


class UserTransport(PacedTransport):
    """The simulated user: utterances and silence in real time, and an ear on what is played back."""

    def __init__(self, tally: Tally, rng: random.Random) -> None:
        super().__init__(RATE)
        self.tally = tally
        self.rng = rng
        self._pending: float | None = None  # end of the last utterance, until it is answered
        self._voice = tone(UTTERANCE, RATE, 300.0).data
        self._closed = asyncio.Event()

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        loop = asyncio.get_running_loop()
        n = int(FRAME * RATE)
        silence = np.zeros((n, 1), np.int16)
        t = loop.time()
        speak_at = t + self.rng.uniform(0.5, GAP[1])
        while not self._closed.is_set():
            if t >= speak_at:
                if self._pending is not None:  # the previous turn got no answer in time
                    self._pending = None
                for i in range(0, len(self._voice), n):
                    yield AudioFrame(self._voice[i : i + n], RATE)
                    self.tally.delivered += FRAME
                    t += FRAME
                    await asyncio.sleep(max(0.0, t - loop.time()))
                self.tally.asked += 1
                self._pending = t
                speak_at = t + self.rng.uniform(*GAP)
            yield AudioFrame(silence, RATE)
            self.tally.delivered += FRAME
            t += FRAME
            await asyncio.sleep(max(0.0, t - loop.time()))

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        if real and self._pending is not None and at >= self._pending:
            self.tally.answer(at, self._pending)
            self._pending = None

    async def close(self) -> None:
        self._closed.set()
        await super().close()


# ------------------------------------------------------------------------------------------ in-process


class FaultyModel(FakeRealtimeModel):
    """``FakeRealtimeModel`` with faults: outages, stalls, provider errors, slow streaming, fatal errors."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(default=FakeResponse(text="Sure.", audio=1.0, delay=0.3), vad=EnergyVAD(min_silence=0.5),
                         speed=2.0, chunk=0.1)
        self.tally = tally
        self.down = False
        self.up = asyncio.Event()  # cleared while down: responses asked for meanwhile wait, as a plugin's do
        self.up.set()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.slowdown = 1.0

    def push_audio(self, frame: AudioFrame) -> None:
        if self.down or not self.flowing.is_set():
            self.tally.lost += frame.duration
            return
        super().push_audio(frame)

    async def _run(self, rid: str, response: FakeResponse) -> None:
        await asyncio.sleep(response.delay)
        await self.up.wait()
        await self.flowing.wait()
        audio = tone(response.audio, RATE)
        step = int(self.chunk * RATE)
        self.channel.emit(AgentTranscript(response.text, final=False, response_id=rid))
        for start in range(0, audio.samples_per_channel, step):
            await self.flowing.wait()
            self.channel.emit(AgentAudio(AudioFrame(audio.data[start : start + step], RATE), response_id=rid))
            await asyncio.sleep(self.chunk / self.speed * self.slowdown)
        self.channel.emit(AgentTranscript(response.text, final=True, response_id=rid))
        self.channel.emit(ResponseDone(usage=dict(response.usage), response_id=rid))

    def _cut(self, message: str, code: str) -> None:
        """End the response in flight as a provider does when it fails: a recoverable error, then its end."""
        self.channel.emit(Error(message, recoverable=True, code=code))
        current = self._current
        if current is not None and not current[1].done():
            current[1].cancel()
            self.channel.emit(ResponseDone(interrupted=True, response_id=current[0]))

    async def inject(self, kind: str, duration: float) -> None:
        if kind == "drop":
            self.down = True
            self.up.clear()
            self._cut("the provider connection dropped", "connection_lost")
            self.channel.emit(Reconnecting(1, "the provider connection dropped"))
            lost_before = self.tally.lost
            await asyncio.sleep(duration)
            self.down = False
            self.up.set()
            if self.vad is not None:
                self.vad.reset()
            self.channel.emit(Reconnected(duration, self.tally.lost - lost_before))  # this fake keeps nothing
        elif kind == "stall":
            self.flowing.clear()
            await asyncio.sleep(duration)
            self.flowing.set()
        elif kind == "error":
            self._cut("the provider failed the response", "server_error")
        elif kind == "slow":
            self.slowdown = 20.0
            await asyncio.sleep(duration)
            self.slowdown = 1.0
        elif kind == "fatal":
            self.channel.emit(Error("the provider refused to go on", recoverable=False, code="fatal"))


def duration_of(kind: str, rng: random.Random) -> float:
    return {"drop": rng.uniform(1, 6), "refuse": 0.0, "stall": rng.uniform(5, 20), "slow": rng.uniform(10, 20),
            "error": 0.0, "fatal": 0.0}[kind]


class Slot:
    """One simulated user and the session that serves it; a session closed by a fatal error is replaced."""

    def __init__(self, index: int, rng: random.Random, wire: WireServer | None = None) -> None:
        self.index = index
        self.rng = rng
        self.wire = wire
        self.tally = Tally()
        self.session: AgentSession | None = None
        self.transport: UserTransport | None = None
        self.model: Any = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    @property
    def kind(self) -> str:
        return "wire" if self.wire is not None else "in-process"

    async def open(self) -> None:
        self.transport = UserTransport(self.tally, self.rng)
        if self.wire is not None:
            from agentsession_openai import OpenAIRealtime
            from agentsession_openai.fake.realtime import API_KEY

            self.model = OpenAIRealtime(api_key=API_KEY, base_url=f"{self.wire.base_url}/s{self.index}",
                                        input_transcription=None)
        else:
            self.model = FaultyModel(self.tally)
        session = AgentSession(Agent(instructions="soak"), RealTimePipeline(self.model))
        session.on("error", lambda d: self.tally.errors.update([str(d.get("code") or "error")]))
        session.on("reconnecting", self._on_reconnecting)
        session.on("reconnected", self._on_reconnected)
        session.on("agent_state_changed", self._on_state)
        session.on("closed", lambda d: self._spawn(self._replace()))
        await self.transport.start()
        await session.start(transport=self.transport)
        self.session = session

    def _on_reconnecting(self, data: dict[str, Any]) -> None:
        self.tally.reconnecting += 1

    def _on_reconnected(self, data: dict[str, Any]) -> None:
        self.tally.reconnected += 1
        self.tally.reported_lost += data["audio_lost"]
        self.tally.downtimes.append(data["downtime"])

    def _on_state(self, data: dict[str, Any]) -> None:
        self.tally.state = str(data["state"])
        self.tally.state_since = asyncio.get_running_loop().time()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _replace(self) -> None:
        if self.stopping:
            return
        self.tally.restarts += 1
        await self._close_current()
        with contextlib.suppress(Exception):
            await self.open()

    async def _close_current(self) -> None:
        session, transport = self.session, self.transport
        self.session = None
        if session is not None:
            await session.close()
        if transport is not None:
            await transport.close()

    async def faults(self, every: float, until: float) -> None:
        loop = asyncio.get_running_loop()
        weights = WIRE_FAULTS if self.wire is not None else IN_PROCESS_FAULTS
        kinds, w = list(weights), list(weights.values())
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / every))
            if loop.time() >= until:
                return
            kind = self.rng.choices(kinds, w)[0]
            duration = duration_of(kind, self.rng)
            start = loop.time()
            fault = Fault(kind, start, start + duration)
            self.tally.faults.append(fault)
            if self.wire is not None:
                refused = self.rng.randint(1, 3) if kind == "refuse" else 0
                self.wire.command(("fault", self.index, kind, duration, refused))
                await asyncio.sleep(duration)
            elif self.model is not None:
                await self.model.inject(kind, duration)
            fault.end = loop.time()

    async def close(self) -> None:
        self.stopping = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._close_current()


# ------------------------------------------------------------------------------------------ wire


def serve_wire(pipe: Connection, seed: int) -> None:
    """The child process: the OpenAI plugin's fake Realtime server, injecting the faults it is told to."""
    from openai.types.realtime.realtime_error import RealtimeError
    from openai.types.realtime.realtime_error_event import RealtimeErrorEvent
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer
    from agentsession_openai.fake.realtime import Connection as FakeConnection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe
    path_re = re.compile(r"^/v1/s(\d+)/realtime\?model=")

    class FaultyServer(FakeRealtimeServer):
        def __init__(self) -> None:
            super().__init__()
            self.chunk_delay = 0.05  # deltas of 0.1 s, twice as fast as real time
            self.keep_audio = False  # counted below, not kept
            self.refusals: dict[int, int] = {}
            self.received: dict[int, float] = defaultdict(float)  # seconds of user audio, per session
            self.gates: dict[int, asyncio.Event] = {}

        @staticmethod
        def slot(conn: FakeConnection) -> int:
            m = path_re.match(conn.path)
            return int(m.group(1)) if m else -1

        def current_of(self, slot: int) -> FakeConnection | None:
            return next((c for c in reversed(self.connections) if self.slot(c) == slot), None)

        def _process_request(self, ws: Any, request: Any) -> Any:
            m = path_re.match(request.path)
            if m is None:
                self.protocol_errors.append(f"unexpected websocket path {request.path!r}")
            if request.headers.get("Authorization") != f"Bearer {API_KEY}":
                return Response(401, "Unauthorized", Headers(), b"")
            slot = int(m.group(1)) if m else -1
            if self.refusals.get(slot, 0) > 0:
                self.refusals[slot] -= 1
                status = HTTPStatus.SERVICE_UNAVAILABLE
                return Response(status.value, status.phrase, Headers(), b"")
            return None

        async def _send(self, conn: FakeConnection, event: Any) -> None:
            gate = self.gates.get(self.slot(conn))
            if gate is not None:
                await gate.wait()
            await super()._send(conn, event)

        async def _on_event(self, conn: FakeConnection, event: Any, raw: dict[str, Any]) -> None:
            if event.type == "input_audio_buffer.append":
                self.received[self.slot(conn)] += len(event.audio) * 3 / 4 / 2 / 24000
            await super()._on_event(conn, event, raw)
            if event.type == "input_audio_buffer.append":
                conn.received.pop()  # don't keep 10 a second for 10 minutes

        async def fault(self, slot: int, kind: str, duration: float, refused: int) -> None:
            conn = self.current_of(slot)
            if conn is None:
                return
            transport = conn.ws.transport
            if kind in ("drop", "refuse"):
                self.refusals[slot] = refused
                if conn.response is not None:
                    conn.response.cancel()
                transport.abort()
            elif kind == "stall":
                gate = self.gates[slot] = asyncio.Event()
                transport.pause_reading()
                await asyncio.sleep(duration)
                gate.set()
                self.gates.pop(slot, None)
                with contextlib.suppress(Exception):
                    transport.resume_reading()
            elif kind == "slow":
                loop = asyncio.get_running_loop()
                end = loop.time() + duration
                while loop.time() < end and not transport.is_closing():
                    transport.pause_reading()
                    await asyncio.sleep(0.3)
                    transport.resume_reading()
                    await asyncio.sleep(0.05)
            elif kind == "error":
                error = RealtimeError(type="server_error", code="server_error", message="injected server error")
                await self._send(conn, RealtimeErrorEvent(type="error", event_id=self._id("event"), error=error))

    async def run() -> None:
        stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        async with FaultyServer() as server:

            def on_message() -> None:
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    stop.set()
                    return
                if message[0] == "fault":
                    task = asyncio.ensure_future(server.fault(*message[1:]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif message[0] == "received":
                    pipe.send(dict(server.received))
                elif message[0] == "stop":
                    pipe.send(list(server.protocol_errors))
                    stop.set()

            loop = asyncio.get_running_loop()
            loop.add_reader(pipe.fileno(), on_message)
            pipe.send(server.base_url)
            await stop.wait()
            loop.remove_reader(pipe.fileno())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


class WireServer(ChildServer):
    """The fake OpenAI Realtime server in a child process (so its CPU is not the agent's)."""

    def __init__(self, seed: int) -> None:
        super().__init__(serve_wire, seed, name="soak-fake-realtime", stop=("stop",))
        self.base_url: str = self.hello

    def command(self, message: tuple[Any, ...]) -> None:
        self.send(message)

    def received(self) -> dict[int, float]:
        return dict(self.ask(("received",)) or {})


# ------------------------------------------------------------------------------------------ report


def fd_targets() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def resources() -> dict[str, float]:
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return {"tasks": len(asyncio.all_tasks()), "fds": len(os.listdir("/proc/self/fd")),
            "threads": threading.active_count(), "rss": rss}


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]  # never past the largest sample


def summary(slots: list[Slot], wire: WireServer | None, now: float, end: float | None = None) -> dict[str, Any]:
    received = wire.received() if wire is not None else {}
    out: dict[str, Any] = {}
    for kind in ("in-process", "wire"):
        group = [s for s in slots if s.kind == kind]
        if not group:
            continue
        tallies = [s.tally for s in group]
        # the wire's loss is what the plugin reports: the server's count includes resent audio once per arrival
        lost = sum(t.reported_lost if kind == "wire" else t.lost for t in tallies)
        faults = [f for t in tallies for f in t.faults]
        settled = [f for f in faults if end is None or f.end <= end - RECOVERY_GRACE]
        recovered = [f for f in settled if f.recovered_at is not None]
        stuck = sum(1 for t in tallies if t.state not in ("idle", "listening", "closing")
                    and now - t.state_since > 30)
        out[kind] = {
            "asked": sum(t.asked for t in tallies),
            "answered": sum(t.answered for t in tallies),
            "latencies": [x for t in tallies for x in t.latencies],
            "delivered": sum(t.delivered for t in tallies),
            "lost": lost,
            "server_received": sum(received.get(s.index, 0.0) for s in group) if kind == "wire" else None,
            "faults": Counter(f.kind for f in faults),
            "settled": len(settled),
            "recovered": len(recovered),
            "recovery": [f.recovered_at - f.end for f in recovered if f.recovered_at is not None],
            "unrecovered": Counter(f.kind for f in settled if f.recovered_at is None),
            "errors": sum((t.errors for t in tallies), Counter()),
            "reconnecting": sum(t.reconnecting for t in tallies),
            "reconnected": sum(t.reconnected for t in tallies),
            "reported_lost": sum(t.reported_lost for t in tallies),
            "downtimes": [x for t in tallies for x in t.downtimes],
            "restarts": sum(t.restarts for t in tallies),
            "stuck": stuck,
        }
    return out


def row(elapsed: float, stats: dict[str, Any], res: dict[str, float]) -> str:
    parts = [f"{elapsed:>6.0f}s"]
    for kind, s in stats.items():
        share = s["answered"] / s["asked"] if s["asked"] else math.nan
        parts.append(f"{kind}: {s['answered']:>5}/{s['asked']:<5} answered ({100 * share:5.1f}%),"
                     f" lost {s['lost']:7.1f}s, faults {sum(s['faults'].values()):>4},"
                     f" reconnected {s['reconnected']:>3} (lost {s['reported_lost']:.1f}s), stuck {s['stuck']}")
    parts.append(res_text(res))
    return " | ".join(parts)


def res_text(res: dict[str, float]) -> str:
    return (f"tasks {res['tasks']:>5.0f} fds {res['fds']:>5.0f} threads {res['threads']:>3.0f}"
            f" rss {res['rss']:7.1f} MiB")


# ------------------------------------------------------------------------------------------ main


async def main(n: int, n_wire: int, minutes: float, every: float, fault_every: float, seed: int) -> int:
    rng = random.Random(seed)
    wire = WireServer(seed) if n_wire else None  # first: it starts multiprocessing's resource tracker (a pipe kept)
    gc.collect()
    before = resources()
    fds_before = fd_targets()
    slots = [Slot(i, random.Random(rng.random())) for i in range(n)]
    slots += [Slot(n + i, random.Random(rng.random()), wire) for i in range(n_wire)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    until = start + 60 * minutes
    print(f"soak: {n} in-process + {n_wire} wire sessions for {minutes:g} min, a fault per {fault_every:g} s per "
          f"session on average, seed {seed}; before: {res_text(before)}", flush=True)
    injectors: list[asyncio.Task[None]] = []
    try:
        for slot in slots:
            await slot.open()
            await asyncio.sleep(0.02)  # users arrive one by one
        opened = resources()
        print(f"all open after {loop.time() - start:.1f} s: {res_text(opened)}", flush=True)
        injectors = [asyncio.ensure_future(s.faults(fault_every, until)) for s in slots]
        next_row = start + every
        while (now := loop.time()) < until:
            await asyncio.sleep(min(next_row, until) - now)
            if loop.time() >= next_row:
                print(row(loop.time() - start, summary(slots, wire, loop.time()), resources()), flush=True)
                next_row += every
        end = loop.time()
        final = summary(slots, wire, end, end)
        during = resources()
    finally:
        for task in injectors:
            task.cancel()
        await asyncio.gather(*injectors, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in slots), return_exceptions=True)
        if wire is not None:
            wire.close()
    await asyncio.sleep(0.5)  # let closed sockets' callbacks run
    gc.collect()
    after = resources()

    print("\nresults")
    for kind, s in final.items():
        lat = s["latencies"]
        share = 100 * s["answered"] / s["asked"] if s["asked"] else math.nan
        print(f"  {kind}: turns answered {s['answered']}/{s['asked']} ({share:.1f}%), answer latency p50"
              f" {pct(lat, 50):.2f} s p99 {pct(lat, 99):.2f} s")
        print(f"    user audio lost {s['lost']:.1f} s of {s['delivered']:.0f} s ({100 * s['lost'] / max(s['delivered'], 1):.2f}%)"
              + ("" if s["server_received"] is None else
                 f" as the plugin reports it; the fake server received {s['server_received']:.1f} s (resent audio"
                 " counts once per arrival)"))
        down = s["downtimes"]
        print(f"    reconnecting events {s['reconnecting']}, reconnected {s['reconnected']} (downtime p50"
              f" {pct(down, 50):.1f} s p99 {pct(down, 99):.1f} s); audio lost as the reconnected events report it"
              f" {s['reported_lost']:.1f} s")
        print(f"    faults {dict(s['faults'])}; recovered {s['recovered']}/{s['settled']} (ended > {RECOVERY_GRACE:g} s"
              f" before the end), time to recover p50 {pct(s['recovery'], 50):.1f} s p99"
              f" {pct(s['recovery'], 99):.1f} s; unrecovered {dict(s['unrecovered'])}")
        print(f"    session error events {dict(s['errors'])}; sessions replaced after a fatal error"
              f" {s['restarts']}; stuck non-idle > 30 s at the end {s['stuck']}")
    print(f"  resources: before {res_text(before)}\n             opened {res_text(opened)}\n"
          f"             at end {res_text(during)}\n             closed {res_text(after)}")
    leaked = {k: after[k] - before[k] for k in ("tasks", "fds", "threads") if after[k] > before[k]}
    if leaked:
        print(f"  ! left after closing everything: {leaked}")
        extra = {fd: target for fd, target in fd_targets().items() if fds_before.get(fd) != target}
        if extra:
            print(f"    fds: {extra}")
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                print(f"    task {task.get_name()}: {task.get_coro()}")
    if wire is not None and wire.errors:
        print(f"  ! fake server protocol errors: {wire.errors[:5]}")
    return 0


if __name__ == "__main__":
    # core and the plugins under test alone: installed observer plugins (a recorder, say) would add their work
    os.environ["AGENTSESSION_DISABLE_PLUGINS"] = ",".join(p.name for p in discover())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 + 4 sessions for 1 minute, a row every 10 s")
    parser.add_argument("-n", type=int, help="in-process sessions (default 50)")
    parser.add_argument("--wire", type=int, help="sessions over the wire to the fake OpenAI server (default 10)")
    parser.add_argument("--minutes", type=float, help="how long (default 10)")
    parser.add_argument("--every", type=float, help="seconds between rows (default 30)")
    parser.add_argument("--fault-every", type=float, default=30.0, help="mean seconds between faults per session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="ERROR", help="of the sessions' own logs (default ERROR: the faults"
                                                              " make warnings by design)")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quick = args.quick
    pick: Callable[[Any, Any, Any], Any] = lambda value, full, short: value if value is not None else (  # noqa: E731
        short if quick else full)
    sys.exit(asyncio.run(main(pick(args.n, 50, 8), pick(args.wire, 10, 4), pick(args.minutes, 10.0, 1.0),
                              pick(args.every, 30.0, 10.0), args.fault_every if not quick else 15.0, args.seed)))
