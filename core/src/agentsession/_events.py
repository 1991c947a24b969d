"""Every event a session emits (``session.on(name, callback)``), one frozen dataclass each.

An event reads like the dict VideoSDK users get (``data["state"]``, ``data.get("code")``, ``dict(data)``,
``{**data}``), and like a typed record (``event.state``). ``EventName`` lists the names; ``session.on`` refuses
any other with the closest valid one.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, TypeAlias, get_args

from ._audio import AudioFrame
from ._metrics import TurnMetrics
from ._states import AgentState, UserState

EventName: TypeAlias = Literal[
    "user_state_changed", "agent_state_changed", "user_transcript", "agent_transcript", "function_tool_called",
    "metrics_collected", "error", "reconnecting", "reconnected", "agent_changed", "wake_up", "false_interruption",
    "closed", "user_audio", "agent_audio",
]
EVENT_NAMES: tuple[str, ...] = get_args(EventName)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """An event class's fields, in order (computed once per class)."""
    return tuple(f.name for f in fields(cls))


class SessionEvent(Mapping[str, Any]):
    """Base of the session's events: a frozen record with dict-style reading.

    Keys are the fields, but for those in ``_optional``, which are left out while empty (``None``/``False``).
    """

    __slots__ = ()
    event_name: ClassVar[str]
    _optional: ClassVar[frozenset[str]] = frozenset()

    def _keys(self) -> list[str]:
        return [name for name in _field_names(type(self)) if not (name in self._optional and not getattr(self, name))]

    def __getitem__(self, key: str) -> Any:
        if key in _field_names(type(self)) and not (key in self._optional and not getattr(self, key)):
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of it (for JSON, say)."""
        return {key: getattr(self, key) for key in self._keys()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._keys())})"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UserStateChanged(SessionEvent):
    event_name: ClassVar[str] = "user_state_changed"
    state: UserState
    previous: UserState
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AgentStateChanged(SessionEvent):
    event_name: ClassVar[str] = "agent_state_changed"
    state: AgentState
    previous: AgentState
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UserTranscribed(SessionEvent):
    """The user's words: interim (``final=False``) and final; ``end_of_turn`` says why a cascade's turn ended;
    ``typed`` marks text the user typed."""

    event_name: ClassVar[str] = "user_transcript"
    _optional: ClassVar[frozenset[str]] = frozenset({"end_of_turn", "typed"})
    text: str
    final: bool
    end_of_turn: str | None = None
    typed: bool = False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AgentTranscribed(SessionEvent):
    """The agent's words: deltas (``final=False``), then a response's whole text."""

    event_name: ClassVar[str] = "agent_transcript"
    text: str
    final: bool
    speech_id: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FunctionToolCalled(SessionEvent):
    event_name: ClassVar[str] = "function_tool_called"
    call_id: str
    name: str
    arguments: str
    result: str
    is_error: bool
    duration: float | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MetricsCollected(SessionEvent):
    """One turn's ``TurnMetrics``; its fields read as keys (``m["e2e"]``)."""

    event_name: ClassVar[str] = "metrics_collected"
    metrics: TurnMetrics

    def _keys(self) -> list[str]:
        return list(self.metrics.as_dict())

    def __getitem__(self, key: str) -> Any:
        data = self.metrics.as_dict()
        if key in data:
            return data[key]
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return self.metrics.as_dict()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ErrorOccurred(SessionEvent):
    """Something failed: ``component`` says what (``"stt"``, ``"llm"``, ``"tts"``, ``"realtime"``, ``"tool"``,
    ``"agent"``, ...); a non-recoverable error closes the session."""

    event_name: ClassVar[str] = "error"
    message: str
    recoverable: bool = True
    code: str | None = None
    component: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ReconnectingEvent(SessionEvent):
    event_name: ClassVar[str] = "reconnecting"
    attempt: int
    reason: str
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ReconnectedEvent(SessionEvent):
    event_name: ClassVar[str] = "reconnected"
    downtime: float
    audio_lost: float
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AgentChanged(SessionEvent):
    event_name: ClassVar[str] = "agent_changed"
    agent: Any
    previous: Any


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WakeUp(SessionEvent):
    event_name: ClassVar[str] = "wake_up"
    idle_s: float
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FalseInterruption(SessionEvent):
    event_name: ClassVar[str] = "false_interruption"
    timestamp: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Closed(SessionEvent):
    event_name: ClassVar[str] = "closed"
    reason: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UserAudio(SessionEvent):
    """A frame of the user's audio as the pipeline got it; ``at``: seconds since the session started."""

    event_name: ClassVar[str] = "user_audio"
    frame: AudioFrame
    at: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AgentAudioPlayed(SessionEvent):
    """A frame of the agent's audio handed to the transport; ``at``: seconds since the session started."""

    event_name: ClassVar[str] = "agent_audio"
    frame: AudioFrame
    at: float


def check_event_name(name: str) -> None:
    """Refuse a name that no session event has, naming the closest one."""
    if name in EVENT_NAMES:
        return
    close = difflib.get_close_matches(name, EVENT_NAMES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"the events are: {', '.join(EVENT_NAMES)}"
    raise ValueError(f"no session event is called {name!r}: {hint}")
