"""The ``file`` transport: a WAV file is the user, another WAV records the conversation's agent side."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import io
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._audio import SUPPORTED_RATES, AudioConverter, AudioFrame
from ._clock import VirtualClockEventLoop
from ._errors import AgentSessionError
from ._pool import JobSpec, ProcessPool
from ._processes import program_command
from ._states import AgentState, UserState
from ._transport import PacedTransport, Transport, TransportMode

if TYPE_CHECKING:
    from ._ports import JobView, SessionView

logger = logging.getLogger("agentsession.file")


#: what ``file`` mode needs to read and write audio files, for error messages and ``agentsession doctor``
SOUNDFILE_FIX = "pip install 'agentsession[files]' (soundfile, which bundles libsndfile)"
#: the audio formats people usually have, named in errors (libsndfile reads more)
COMMON_FORMATS = "WAV (16/24/32-bit, float), FLAC, OGG/Vorbis, MP3, AIFF"
#: the most a pipe (a FIFO, ``<(command)``, a device) may send: it is read to its end before the conversation
PIPE_LIMIT = 512 * 1024 * 1024
#: the lowest input sample rate taken (telephone audio is 8000 Hz)
MIN_RATE = 8000
#: how audio files begin: a file that begins so but cannot be read is damaged, not "not audio"
MAGIC = ((b"RIFF", "WAV"), (b"RIFX", "WAV"), (b"RF64", "WAV"), (b"fLaC", "FLAC"), (b"OggS", "OGG"),
         (b"FORM", "AIFF"), (b"ID3", "MP3"), (b"\xff\xfb", "MP3"), (b"\xff\xf3", "MP3"), (b"\xff\xf2", "MP3"),
         (b".snd", "AU"), (b"caff", "CAF"))


def load_soundfile() -> Any:
    """The ``soundfile`` module, through which file mode reads and writes audio (libsndfile), or a clear error."""
    try:
        return importlib.import_module("soundfile")
    except ImportError:
        raise AgentSessionError(f"file mode reads and writes audio through soundfile, which is not installed: "
                                f"{SOUNDFILE_FIX}") from None
    except OSError as exc:  # a platform whose wheel does not bundle libsndfile, and no system copy
        raise AgentSessionError(f"soundfile cannot load libsndfile ({exc}): install libsndfile "
                                "(apt-get install libsndfile1, brew install libsndfile)") from None


class FileTransport(PacedTransport):
    """Streams the audio file ``input_path`` as the user's microphone and writes the agent's audio to
    ``output_path``.

    Any format libsndfile reads (WAV of any sample format, FLAC, OGG, MP3, ...), at any rate and channel
    count: core's ``AudioConverter`` converts it on the way in. The output's format follows its extension
    (``.wav``: 16-bit PCM). The output follows the conversation's timeline (silence where the agent was
    quiet); it is written to a hidden ``.NAME.partial`` next to it and renamed when the transport closes, and
    only if the conversation ran and did not fail (a job that failed to start leaves no output; one that failed
    mid-way leaves an existing output as it was and its audio so far in ``STEM.partial.EXT``). After the input
    (plus ``trailing_silence``) is done, the transport ends once the agent has been quiet for ``quiet``
    seconds; if the input cannot be read to its end, the transport fails (``failure``) and so ends the job. A
    pipe (a FIFO, ``<(command)``) is read to its end, off the event loop's way, before the conversation starts. With
    ``speed="max"`` run it on a ``VirtualClockEventLoop``: the same timeline, as fast as the CPU allows (meant
    for offline models).
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
        self._reader: Any = None  # soundfile.SoundFile
        self._writer: Any = None
        self._partial: Path | None = None
        self._written = 0
        self._t0 = 0.0
        self._session: SessionView | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sf = load_soundfile()
        reader = await _open_input(sf, self.input_path)
        if self.output_path is not None:
            try:
                self._writer, self._partial = _open_output(sf, self.output_path, self.sample_rate, self.channels)
            except BaseException:
                reader.close()
                raise
        self._reader = reader
        self._t0 = asyncio.get_running_loop().time()
        await super().start()

    def bind(self, session: SessionView) -> None:
        self._session = session

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("FileTransport.audio_input() before start()")
        loop = asyncio.get_running_loop()
        rate = reader.samplerate if reader.samplerate in SUPPORTED_RATES else 24000
        channels = reader.channels if reader.channels <= 2 else 1
        converter = AudioConverter(rate, channels)
        position = 0.0
        try:
            done = False
            while not done:
                block = reader.read(max(1, reader.samplerate // 50), dtype="float32", always_2d=True)
                done = not len(block)
                for frame in converter.flush() if done else converter.push_samples(block, reader.samplerate):
                    await asyncio.sleep(max(0.0, self._t0 + frame.timestamp - loop.time()))
                    position = frame.timestamp + frame.duration
                    yield frame
        except Exception as exc:  # a file cut short or corrupt mid-way: end the job instead of stalling it
            logger.debug("reading %s failed", self.input_path, exc_info=True)
            self.fail(f"reading {self.input_path} failed after {position:.2f} s: {exc}")
            return
        for _ in range(int(self.trailing_silence * 50)):
            await asyncio.sleep(max(0.0, self._t0 + position - loop.time()))
            yield AudioFrame.silence(0.02, rate, channels, timestamp=position)
            position += 0.02
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
        try:
            self._pad_to(at)
            self._writer.write(samples.astype(np.int16, copy=False))
        except Exception as exc:  # disk full, file system gone: one clear failure, no output left half-written
            self._discard_output()
            self.fail(f"cannot write {self.output_path}: {exc}")
            return
        self._written += samples.shape[0]

    def _pad_to(self, at: float) -> None:
        gap = int(round((at - self._t0) * self.sample_rate)) - self._written
        if gap > 0:
            self._writer.write(np.zeros((gap, self.channels), np.int16))
            self._written += gap

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await super().close()
        if self._writer is not None:
            if self._session is None and self._written == 0:
                self._discard_output()  # the job never ran a conversation: leave no empty file behind
            elif self.failure is not None:
                self._keep_partial()  # a failed run never replaces a good output
            else:
                try:
                    self._pad_to(asyncio.get_running_loop().time())
                    self._writer.close()
                    assert self._partial is not None and self.output_path is not None
                    os.replace(self._partial, self.output_path)
                except Exception as exc:
                    self._discard_output()
                    self.fail(f"cannot write {self.output_path}: {exc}")
                self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _keep_partial(self) -> None:
        assert self._partial is not None and self.output_path is not None
        out = self.output_path
        kept = out.with_name(f"{out.stem}.partial{out.suffix}")
        try:
            self._pad_to(asyncio.get_running_loop().time())
            self._writer.close()
            self._writer = None
            os.replace(self._partial, kept)
        except Exception:
            self._discard_output()
            where = "its audio so far was not kept"
        else:
            where = f"its audio so far is in {kept}"
        state = "left as it was" if out.exists() else "not written"
        self.failure = f"{self.failure}; {out} {state}, {where}"

    def _discard_output(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)


async def _open_input(sf: Any, path: Path) -> Any:
    """``path`` opened for reading through libsndfile, or a ``ValueError`` that gives the real reason. A pipe or
    device is read to its end first (without blocking the event loop: a FIFO with no writer waits, cancellably)."""
    if not _is_stream(path):
        return _decode(sf, path, None)
    try:
        data = await _read_pipe(path)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _decode(sf, path, data)


def _is_stream(path: Path) -> bool:
    """True for a FIFO, a device or a socket; False for a regular file (or one that is not there: ``_decode`` says)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _decode(sf: Any, path: Path, data: bytes | None) -> Any:
    """A reader of ``path`` (or of ``data``, what a pipe sent), or a ``ValueError`` that says what is wrong."""
    try:  # the operating system's reasons first: libsndfile only says "System error"
        if data is None:
            with path.open("rb") as f:
                head = f.read(4096)
        else:
            head = data[:4096]
    except FileNotFoundError:
        raise ValueError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not an audio file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise ValueError(f"{path} is empty, not an audio file" if data is None else
                         f"{path} is a pipe that closed before sending anything: start what writes to it, and check "
                         "that it succeeds")
    kind = next((name for magic, name in MAGIC if head.startswith(magic)), None)
    try:
        reader = sf.SoundFile(str(path) if data is None else io.BytesIO(data))
    except Exception as exc:  # soundfile.LibsndfileError; its error_string is libsndfile's reason
        reason = str(getattr(exc, "error_string", "") or exc).rstrip(".")
        size = len(data) if data is not None else path.stat().st_size
        if kind is not None:
            raise ValueError(f"{path} looks like a {kind} file, but it is cut short or damaged ({size} bytes; "
                             f"libsndfile: {reason}): download or export it again") from None
        if _is_text(head):
            raise ValueError(f"{path} is text, not audio (it begins {head[:24]!r}); give an audio file: "
                             f"{COMMON_FORMATS}") from None
        raise ValueError(f"{path} is not an audio file that can be read: {reason}; "
                         f"readable: {COMMON_FORMATS} and the other formats of libsndfile") from None
    if reader.frames == 0:
        size = len(data) if data is not None else path.stat().st_size
        reader.close()
        if reader.format in ("WAV", "AIFF", "AU", "CAF", "W64", "WAVEX", "RF64") or size < 4096:
            raise ValueError(f"{path} holds no audio (0 samples)")
        raise ValueError(f"{path} ({reader.format}, {size} bytes) has no complete audio in it: it is probably cut "
                         "short or damaged; download or export it again")
    if reader.samplerate < MIN_RATE:
        reader.close()
        raise ValueError(f"{path} says its sample rate is {reader.samplerate} Hz, too low for speech (at least "
                         f"{MIN_RATE} Hz): its header is probably wrong; export it again")
    if reader.format == "MP3":
        # libsndfile 1.2.2's MP3 decoder returns silence after a few short reads (20 ms blocks, even 8192
        # samples): decode the whole file at once, which it gets right, and stream it from memory
        with reader:
            return _Decoded(reader.read(dtype="float32", always_2d=True), reader.samplerate)
    return reader


async def _read_pipe(path: Path) -> bytes:
    """All ``path`` (a FIFO or device) sends until its writer closes it, read as it becomes readable: opening a
    FIFO with no writer does not block, and waiting for one is cancellable (Ctrl-C, SIGTERM)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    chunks: list[bytes] = []
    size = 0
    logger.info("reading %s to its end before the conversation starts (it is a pipe)", path)
    try:
        loop.add_reader(fd, readable.set)
        # a FIFO without a writer reads as ended, but does not poll readable until a writer came: wait for that
        await readable.wait()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                readable.clear()
                await readable.wait()
                continue
            if not chunk:  # its writer closed it
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > PIPE_LIMIT:
                raise ValueError(f"{path} sent more than {PIPE_LIMIT >> 20} MiB: write it to a file and give that")
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class _Decoded:
    """A decoded file, read like a ``soundfile.SoundFile``."""

    def __init__(self, samples: np.ndarray, samplerate: int) -> None:
        self._samples = samples
        self._at = 0
        self.samplerate = samplerate
        self.channels = samples.shape[1]

    def read(self, frames: int, dtype: str, always_2d: bool) -> np.ndarray:
        block = self._samples[self._at : self._at + frames]
        self._at += len(block)
        return block

    def close(self) -> None:
        self._samples = self._samples[:0]


def _open_output(sf: Any, path: Path, sample_rate: int, channels: int) -> tuple[Any, Path]:
    """A writer for ``path``'s format, on a hidden partial file next to it; a ``ValueError`` if it cannot be."""
    if path.is_dir():
        raise ValueError(f"cannot write the output to {path}: it is a directory")
    kind = path.suffix.lstrip(".").upper()
    if kind not in sf.available_formats():
        raise ValueError(f"cannot write {path}: {path.suffix or 'no extension'} is not an audio file extension "
                         "(use .wav, .flac or .ogg)")
    partial = path.with_name(f".{path.name}.partial")
    try:  # the operating system's reasons (read-only, permission, no such folder), before libsndfile hides them
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.open("wb").close()
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        return sf.SoundFile(str(partial), "w", sample_rate, channels, format=kind), partial
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise ValueError(f"cannot write {path}: {getattr(exc, 'error_string', '') or exc}") from None


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c.isspace() for c in text)


class FileMode(TransportMode):
    """``python main.py file --input in.wav --output out.wav [--speed max]``.

    Several ``--input``s are several jobs, run concurrently in this process; ``--workers N`` spreads them
    over N processes (each re-runs this program with its share), so a batch uses every core.
    """

    finite = True

    def __init__(self) -> None:
        super().__init__(self._create, help="talk to the agent with audio files (offline, for tests and demos)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", required=True, action="append",
                            help="audio file spoken as the user (WAV, FLAC, OGG, MP3, ...; any rate and channels); "
                                 "repeat it for several jobs")
        out = parser.add_mutually_exclusive_group()
        out.add_argument("--output", action="append",
                         help="file the agent's audio is written to, one per --input (.wav, .flac or .ogg)")
        out.add_argument("--output-dir", help="write each job's output to DIR/<input name>.wav (inputs in different "
                                              "folders keep their folders below the inputs' common one)")
        parser.add_argument("--speed", choices=["realtime", "max"], default="realtime",
                            help="max: run on a virtual clock, as fast as possible (offline models only)")
        parser.add_argument("--output-rate", type=int, default=24000, choices=sorted(SUPPORTED_RATES))
        parser.add_argument("--workers", type=int, default=1, help="processes to spread the inputs over")

    def problems(self) -> list[tuple[str, str]]:
        try:
            load_soundfile()
        except AgentSessionError as exc:
            return [(str(exc).split(":")[0], SOUNDFILE_FIX)]
        return []

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        spread = min(options.workers, len(options.input)) > 1  # this process only waits for its workers: real time
        return VirtualClockEventLoop if options.speed == "max" and not spread else None

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        o = self.options
        inputs: list[str] = o.input
        outputs = output_paths(inputs, o.output, o.output_dir)
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
        # the workers hear of a Ctrl-C from this process only (once, as a clean stop), not from the terminal too
        pool = ProcessPool(program_command(), max_processes=workers, own_process_group=True)
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
    def _create(ctx: JobView) -> FileTransport:
        o = ctx.options
        return FileTransport(o.input[0], (o.output or [None])[0], speed=o.speed, sample_rate=o.output_rate)


def output_paths(inputs: Sequence[str], output: Sequence[str] | None, output_dir: str | None) -> list[str | None]:
    """The output file of each input, or a ``ValueError`` for a plan that would destroy audio.

    ``output_dir``: ``DIR/<the input's path below the inputs' common folder>`` with a ``.wav`` suffix, so
    ``a/x.wav`` and ``b/x.wav`` go to ``DIR/a/x.wav`` and ``DIR/b/x.wav`` (inputs of one folder: ``DIR/<name>.wav``).
    Refused: an output that is one of the inputs, and two inputs written to the same output.
    """
    if output_dir:
        resolved = [Path(i).resolve() for i in inputs]
        common = Path(os.path.commonpath([p.parent for p in resolved]))
        outputs: list[str] = [str(Path(output_dir) / p.relative_to(common).with_suffix(".wav")) for p in resolved]
    elif output:
        if len(output) != len(inputs):
            raise ValueError(f"{len(inputs)} --input but {len(output)} --output: give one each, or --output-dir")
        outputs = list(output)
    else:
        return [None] * len(inputs)
    read = {_same_file(i) for i in inputs}
    written: dict[str, str] = {}
    for i, out in zip(inputs, outputs, strict=True):
        key = _same_file(out)
        if key in read:
            raise ValueError(f"the output {out} is also an input: it would be overwritten; write somewhere else")
        if key in written:
            raise ValueError(f"{written[key]} and {i} would both be written to {out}: give each its own --output")
        written[key] = i
    return list(outputs)


def _same_file(path: str) -> str:
    return os.path.normcase(str(Path(path).resolve()))


async def _relay(proc: asyncio.subprocess.Process, prefix: str) -> None:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        print(prefix + raw.decode(errors="replace").rstrip("\n"), flush=True)
