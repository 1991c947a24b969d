"""The ``file`` transport: a WAV file is the user, another WAV records the conversation's agent side."""

from __future__ import annotations

import argparse
import asyncio
import logging
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._audio import SUPPORTED_RATES, AudioFrame
from ._clock import VirtualClockEventLoop
from ._errors import AgentSessionError
from ._pool import JobSpec, ProcessPool
from ._processes import program_command
from ._states import AgentState, UserState
from ._transport import PacedTransport, Transport, TransportMode

if TYPE_CHECKING:
    from ._session import AgentSession
    from ._worker import JobContext

logger = logging.getLogger("agentsession.file")


class FileTransport(PacedTransport):
    """Streams ``input_path`` as the user's microphone and writes the agent's audio to ``output_path``.

    The output WAV follows the conversation's timeline (silence where the agent was quiet). After the
    input (plus ``trailing_silence``) is done, the transport ends once the agent has been quiet for
    ``quiet`` seconds. With ``speed="max"`` run it on a ``VirtualClockEventLoop``: the same timeline,
    as fast as the CPU allows (meant for offline models).
    """

    def __init__(
        self,
        input_path: str | Path,
        output_path: str | Path | None = None,
        *,
        speed: Literal["realtime", "max"] = "realtime",
        sample_rate: int = 24000,
        trailing_silence: float = 1.5,
        quiet: float = 1.0,
    ) -> None:
        super().__init__(sample_rate)
        self.input_path = Path(input_path)
        self.output_path = Path(output_path) if output_path is not None else None
        self.speed = speed
        self.trailing_silence = trailing_silence
        self.quiet = quiet
        self._reader: wave.Wave_read | None = None
        self._writer: wave.Wave_write | None = None
        self._written = 0
        self._t0 = 0.0
        self._session: AgentSession | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            reader = wave.open(str(self.input_path), "rb")
        except FileNotFoundError:
            raise ValueError(f"input file not found: {self.input_path}") from None
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"{self.input_path} is not a PCM WAV file: {exc}") from None
        if reader.getsampwidth() != 2 or reader.getnchannels() not in (1, 2):
            reader.close()
            raise ValueError(f"{self.input_path}: need 16-bit PCM mono or stereo (convert with sox in.wav -b 16 out.wav)")
        if reader.getframerate() not in SUPPORTED_RATES:
            reader.close()
            raise ValueError(f"{self.input_path}: sample rate {reader.getframerate()} Hz is not one of {sorted(SUPPORTED_RATES)}")
        self._reader = reader
        if self.output_path is not None:
            self.output_path.parent.mkdir(parents=True, exist_ok=True)
            writer = wave.open(str(self.output_path), "wb")
            writer.setnchannels(self.channels)
            writer.setsampwidth(2)
            writer.setframerate(self.sample_rate)
            self._writer = writer
        self._t0 = asyncio.get_running_loop().time()
        await super().start()

    def bind(self, session: AgentSession) -> None:
        self._session = session

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("FileTransport.audio_input() before start()")
        loop = asyncio.get_running_loop()
        rate, channels = reader.getframerate(), reader.getnchannels()
        block = rate // 50
        position = 0
        while True:
            raw = reader.readframes(block)
            if not raw:
                break
            frame = AudioFrame.from_bytes(raw, rate, channels, timestamp=position / rate)
            await asyncio.sleep(max(0.0, self._t0 + position / rate - loop.time()))
            position += frame.samples_per_channel
            yield frame
        for _ in range(int(self.trailing_silence * 50)):
            await asyncio.sleep(max(0.0, self._t0 + position / rate - loop.time()))
            yield AudioFrame.silence(0.02, rate, channels, timestamp=position / rate)
            position += block
        self._watch = loop.create_task(self._end_when_quiet())
        await self._watch

    async def _end_when_quiet(self) -> None:
        session = self._session
        quiet_since: float | None = None
        loop = asyncio.get_running_loop()
        while session is not None and not session.closed:
            quiet = session.agent_state is AgentState.IDLE and session.user_state is UserState.IDLE
            if not quiet:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= self.quiet:
                break
            await asyncio.sleep(0.05)
        self.end("input done")

    def on_output(self, samples: np.ndarray, real: int, at: float) -> None:
        if self._writer is None:
            return
        self._pad_to(at)
        self._writer.writeframes(samples.astype("<i2").tobytes())
        self._written += samples.shape[0]

    def _pad_to(self, at: float) -> None:
        assert self._writer is not None
        gap = int(round((at - self._t0) * self.sample_rate)) - self._written
        if gap > 0:
            self._writer.writeframes(bytes(2 * self.channels * gap))
            self._written += gap

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await super().close()
        if self._writer is not None:
            self._pad_to(asyncio.get_running_loop().time())
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class FileMode(TransportMode):
    """``python main.py file --input in.wav --output out.wav [--speed max]``.

    Several ``--input``s are several jobs, run concurrently in this process; ``--workers N`` spreads them
    over N processes (each re-runs this program with its share), so a batch uses every core.
    """

    def __init__(self) -> None:
        super().__init__(self._create, help="talk to the agent with WAV files (offline, for tests and demos)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", required=True, action="append",
                            help="WAV file spoken as the user (16-bit PCM); repeat it for several jobs")
        out = parser.add_mutually_exclusive_group()
        out.add_argument("--output", action="append",
                         help="WAV file the agent's audio is written to (one per --input)")
        out.add_argument("--output-dir", help="write each job's output to DIR/<input name>")
        parser.add_argument("--speed", choices=["realtime", "max"], default="realtime",
                            help="max: run on a virtual clock, as fast as possible (offline models only)")
        parser.add_argument("--output-rate", type=int, default=24000, choices=sorted(SUPPORTED_RATES))
        parser.add_argument("--workers", type=int, default=1, help="processes to spread the inputs over")

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        return VirtualClockEventLoop if options.speed == "max" else None

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        o = self.options
        inputs: list[str] = o.input
        if o.output_dir:
            outputs: list[str | None] = [str(Path(o.output_dir) / Path(i).name) for i in inputs]
        elif o.output:
            if len(o.output) != len(inputs):
                raise ValueError(f"{len(inputs)} --input but {len(o.output)} --output: give one each, or --output-dir")
            outputs = list(o.output)
        else:
            outputs = [None] * len(inputs)
        if o.workers < 1:
            raise ValueError("--workers must be at least 1")
        workers = min(o.workers, len(inputs))
        if workers > 1:
            await self._spread(inputs, outputs, workers)
            return
        await asyncio.gather(*(
            run_job(FileTransport(i, out, speed=o.speed, sample_rate=o.output_rate)) for i, out in zip(inputs, outputs, strict=True)
        ))

    async def _spread(self, inputs: list[str], outputs: list[str | None], workers: int) -> None:
        """Run ``inputs[k::workers]`` as one job in the k-th process of a pool (each line they print comes through
        whole, tagged ``[worker k]``)."""
        o = self.options
        pool = ProcessPool(program_command(), max_processes=workers)
        jobs = []
        try:
            for k in range(workers):
                args = ["--log-level", o.log_level, "file", "--speed", o.speed, "--output-rate", str(o.output_rate)]
                for i, out in zip(inputs[k::workers], outputs[k::workers], strict=True):
                    args += ["--input", i] + (["--output", out] if out is not None else [])
                jobs.append(pool.submit(JobSpec(f"share-{k}", args)))
            results = await asyncio.gather(*(job.done for job in jobs))
        finally:
            await pool.aclose()
        failed = [r for r in results if r.status != "completed"]
        if failed:
            codes = [r.code for r in results]
            raise AgentSessionError(f"{len(failed)} of {workers} worker processes failed (exit codes {codes})")

    @staticmethod
    def _create(ctx: JobContext) -> FileTransport:
        o = ctx.options
        return FileTransport(o.input[0], (o.output or [None])[0], speed=o.speed, sample_rate=o.output_rate)

