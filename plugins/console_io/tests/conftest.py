"""Fixtures: a fake ``sounddevice`` (real-time callback threads, the real exception and flag classes) and a
user-mode PulseAudio with null sinks, the emulated sound card the slow tests talk to."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agentsession import AudioFrame
from agentsession_console_io._mode import NOISY_LOGGERS

sd = pytest.importorskip("sounddevice")


# ---------------------------------------------------------------------------------------------- fake


class FakeStream:
    """Calls ``callback`` every ``blocksize`` samples of real time from its own thread, as PortAudio does."""

    def __init__(self, owner: FakeSoundDevice, kind: str, *, device: int, samplerate: float, blocksize: int,
                 channels: int, dtype: str, latency: Any, callback: Callable[..., None],
                 finished_callback: Callable[[], None] | None = None) -> None:
        info = owner.devices[device]
        if device in owner.busy:
            raise sd.PortAudioError("Error opening Stream: Device unavailable", -9985)
        if int(samplerate) not in info["rates"]:
            raise sd.PortAudioError("Error opening Stream: Invalid sample rate", -9997)
        assert dtype == "int16" and blocksize > 0
        self.owner, self.kind, self.device = owner, kind, device
        self.samplerate, self.blocksize, self.channels = int(samplerate), blocksize, channels
        self.callback, self.finished_callback = callback, finished_callback
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.callback_thread: int | None = None
        owner.streams.append(self)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"fake-{self.kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = self.blocksize / self.samplerate
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))
            if self._stop.is_set():
                break
            if self.stalled.is_set():
                continue
            self.callback_thread = threading.get_ident()
            flags = sd.CallbackFlags()
            if self.kind == "input":
                self.callback(self.owner.take_mic(self.blocksize, self.channels), self.blocksize, None, flags)
            else:
                out = np.full((self.blocksize, self.channels), 12345, np.int16)  # garbage: must be overwritten
                self.callback(out, self.blocksize, None, flags)
                self.owner.speaker.append(out.copy())
        if self.finished_callback is not None:
            self.finished_callback()

    def lose(self) -> None:
        """The device goes away: the stream ends by itself."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def close(self) -> None:
        self.stop()
        self.owner.closed.append(self)


@dataclass
class FakeSoundDevice:
    """Just enough of the ``sounddevice`` module for ``ConsoleTransport``: devices, settings checks, streams."""

    devices: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "Fake Mic", "index": 0, "hostapi": 0, "max_input_channels": 1, "max_output_channels": 0,
         "default_samplerate": 48000.0, "rates": {16000, 44100, 48000}},
        {"name": "Fake Speakers", "index": 1, "hostapi": 0, "max_input_channels": 0, "max_output_channels": 2,
         "default_samplerate": 48000.0, "rates": {44100, 48000}},
    ])
    default_device: tuple[int, int] = (0, 1)
    busy: set[int] = field(default_factory=set)
    speaker: list[np.ndarray] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    closed: list[FakeStream] = field(default_factory=list)

    PortAudioError = sd.PortAudioError

    def __post_init__(self) -> None:
        self.default = SimpleNamespace(device=list(self.default_device))
        self._mic: list[np.ndarray] = []
        self._lock = threading.Lock()

    # what the tests do
    def feed(self, audio: AudioFrame) -> None:
        """Queue ``audio`` (at the input device's rate) to be captured by the microphone."""
        with self._lock:
            self._mic.append(audio.to_mono().data[:, 0].copy())

    def take_mic(self, n: int, channels: int) -> np.ndarray:
        out = np.zeros(n, np.int16)
        filled = 0
        with self._lock:
            while filled < n and self._mic:
                head = self._mic[0]
                take = min(n - filled, len(head))
                out[filled:filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._mic.pop(0)
                else:
                    self._mic[0] = head[take:]
        return np.repeat(out[:, None], channels, axis=1)

    def stream(self, kind: str) -> FakeStream:
        return next(s for s in self.streams if s.kind == kind)

    def played(self) -> np.ndarray:
        return np.concatenate(self.speaker) if self.speaker else np.zeros((0, 1), np.int16)

    # the sounddevice API
    def query_devices(self, device: int | str | None = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return [dict(d) for d in self.devices]
        if device is None:
            device = self.default.device[0 if kind == "input" else 1]
            if device < 0 or device >= len(self.devices):
                raise sd.PortAudioError(f"Error querying device {device}")
        if isinstance(device, str):
            matches = [d for d in self.devices if device.lower() in d["name"].lower()
                       and (kind is None or d[f"max_{kind}_channels"] > 0)]
            if len(matches) != 1:
                raise ValueError(f"{'No' if not matches else 'Multiple'} {kind} device matching {device!r}")
            return dict(matches[0])
        if not 0 <= device < len(self.devices):
            raise sd.PortAudioError(f"Error querying device {device}", -9996)
        return dict(self.devices[device])

    def query_hostapis(self, index: int) -> dict[str, Any]:
        return {"name": "Fake API"}

    def _check(self, kind: str, device: int, channels: int, dtype: str, samplerate: float) -> None:
        info = self.devices[device]
        if channels > info[f"max_{kind}_channels"]:
            raise sd.PortAudioError("Invalid number of channels", -9998)
        if int(samplerate) not in info["rates"]:
            raise sd.PortAudioError("Invalid sample rate", -9997)

    def check_input_settings(self, *, device: int, channels: int, dtype: str, samplerate: float) -> None:
        self._check("input", device, channels, dtype, samplerate)

    def check_output_settings(self, *, device: int, channels: int, dtype: str, samplerate: float) -> None:
        self._check("output", device, channels, dtype, samplerate)

    def InputStream(self, **kwargs: Any) -> FakeStream:  # noqa: N802 - sounddevice's name
        return FakeStream(self, "input", **kwargs)

    def OutputStream(self, **kwargs: Any) -> FakeStream:  # noqa: N802 - sounddevice's name
        return FakeStream(self, "output", **kwargs)


@pytest.fixture
def fake_sd() -> Iterator[FakeSoundDevice]:
    fake = FakeSoundDevice()
    yield fake
    for stream in fake.streams:
        stream.stop()


@pytest.fixture
def make_fake_sd() -> Iterator[Callable[..., FakeSoundDevice]]:
    made: list[FakeSoundDevice] = []

    def make(**kwargs: Any) -> FakeSoundDevice:
        made.append(FakeSoundDevice(**kwargs))
        return made[-1]

    yield make
    for fake in made:
        for stream in fake.streams:
            stream.stop()


# ---------------------------------------------------------------------------------------------- PulseAudio

RATE = 48000


@dataclass
class Pulse:
    """A running user-mode PulseAudio: ``speaker`` (default sink) and ``mic`` (default source, fed by ``micfeed``)."""

    env: dict[str, str]
    pids: list[int]

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Speak ``wav`` into the microphone, in real time."""
        return subprocess.Popen(["paplay", "-d", "micfeed", "--latency-msec=10", str(wav)], env=self.env)

    def record(self, raw: Path) -> subprocess.Popen[bytes]:
        """Capture the speakers into ``raw`` (s16le mono 48 kHz) until stopped."""
        return subprocess.Popen(["parec", "-d", "speaker.monitor", "--format=s16le", f"--rate={RATE}",
                                 "--channels=1", "--latency-msec=10", "--raw", str(raw)], env=self.env)


def _run(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pulse]:
    """Start PulseAudio with null sinks (recipe: shared/notes/real-audio-and-browser-tests.md); kill it after."""
    for tool in ("pulseaudio", "pactl", "parec", "paplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs pulseaudio and pulseaudio-utils)")
    base = tmp_path_factory.mktemp("pa")
    runtime, home = base / "run", base / "home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home),
           "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    env.pop("PULSE_SINK", None)
    env.pop("PULSE_SOURCE", None)
    pids: list[int] = []
    keepalives: list[subprocess.Popen[bytes]] = []
    try:
        _run(["pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1", "--disallow-exit",
              f"--log-target=file:{runtime}/pa.log",
              "--load=module-native-protocol-unix auth-anonymous=1",
              f"--load=module-null-sink sink_name=speaker rate={RATE} channels=1 format=s16le",
              f"--load=module-null-sink sink_name=micfeed rate={RATE} channels=1 format=s16le",
              "--load=module-remap-source source_name=mic master=micfeed.monitor"], env)
        pids.append(int((runtime / "pulse" / "pid").read_text().strip()))
        _run(["pactl", "set-default-sink", "speaker"], env)
        _run(["pactl", "set-default-source", "mic"], env)
        # keep-alives: an idle null sink sits at 2 s latency and a new stream would stall ~1.5 s
        for source in ("speaker.monitor", "mic"):
            keepalives.append(subprocess.Popen(["parec", "-d", source, "--latency-msec=10", "--raw", "/dev/null"],
                                               env=env))
            pids.append(keepalives[-1].pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until every sink has come down from its idle latency
            latencies = [int(line.split()[1]) for line in _run(["pactl", "list", "sinks"], env).splitlines()
                         if line.strip().startswith("Latency:")]
            if latencies and max(latencies) < 100000:
                break
            time.sleep(0.1)
        yield Pulse(env, pids)
    finally:
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in keepalives:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def pulse_in_process(pulse: Pulse, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pulse]:
    """``pulse``, with this process's PortAudio re-initialised so it sees the Pulse devices."""
    for key in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER"):
        monkeypatch.setenv(key, pulse.env[key])
    sd._terminate()
    sd._initialize()
    yield pulse
    monkeypatch.undo()
    sd._terminate()
    sd._initialize()


@pytest.fixture(autouse=True)
def _library_log_levels() -> Iterator[None]:
    """Console mode raises the libraries' loggers to WARNING for the process; tests running it in this process
    must not leave other tests (that read those loggers' DEBUG lines) without them."""
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)  # (setLevel also clears the loggers' cached decisions)
