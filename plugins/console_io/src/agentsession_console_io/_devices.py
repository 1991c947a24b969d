"""PortAudio through ``sounddevice``: loading it, finding devices, picking a rate, and clear errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from agentsession import SUPPORTED_RATES, AgentSessionError

logger = logging.getLogger("agentsession.console")

Kind = Literal["input", "output"]

# PaErrorCode values this module tells apart.
_INVALID_CHANNEL_COUNT = -9998
_INVALID_SAMPLE_RATE = -9997
_INVALID_DEVICE = -9996
_DEVICE_UNAVAILABLE = -9985
_EBUSY = -16  # ALSA's host error for a device another program holds

PREFERRED_RATE = 48000

INSTALL_HINT = (
    "the PortAudio library was not found: install it (Debian/Ubuntu: `apt-get install libportaudio2`, "
    "Fedora: `dnf install portaudio`, macOS: `brew install portaudio`), or run without audio devices: "
    "`console --text --no-playback`"
)


class ConsoleDeviceError(AgentSessionError):
    """An audio device problem, with a message that says what to do about it."""


def load_sounddevice() -> Any:
    """Import ``sounddevice``; a missing PortAudio becomes a ``ConsoleDeviceError`` that says what to install."""
    try:
        import sounddevice  # type: ignore[import-untyped]
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise ConsoleDeviceError(INSTALL_HINT) from exc
    return sounddevice


@dataclass(frozen=True)
class DeviceConfig:
    """One opened-to-be device: where, at which rate, how many channels."""

    kind: Kind
    index: int
    name: str
    sample_rate: int
    channels: int

    def describe(self) -> str:
        return f"[{self.index}] {self.name} ({self.sample_rate} Hz, {'mono' if self.channels == 1 else 'stereo'})"


def parse_device(spec: str | int | None) -> str | int | None:
    """A device given on the command line: an index (``"3"``) or part of a name (``"USB Mic"``)."""
    if spec is None or isinstance(spec, int):
        return spec
    spec = spec.strip()
    return int(spec) if spec.lstrip("-").isdigit() else spec


def resolve(sd: Any, spec: str | int | None, kind: Kind, sample_rate: int | None) -> DeviceConfig:
    """Find the ``kind`` device for ``spec`` (default device if ``None``) and a rate and channel count it takes.

    An unsupported ``sample_rate`` falls back to one the device supports (the session's converter
    resamples); every failure is a ``ConsoleDeviceError`` with a clear message.
    """
    role = "input device (microphone)" if kind == "input" else "output device (speakers)"
    option = f"--{kind}-device"
    devices = list(sd.query_devices())
    if not any(d[f"max_{kind}_channels"] > 0 for d in devices):
        hint = "--text types instead of speaking" if kind == "input" else "--no-playback goes without"
        raise ConsoleDeviceError(f"no {role} found on this machine ({hint})")
    device = parse_device(spec)
    try:
        info = sd.query_devices(device, kind)
    except ValueError as exc:  # no device, or several, matching a name
        raise ConsoleDeviceError(f"{role}: {exc} (see --list-devices)") from None
    except sd.PortAudioError as exc:
        if device is None:
            raise ConsoleDeviceError(f"there is no default {role}; pick one with {option} (see --list-devices)") from None
        raise ConsoleDeviceError(f"{role} {device!r} does not exist (see --list-devices): {exc}") from None
    if info[f"max_{kind}_channels"] < 1:
        raise ConsoleDeviceError(f"{info['name']!r} has no {kind} channels; pick another with {option} (see --list-devices)")
    index, name = int(info["index"]), str(info["name"])
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    default_rate = int(info["default_samplerate"])
    rates = [sample_rate] if sample_rate else []
    rates += [r for r in (PREFERRED_RATE, default_rate, *sorted(SUPPORTED_RATES, reverse=True)) if r not in rates]
    channel_counts = [c for c in (1, 2) if c <= info[f"max_{kind}_channels"]]
    last: Exception | None = None
    for rate in rates:
        if rate not in SUPPORTED_RATES:
            continue
        for channels in channel_counts:
            try:
                check(device=index, channels=channels, dtype="int16", samplerate=rate)
            except sd.PortAudioError as exc:
                if error_code(exc) in (_INVALID_SAMPLE_RATE, _INVALID_CHANNEL_COUNT):
                    last = exc
                    continue
                raise translate(exc, kind, name) from None
            except ValueError as exc:
                last = exc
                continue
            if sample_rate and rate != sample_rate:
                logger.warning("%s %r does not support %d Hz; using %d Hz (the session resamples)",
                               kind, name, sample_rate, rate)
            return DeviceConfig(kind, index, name, rate, channels)
    raise ConsoleDeviceError(f"{role} {name!r} supports none of the rates {sorted(SUPPORTED_RATES)} Hz: {last}")


def error_code(exc: BaseException) -> int | None:
    """The PaErrorCode of a ``sounddevice.PortAudioError``, if it carries one."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def translate(exc: BaseException, kind: Kind, name: str) -> ConsoleDeviceError:
    """A PortAudio error on opening ``name`` as a message that says what happened."""
    role = "input device (microphone)" if kind == "input" else "output device (speakers)"
    code = error_code(exc)
    args: tuple[Any, ...] = getattr(exc, "args", ())
    host_code = args[2][1] if len(args) > 2 and isinstance(args[2], tuple) and len(args[2]) > 1 else None
    try:
        text = str(exc)
    except Exception:  # sounddevice looks the host API up to format a host error
        text = str(args[0]) if args else type(exc).__name__
    if code == _DEVICE_UNAVAILABLE or host_code == _EBUSY or "busy" in text.lower():
        return ConsoleDeviceError(f"{role} {name!r} is busy: another program is using it; close it or pick "
                                  f"another device with --{kind}-device ({text})")
    if code == _INVALID_DEVICE:
        return ConsoleDeviceError(f"{role} {name!r} is not usable (unplugged?); see --list-devices ({text})")
    if code == _INVALID_SAMPLE_RATE:
        return ConsoleDeviceError(f"{role} {name!r} rejected the sample rate; try --sample-rate ({text})")
    return ConsoleDeviceError(f"cannot open the {role} {name!r}: {text}")


def device_table(sd: Any) -> str:
    """What ``--list-devices`` prints: every device with its channels and default rate, defaults marked."""
    devices = list(sd.query_devices())
    if not devices:
        return "no audio devices found (no sound card, or the sound server is not running)"
    default_in, default_out = (int(d) for d in sd.default.device)
    lines = ["  index  in  out  rate    name"]
    for i, d in enumerate(devices):
        mark = ("<" if i == default_in else " ") + (">" if i == default_out else " ")
        hostapi = sd.query_hostapis(d["hostapi"])["name"]
        lines.append(f"{mark} {i:>4} {d['max_input_channels']:>3} {d['max_output_channels']:>4}  "
                     f"{int(d['default_samplerate']):>6}  {d['name']}, {hostapi}")
    lines.append("< default input, > default output; pass an index or part of a name to --input-device/--output-device")
    return "\n".join(lines)
