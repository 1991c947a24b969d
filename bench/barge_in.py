"""Barge-in, end to end: from the moment user speech is flagged to the last agent sample out of the transport.

One session talks to the agent while it speaks; the user cuts in, over and over (``--trials``). Per trial:

* **detection**: from the first frame of user speech the transport delivers to the moment that speech is
  flagged, whichever flags it first: the provider (OpenAI Realtime's ``input_audio_buffer.speech_started``,
  Gemini Live's ``interrupted``, stamped as the fake server sends it; this includes the plugin batching the
  upload, 100 ms chunks for OpenAI) or the local VAD (the session's for Gemini Live, which reports no user
  speech of its own, the cascade's own; stamped as the VAD returns its ``start``; it waits ``min_speech``,
  100 ms, by design). This is the provider's (or VAD's) part.
* **framework**: from that flag to the end of the last agent sample the transport outputs (a paced 20 ms
  device: the block playing when the flag comes finishes, and nothing of the agent after it). This is ours:
  the websocket read and parse, the plugin, the session, the playout, the transport's ``clear``. It is at most
  one frame (20 ms) plus the framework's own time; ``--quick`` (CI) asserts its median stays under 20 ms + 5 ms
  (and no trial over one frame more: a loaded machine may not run the process in time for one of them).

Workloads: ``openai`` (``OpenAIRealtime`` against ``agentsession_openai.fake.realtime.FakeRealtimeServer``),
``gemini`` (``GeminiRealtime`` against ``agentsession_gemini.fake.FakeLiveServer``, TLS on loopback), and
``cascade`` (in-process STT/LLM/TTS with the session's energy VAD). Each uses the provider's real SDK over a
websocket where there is one; the server runs in this process (one session: latency, not CPU, is measured).
Barge-in is immediate here (``min_interruption_duration=0``); the default 0.5 s is a deliberate wait for the
user to keep talking, not framework time.

    python bench/barge_in.py                 # every workload, 20 trials each
    python bench/barge_in.py --quick         # 6 trials each, asserts the framework part (CI)
    python bench/barge_in.py --workload openai --trials 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from agentsession import (
    LLM,
    STT,
    TTS,
    Agent,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    FunctionTool,
    RealTimePipeline,
    ToolCall,
)
from agentsession._manager import discover
from agentsession.plugin import EnergyVAD, PacedTransport, VADEvent

FRAME = 0.02
BUDGET = FRAME + 0.005  # what --quick asserts: the block playing when the flag comes, plus 5 ms of ours
LONG_ANSWER = "This is a long answer that goes on and on, so that the user has time to cut in. " * 3


class BargeTransport(PacedTransport):
    """A paced 20 ms output device and a user who stays quiet until told to talk (a loud tone), 20 ms frames."""

    def __init__(self, rate: int) -> None:
        super().__init__(rate)
        self.talking = False
        self.first_speech: float | None = None  # loop time the first frame of this utterance went in
        self.agent_out = 0.0  # seconds of agent audio output since the last reset
        self.last_agent_end = 0.0  # loop time the last agent sample left the device
        self.closed = asyncio.Event()
        t = np.arange(int(rate * FRAME)) / rate
        self._speech = AudioFrame((np.sin(2 * np.pi * 300 * t) * 12000).astype(np.int16).reshape(-1, 1), rate)
        self._quiet = AudioFrame.silence(FRAME, rate)
        self._agent_audio = asyncio.Event()

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        loop = asyncio.get_running_loop()
        t = loop.time()
        while not self.closed.is_set():
            if self.talking and self.first_speech is None:
                self.first_speech = loop.time()
            yield self._speech if self.talking else self._quiet
            t += FRAME
            await asyncio.sleep(max(0.0, t - loop.time()))

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        if real:
            self.agent_out += real / self.sample_rate
            self.last_agent_end = at + real / self.sample_rate
            self._agent_audio.set()

    async def wait_agent_audio(self, seconds: float, timeout: float = 10.0) -> None:
        """Wait until the agent has been heard for ``seconds`` since the last reset."""
        async with asyncio.timeout(timeout):
            while self.agent_out < seconds:
                self._agent_audio.clear()
                await self._agent_audio.wait()

    async def close(self) -> None:
        self.closed.set()
        await super().close()


class Trials:
    """The flag times (loop time) of each utterance, stamped by the server or the VAD."""

    def __init__(self) -> None:
        self.flags: list[float] = []
        self.detection: list[float] = []
        self.framework: list[float] = []
        self.flagged = asyncio.Event()

    def flag(self) -> None:
        self.flags.append(asyncio.get_running_loop().time())
        self.flagged.set()


class TimedVAD(EnergyVAD):
    """The session's energy VAD, stamping each ``start`` it returns."""

    def __init__(self, trials: Trials) -> None:
        super().__init__()
        self._trials = trials

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        events = super().push(frame)
        if any(e.kind == "start" for e in events):
            self._trials.flag()
        return events


# ------------------------------------------------------------------------------------------ workloads

class BenchSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return "Tell me more."


class BenchLLM(LLM):
    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        yield LONG_ANSWER


class BenchTTS(TTS):
    sample_rate = 24000

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        t = np.arange(int(0.1 * self.sample_rate)) / self.sample_rate
        chunk = AudioFrame((np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16).reshape(-1, 1), self.sample_rate)
        for _ in range(int(0.06 * len(text) / 0.1)):  # 60 ms of speech a character, in 100 ms chunks
            yield chunk


async def run_openai(trials: Trials, count: int) -> None:
    from agentsession_openai import OpenAIRealtime
    from agentsession_openai.fake.realtime import API_KEY, FakeRealtimeServer

    class TimedServer(FakeRealtimeServer):
        async def _send(self, conn: Any, event: Any) -> None:
            if event.type == "input_audio_buffer.speech_started":
                trials.flag()
            await super()._send(conn, event)

    server = TimedServer()
    server.reply_audio, server.chunk, server.chunk_delay = 3.0, 0.1, 0.05  # 3 s answers, faster than real time
    async with server:
        model = OpenAIRealtime(api_key=API_KEY, base_url=server.base_url)
        await drive(trials, count, RealTimePipeline(model), 24000, vad=None)


async def run_gemini(trials: Trials, count: int) -> None:
    from agentsession_gemini import GeminiRealtime
    from agentsession_gemini.fake import FakeLiveServer

    class TimedServer(FakeLiveServer):
        async def send(self, message: Any, conn: Any = None) -> None:
            if message.server_content is not None and message.server_content.interrupted:
                trials.flag()
            await super().send(message, conn)

    async with TimedServer(reply_chunks=75, chunk_seconds=0.04, chunk_delay=0.02) as server:  # 3 s answers
        model = GeminiRealtime(api_key="bench-key-0123456789abcdef", http_options=server.http_options())
        await drive(trials, count, RealTimePipeline(model), 24000, vad=TimedVAD(trials))


async def run_cascade(trials: Trials, count: int) -> None:
    pipeline = CascadingPipeline(stt=BenchSTT(), llm=BenchLLM(), tts=BenchTTS(), vad=TimedVAD(trials))
    await drive(trials, count, pipeline, 24000, vad=None)


async def drive(trials: Trials, count: int, pipeline: Any, rate: int, vad: EnergyVAD | None) -> None:
    transport = BargeTransport(rate)
    session = AgentSession(Agent(instructions="Answer at length."), pipeline, min_interruption_duration=0, vad=vad)
    await transport.start()
    await session.start(transport=transport)
    try:
        await asyncio.sleep(0.3)
        await session.say(LONG_ANSWER)  # the first answer to cut; after that, each answer to the user's turn
        for _ in range(count):
            transport.agent_out = 0.0
            await transport.wait_agent_audio(0.3)
            flags = len(trials.flags)
            trials.flagged.clear()
            transport.first_speech, transport.talking = None, True
            async with asyncio.timeout(5):
                await trials.flagged.wait()
            await asyncio.sleep(0.4)  # the user goes on talking: any agent audio after the flag would show
            transport.talking = False
            flag, first = trials.flags[flags], transport.first_speech  # the first flag: server's or VAD's
            assert first is not None
            trials.detection.append(flag - first)
            trials.framework.append(max(0.0, transport.last_agent_end - flag))
    finally:
        await session.close()
        await transport.close()


WORKLOADS = {"openai": run_openai, "gemini": run_gemini, "cascade": run_cascade}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 trials per workload; assert the framework part")
    parser.add_argument("--trials", type=int)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = parser.parse_args()
    count = args.trials or (6 if args.quick else 20)
    os.environ["AGENTSESSION_DISABLE_PLUGINS"] = ",".join(p.name for p in discover())
    print(f"barge-in, {count} trials each (ms; framework = flag -> last agent sample out; budget "
          f"{1000 * BUDGET:.0f} = one {1000 * FRAME:.0f} ms frame + 5 ms)")
    print(f"{'workload':>9}  {'flagged by':>13}  detection p50   p99   framework p50   p99    max")
    failed = []
    for name in args.workload or sorted(WORKLOADS):
        trials = Trials()
        await WORKLOADS[name](trials, count)
        det, fw = trials.detection, trials.framework
        by = {"openai": "the provider", "gemini": "provider / VAD", "cascade": "local VAD"}[name]
        print(f"{name:>9}  {by:>13}  {1000 * statistics.median(det):13.1f} {1000 * pct(det, 0.99):5.1f}"
              f"  {1000 * statistics.median(fw):15.1f} {1000 * pct(fw, 0.99):5.1f} {1000 * max(fw):6.1f}")
        # the median must be in budget; a single trial may lose one more block to the machine (a busy CI box that
        # does not run the process for a while lets the device's next tick come before the socket read)
        if statistics.median(fw) > BUDGET or max(fw) > BUDGET + FRAME:
            failed.append(f"{name}: p50 {1000 * statistics.median(fw):.1f} ms, max {1000 * max(fw):.1f} ms "
                          f"(budget {1000 * BUDGET:.0f} ms, {1000 * (BUDGET + FRAME):.0f} ms for one trial)")
    if args.quick and failed:
        print("barge-in over budget: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
