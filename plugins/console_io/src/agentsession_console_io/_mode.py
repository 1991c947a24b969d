"""The ``console`` command-line mode: its options, and opening the devices before the job runs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentsession import SUPPORTED_RATES, Transport, TransportMode

from ._devices import ConsoleDeviceError, device_table, load_sounddevice
from ._transport import ConsoleTransport
from ._view import ConsoleView

if TYPE_CHECKING:
    import asyncio

    from agentsession.plugin import JobView



#: libraries that log every request at INFO (3 lines a turn above the live panel): WARNING and up only in the
#: console, unless ``--log-level DEBUG``
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "websockets", "google_genai", "google.genai",
                 "aiohttp.access", "urllib3", "anthropic", "deepgram", "elevenlabs", "cartesia")


def quiet_third_party_logs() -> None:
    """Raise the libraries' loggers (``NOISY_LOGGERS``) to WARNING: their problems still show, their chatter not."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class _ListDevices(argparse.Action):
    """``--list-devices``: print the audio devices and exit, like ``--help``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            table = device_table(load_sounddevice())
        except ConsoleDeviceError as exc:
            parser.exit(2, f"error: {exc}\n")
        print(table)
        parser.exit()


class ConsoleMode(TransportMode):
    """``python main.py console [--input-device D] [--output-device D] [--sample-rate R] [--text] ...``.

    ``run`` opens the devices before the job starts, so a device problem is one clear line on stderr
    (exit status 2) instead of a failed job.
    """

    def __init__(self) -> None:
        super().__init__(self._create, help="talk to the agent with the microphone and speakers")
        self._options: argparse.Namespace | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--list-devices", action=_ListDevices, help="list the audio devices and exit")
        parser.add_argument("--input-device", metavar="DEVICE", help="microphone: index or part of its name")
        parser.add_argument("--output-device", metavar="DEVICE", help="speakers: index or part of their name")
        parser.add_argument("--sample-rate", type=int, choices=sorted(SUPPORTED_RATES), metavar="HZ",
                            help="device sample rate (default 48000, else what the device supports)")
        parser.add_argument("--text", action="store_true",
                            help="type instead of speaking: no microphone is opened")
        parser.add_argument("--no-playback", action="store_true",
                            help="open no speakers: the agent's audio is dropped, its transcript still shows")
        parser.add_argument("--half-duplex", action="store_true",
                            help="mute the microphone while the agent speaks (no echo cancellation here)")

    def problems(self) -> list[tuple[str, str]]:
        """PortAudio, and a microphone and speakers it can see (``agentsession doctor --mode console``)."""
        try:
            sd = load_sounddevice()
        except ConsoleDeviceError:
            return [("the PortAudio library was not found",
                     "apt-get install libportaudio2 (Debian/Ubuntu), dnf install portaudio, brew install portaudio "
                     "(macOS); or go without audio devices: console --text --no-playback")]
        try:
            devices: list[dict[str, Any]] = list(sd.query_devices())
        except Exception as exc:  # PortAudio failing to initialise
            return [(f"PortAudio cannot list the audio devices: {type(exc).__name__}: {exc}",
                     "start the sound server (pulseaudio --start) or check the audio setup")]
        problems = []
        if not any(d.get("max_input_channels", 0) > 0 for d in devices):
            problems.append(("no microphone (input device) found",
                             "connect one or start the sound server (pulseaudio --start); console --text types instead"))
        if not any(d.get("max_output_channels", 0) > 0 for d in devices):
            problems.append(("no speakers (output device) found",
                             "connect some or start the sound server (pulseaudio --start); console --no-playback "
                             "goes without"))
        return problems

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        self._options = options  # the worker hands the parsed options here, before run()
        return None

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        if self._options is None:
            await run_job(None)
            return
        if getattr(self._options, "log_level", "INFO") != "DEBUG":
            quiet_third_party_logs()
        transport = self.transport_for(self._options)
        try:
            await transport.start()
        except ConsoleDeviceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        await run_job(transport)

    @staticmethod
    def transport_for(options: argparse.Namespace) -> ConsoleTransport:
        """A transport (not started) for parsed ``console`` options."""
        text = bool(getattr(options, "text", False))
        return ConsoleTransport(
            input_device=getattr(options, "input_device", None),
            output_device=getattr(options, "output_device", None),
            sample_rate=getattr(options, "sample_rate", None),
            text=text,
            playback=not getattr(options, "no_playback", False),
            half_duplex=bool(getattr(options, "half_duplex", False)),
            view=ConsoleView(live=False if text else None),
        )

    def _create(self, ctx: JobView) -> ConsoleTransport:
        return self.transport_for(ctx.options)
