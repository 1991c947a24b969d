"""The command line's modes: the transports the installed plugins provide (``agentsession_transports``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._manager import create_manager, provided
from ._transport import TransportMode, as_mode

logger = logging.getLogger("agentsession.worker")

KNOWN_MODES = {"console": "agentsession-console-io", "playground": "agentsession-webrtc", "room": "agentsession-videosdk"}


def transport_modes(extra: Sequence[object] = ()) -> dict[str, TransportMode]:
    """Every mode the installed plugins (and ``extra`` ones) provide; the first registration of a name wins."""
    modes: dict[str, TransportMode] = {}
    for plugin, name, value in provided(create_manager(list(extra)), "agentsession_transports"):
        if name in modes:
            logger.warning("mode %r from plugin %r ignored: already provided", name, plugin)
            continue
        mode = as_mode(value)
        mode.provider = plugin
        modes[name] = mode
    return modes




def _mode_index(args: list[str]) -> int:
    """Where the mode stands: after the global options (``--log-level X``, ``-h``)."""
    i = 0
    while i < len(args):
        if args[i] == "--log-level":
            i += 2
        elif args[i].startswith("--log-level=") or args[i] in ("-h", "--help"):
            i += 1
        else:
            break
    return min(i, len(args))
