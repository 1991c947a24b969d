"""agentsession-console-io: the ``console`` transport (local microphone and speakers, live terminal view)."""

from __future__ import annotations

from ._devices import ConsoleDeviceError, DeviceConfig, device_table, load_sounddevice
from ._mode import ConsoleMode
from ._transport import ConsoleTransport
from ._view import ConsoleView, LatencyBudgets

__all__ = [
    "ConsoleDeviceError",
    "ConsoleMode",
    "ConsoleTransport",
    "ConsoleView",
    "DeviceConfig",
    "LatencyBudgets",
    "device_table",
    "load_sounddevice",
]
