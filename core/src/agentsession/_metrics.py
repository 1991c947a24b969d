"""Per-turn latency metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TurnMetrics:
    """Latencies of one agent turn, in seconds (``None`` where not measurable).

    - ``eou_delay``: end of the user's speech -> the pipeline declared the turn over.
    - ``ttfa``: turn over (or ``say``/``reply`` called) -> first agent audio from the model.
    - ``e2e``: end of the user's speech (or the request) -> first agent audio handed to the transport.
    """

    turn: int
    trigger: str  # "user", "say", "reply", "text", "tool"
    eou_delay: float | None = None
    ttfa: float | None = None
    e2e: float | None = None
    interrupted: bool = False
    audio_duration: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (what the ``metrics_collected`` event carries)."""
        return asdict(self)
