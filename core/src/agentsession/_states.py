"""User and agent states (DESIGN.md section 5)."""

from __future__ import annotations

from enum import Enum


class UserState(str, Enum):
    """What the user is doing, as the session sees it."""

    IDLE = "idle"
    SPEAKING = "speaking"
    LISTENING = "listening"


class AgentState(str, Enum):
    """What the agent is doing."""

    STARTING = "starting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    CLOSING = "closing"
