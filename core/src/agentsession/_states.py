"""User and agent states (DESIGN.md section 5)."""

from __future__ import annotations

from enum import Enum


class _StateEnum(str, Enum):
    """``str()`` and f-strings give the lowercase value (``f"{state}"`` is ``idle``), as VideoSDK users expect."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class UserState(_StateEnum):
    """What the user is doing, as the session sees it."""

    IDLE = "idle"
    SPEAKING = "speaking"
    LISTENING = "listening"


class AgentState(_StateEnum):
    """What the agent is doing."""

    STARTING = "starting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    CLOSING = "closing"
