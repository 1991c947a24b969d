"""User and agent states (DESIGN.md section 5)."""

from __future__ import annotations

from enum import StrEnum


class UserState(StrEnum):
    """What the user is doing, as the session sees it; ``str()`` and f-strings give the value (``"idle"``)."""

    IDLE = "idle"
    SPEAKING = "speaking"
    LISTENING = "listening"


class AgentState(StrEnum):
    """What the agent is doing; ``str()`` and f-strings give the value (``"speaking"``)."""

    STARTING = "starting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    CLOSING = "closing"
