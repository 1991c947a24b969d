"""``ConsoleTransport``: the local microphone and speakers through PortAudio callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from agentsession import AgentState, AudioFrame, EnergyVAD, PacedTransport, PlayoutBuffer

from ._devices import ConsoleDeviceError, DeviceConfig, Kind, load_sounddevice, resolve, translate

if TYPE_CHECKING:
    from agentsession.plugin import SessionView

    from ._view import ConsoleView

logger = logging.getLogger("agentsession.console")

BLOCK_MS = 20


class ConsoleTransport(PacedTransport):
    """Microphone in, speakers out: PortAudio streams of 20 ms blocks driven by their callbacks.

    The callbacks run on PortAudio's thread and never block or touch asyncio objects: an input block is
    copied and handed to the event loop with ``call_soon_threadsafe``; an output block is pulled from the
    thread-safe ``PlayoutBuffer`` (underruns padded with silence and counted; ``played`` counts exactly
    the real samples handed to the device; ``clear`` takes effect at the next block). Devices, rates and
    channel counts are chosen at ``start``; the session converts to and from them.

    ``text=True`` opens no microphone and reads typed lines from ``stdin`` instead; ``playback=False``
    opens no speakers (output is paced and dropped). ``half_duplex`` mutes the microphone while the
    agent is audible (plus ``echo_tail`` seconds), because there is no echo cancellation. A device that
    delivers no callback for ``watchdog`` seconds is reported and ends the transport.
    """

    def __init__(
        self,
        *,
        input_device: str | int | None = None,
        output_device: str | int | None = None,
        sample_rate: int | None = None,
        text: bool = False,
        playback: bool = True,
        half_duplex: bool = False,
        view: ConsoleView | None = None,
        watchdog: float = 3.0,
        echo_tail: float = 0.3,
        max_input_backlog: float = 1.0,
        backend: Any = None,
        stdin: TextIO | None = None,
    ) -> None:
        super().__init__(block_ms=BLOCK_MS)
        if watchdog <= 0:
            raise ValueError("watchdog must be > 0 seconds")
        self.input_device = input_device
        self.output_device = output_device
        self.requested_rate = sample_rate
        self.text = text
        self.playback = playback
        self.half_duplex = half_duplex
        self.view = view
        self.watchdog = watchdog
        self.echo_tail = echo_tail
        self.input_config: DeviceConfig | None = None
        self.output_config: DeviceConfig | None = None
        self._backend = backend
        self._stdin = stdin
        self._max_backlog = max(1, int(max_input_backlog * 1000 / BLOCK_MS))
        self._input_q: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: dict[Kind, Any] = {}
        self._session: SessionView | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._failed = False
        # written by the PortAudio threads (plain attribute stores), read on the loop
        self._last_callback: dict[Kind, float] = {}
        self._last_audible = 0.0
        self._input_blocks = 0
        self._max_input_gap = 0.0
        self._input_overflows = 0
        self._output_underflows = 0
        # loop side
        self._input_position = 0
        self._dropped_input = 0
        self.level_db = float("-inf")
        self.muted = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open and start the devices (idempotent); a device problem is a ``ConsoleDeviceError``."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        sd = self._open_backend()
        if sd is not None and not self.text:
            self.input_config = resolve(sd, self.input_device, "input", self.requested_rate)
        if sd is not None and self.playback:
            try:
                self.output_config = resolve(sd, self.output_device, "output", self.requested_rate)
            except ConsoleDeviceError as exc:
                if not self.text:
                    raise
                logger.warning("%s; going on without playback", exc)
                self.playback = False
        if self.output_config is not None:
            self.sample_rate, self.channels = self.output_config.sample_rate, self.output_config.channels
            self.playout = PlayoutBuffer(self.sample_rate, self.channels)
            self._block = self.sample_rate * BLOCK_MS // 1000
        try:
            if self.output_config is not None:
                self._open(sd, self.output_config, self._output_callback)
            else:
                await super().start()  # no speakers: a clock on the loop pulls the playout buffer
            if self.input_config is not None:
                self._open(sd, self.input_config, self._input_callback)
        except BaseException:
            self._close_streams()
            raise
        self._started = True
        if self._streams:
            self._watch_task = self._loop.create_task(self._watch(), name="console-watchdog")
        if self.view is not None:
            self.view.start(self)

    def _open_backend(self) -> Any:
        if self.text and not self.playback:
            return None
        try:
            return self._backend if self._backend is not None else load_sounddevice()
        except ConsoleDeviceError as exc:
            if not self.text:
                raise
            logger.warning("%s; going on without playback", exc)
            self.playback = False
            return None

    def _open(self, sd: Any, config: DeviceConfig, callback: Callable[..., None]) -> None:
        cls = sd.InputStream if config.kind == "input" else sd.OutputStream
        now = time.monotonic()
        self._last_callback[config.kind] = now
        try:
            stream = cls(
                device=config.index,
                samplerate=config.sample_rate,
                blocksize=config.sample_rate * BLOCK_MS // 1000,
                channels=config.channels,
                dtype="int16",
                latency="low",
                callback=callback,
                finished_callback=partial(self._stream_finished, config.kind),
            )
            self._streams[config.kind] = stream
            stream.start()
        except sd.PortAudioError as exc:
            raise translate(exc, config.kind, config.name) from None
        logger.info("%s: %s", config.kind, config.describe())

    def bind(self, session: SessionView) -> None:
        self._session = session
        if self.view is not None:
            self.view.attach(session)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        await asyncio.to_thread(self._close_streams)
        self._input_q.put_nowait(None)
        await super().close()
        if self.view is not None:
            self.view.stop(self.stats())

    def _close_streams(self) -> None:
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            with contextlib.suppress(Exception):
                stream.stop()
            with contextlib.suppress(Exception):
                stream.close()

    # ------------------------------------------------------------------ input

    async def audio_input(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._input_q.get()) is not None:
            yield frame

    def text_input(self) -> AsyncIterator[str] | None:
        return self._typed_lines() if self.text else None

    def _input_callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: note the time, copy the block, hand it to the loop. Never blocks."""
        now = time.monotonic()
        if self._input_blocks:
            self._max_input_gap = max(self._max_input_gap, now - self._last_callback["input"])
        self._last_callback["input"] = now
        self._input_blocks += 1
        if status.input_overflow:
            self._input_overflows += 1
        _post(self._loop, self._on_input, indata.copy())

    def _on_input(self, data: np.ndarray) -> None:
        if self._closed or self.input_config is None:
            return
        rate = self.input_config.sample_rate
        frame = AudioFrame(data, rate, self._input_position / rate)
        self._input_position += data.shape[0]
        self.level_db = EnergyVAD.level_db(frame)
        self.muted = self.half_duplex and self.agent_audible()
        if self.muted:
            frame = AudioFrame(np.zeros_like(data), rate, frame.timestamp)
        if self.view is not None:
            self.view.input_level(self.level_db, self.muted)
        if self._input_q.qsize() >= self._max_backlog:  # nobody reads: keep the newest second
            self._input_q.get_nowait()
            self._dropped_input += 1
        self._input_q.put_nowait(frame)

    async def _typed_lines(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        stdin = self._stdin if self._stdin is not None else sys.stdin

        def read() -> None:  # a thread: reading a terminal or a pipe blocks
            for line in stdin:
                _post(loop, lines.put_nowait, line.rstrip("\r\n"))
            _post(loop, lines.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        while (line := await lines.get()) is not None:
            yield line
        await self._until_agent_idle()
        self.end("input done")

    async def _until_agent_idle(self, quiet: float = 1.0) -> None:
        """Return once the agent has been idle for ``quiet`` seconds (or the session closed)."""
        session = self._session
        if session is None:
            return
        idle, busy = asyncio.Event(), asyncio.Event()

        def check(_: object = None) -> None:
            now_idle = session.closed or session.agent_state in (AgentState.IDLE, AgentState.CLOSING)
            (idle if now_idle else busy).set()
            (busy if now_idle else idle).clear()

        session.on("agent_state_changed", check)
        session.on("closed", check)
        check()
        try:
            while True:
                await idle.wait()
                try:
                    await asyncio.wait_for(busy.wait(), quiet)
                except TimeoutError:
                    return
        finally:
            session.off("agent_state_changed", check)
            session.off("closed", check)

    # ------------------------------------------------------------------ output

    def _output_callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: pull one block from the playout buffer (silence on underrun). Never blocks."""
        now = time.monotonic()
        self._last_callback["output"] = now
        if status.output_underflow:
            self._output_underflows += 1
        samples, real = self.playout.pull(frames)
        outdata[:] = samples
        if real:
            self._last_audible = now

    def agent_audible(self) -> bool:
        """Whether agent audio is queued or came out of the speakers within ``echo_tail`` seconds."""
        return self.playout.buffered > 0 or time.monotonic() - self._last_audible < self.echo_tail

    # ------------------------------------------------------------------ failures and figures

    def _stream_finished(self, kind: Kind) -> None:
        """PortAudio thread: a stream stopped; unless we closed it (it left ``_streams`` first), the device is gone."""
        if kind in self._streams:
            _post(self._loop, self._device_failed, kind, "its stream stopped (device unplugged or lost?)")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watchdog / 4)
            now = time.monotonic()
            for kind in list(self._streams):
                silent = now - self._last_callback[kind]
                if silent > self.watchdog:
                    self._device_failed(kind, f"it delivered no audio for {silent:.1f} s")
                    return

    def _device_failed(self, kind: Kind, why: str) -> None:
        if self._closed or self._failed:
            return
        self._failed = True
        config = self.input_config if kind == "input" else self.output_config
        name = config.name if config is not None else kind
        message = f"the {kind} device {name!r} stopped working: {why}"
        logger.warning("%s", message)  # the worker reports the job's failure as an error
        if self.view is not None:
            self.view.error(message)
        self.fail(message)

    def stats(self) -> dict[str, float | int]:
        """Figures for the summary: seconds played, underruns, overflows, dropped input, worst input gap."""
        return {
            "played_s": round(self.played, 3),
            "playout_underruns": self.playout.underruns,
            "output_underflows": self._output_underflows,
            "input_overflows": self._input_overflows,
            "input_dropped": self._dropped_input,
            "input_blocks": self._input_blocks,
            "max_input_gap_ms": round(self._max_input_gap * 1000, 1),
        }

    def __repr__(self) -> str:
        devices = ", ".join(c.describe() for c in (self.input_config, self.output_config) if c is not None)
        return f"<ConsoleTransport {devices or 'not started'}{' text' if self.text else ''}>"


def _post(loop: asyncio.AbstractEventLoop | None, callback: Callable[..., object], *args: Any) -> None:
    """Schedule ``callback`` on ``loop`` from another thread; a closed loop drops it."""
    if loop is None:
        return
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
