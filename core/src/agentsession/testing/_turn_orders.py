"""User turns heard by the session's own VAD (a model that reports no user speech): every order of the VAD's
start/stop and the model's answer, a VAD the test cues, and what must hold for each order."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from .._audio import AudioFrame
from .._models import VAD, VADEvent

#: the model's events of one answer: its transcript, its audio, the end of its turn
MODEL_EVENTS = ("transcript", "audio", "done")


def _sensible(order: tuple[str, ...]) -> bool:
    at = {name: i for i, name in enumerate(order)}
    if not (at["vad_start"] < at["vad_stop"] and at["done"] > max(at["transcript"], at["audio"])):
        return False
    return at["vad_start"] <= min(at[e] for e in MODEL_EVENTS) + 1


#: every order that makes sense of ``vad_start``, ``vad_stop`` and ``MODEL_EVENTS``: the model ends its turn after
#: its transcript and audio, the VAD starts before it stops, and an answer starts before the VAD's start only
#: shortly (the VAD reports late: the start is the event right after the answer's first, within the grace)
LOCAL_VAD_ORDERS: tuple[tuple[str, ...], ...] = tuple(
    o for o in itertools.permutations(("vad_start", "vad_stop", *MODEL_EVENTS)) if _sensible(o))


class CuedVAD(VAD):
    """A VAD double for ``AgentSession(vad=...)``: ``cue("start"|"end")``, and the next frame pushed reports it
    (a start where that frame ends, an end ``silence`` s before it: the VAD's wait for silence)."""

    def __init__(self, silence: float = 0.5) -> None:
        super().__init__()
        self.silence = silence
        self.pushed = 0.0
        self._cued: list[str] = []

    def cue(self, kind: str) -> None:
        if kind not in ("start", "end"):
            raise ValueError(f"cue 'start' or 'end', got {kind!r}")
        self._cued.append(kind)

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        self.pushed += frame.duration
        events = [VADEvent("start", self.pushed) if kind == "start" else
                  VADEvent("end", max(0.0, self.pushed - self.silence)) for kind in self._cued]
        self._cued.clear()
        return events

    def reset(self) -> None:
        self._cued.clear()


@dataclass
class TurnWatch:
    """Records a session's agent states, turn metrics, false interruptions and wake-ups (set it as
    ``session.on_wake_up``), with loop times, to check ``assert_one_answered_turn``."""

    states: list[tuple[float, str]] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    false_interruptions: int = 0
    woken: list[float] = field(default_factory=list)

    def attach(self, session: Any) -> TurnWatch:
        loop = asyncio.get_running_loop()
        session.on("agent_state_changed", lambda d: self.states.append((loop.time(), str(d["state"]))))
        session.on("metrics_collected", self.metrics.append)
        session.on("false_interruption", lambda _: self._false_interruption())
        session.on_wake_up = lambda: self.woken.append(loop.time())
        return self

    def _false_interruption(self) -> None:
        self.false_interruptions += 1

    def assert_one_answered_turn(self, wake_up: float) -> None:
        """Once everything was played out and ``UNANSWERED_AFTER`` has passed: the answer came, never THINKING
        after it started playing, one turn (triggered by the user, not cut, with an e2e), idle since, and one
        wake-up ``wake_up`` s after the agent went idle."""
        names = [s for _, s in self.states]
        assert "speaking" in names, names
        assert "thinking" not in names[names.index("speaking"):], names
        assert names[-1] == "idle", names
        assert self.false_interruptions == 0, "the user's speech counted as a barge-in on its own answer"
        assert len(self.metrics) == 1, [m.to_dict() for m in self.metrics]
        metrics = self.metrics[0]
        assert metrics["trigger"] == "user" and not metrics["interrupted"], metrics.to_dict()
        assert metrics["e2e"] is not None and metrics["e2e"] >= 0, metrics.to_dict()
        idle_at = self.states[-1][0]
        assert len(self.woken) == 1 and abs(self.woken[0] - (idle_at + wake_up)) < 0.05, (self.woken, idle_at)
