"""``SpeechHandle``: one answer the user will hear, and the responses it is made of."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ._chat import ChatMessage
from ._metrics import TurnMetrics
from ._pipeline_events import ToolCall


@dataclass(eq=False)
class Response:
    """One model response of a speech: its audio and transcript, its tool calls, where it stands in playout."""

    id: str
    speech: SpeechHandle
    item: ChatMessage | None = None  # the assistant message in the history (made on first audio or text)
    received: float = 0.0  # seconds of audio received from the model
    done: bool = False  # ResponseDone came: no more audio
    calls: list[ToolCall] = field(default_factory=list)
    # playout (kept by SpeechPlayout)
    start: float | None = None  # transport position where its first frame went out
    submitted: float = 0.0  # seconds handed to the transport
    queued: int = 0  # frames waiting in the playout queue
    played_out: bool = False

    def heard(self, played: float) -> float:
        """Seconds of this response the user heard, given the transport's ``played`` position."""
        if self.start is None:
            return 0.0
        return min(max(0.0, played - self.start), self.submitted)


class SpeechHandle:
    """One answer the user will hear: a ``say``, a ``reply``, or the answer to a user's turn, with the
    answers after its tool calls. Awaiting it waits until it was played out (or interrupted).

    Like LiveKit's ``SpeechHandle``; also VideoSDK 1.0's ``UtteranceHandle`` (``is_interruptible``; its
    ``interrupt()`` refuses a speech that does not allow interruptions unless forced).
    ``interrupt`` is what stops it (the session's answers give it; a handle holds nothing else of the session).
    """

    def __init__(self, interrupt: Callable[[SpeechHandle], object], *, trigger: str,
                 allow_interruptions: bool = True, barge_in: bool = True) -> None:
        self.id = f"speech_{uuid.uuid4().hex[:8]}"
        self.trigger = trigger
        self.allow_interruptions = allow_interruptions
        self.barge_in = barge_in and allow_interruptions  # whether the user's speech interrupts it
        self.metrics = TurnMetrics(turn=0, trigger=trigger)
        self.responses: list[Response] = []
        self.expecting: set[str] = set()  # response ids asked for and not begun
        self.tools_running = 0
        self.in_history = True  # its words go to the history (``say(add_to_chat_context=False)``: not)
        self.origin = 0.0  # loop time latency is measured from
        self.requested = 0.0  # loop time the response was asked for
        self._stop = interrupt
        self._interrupted = False
        self._response_count = itertools.count(1)
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        state = "interrupted" if self._interrupted else "done" if self.done() else "active"
        return f"<SpeechHandle {self.id} {self.trigger} {state}>"

    @property
    def interrupted(self) -> bool:
        """Whether it was cut short (by the user, ``interrupt()``, or the model)."""
        return self._interrupted

    def done(self) -> bool:
        """Whether it has been played out, or interrupted."""
        return self._done.done()

    @property
    def is_interruptible(self) -> bool:
        """VideoSDK's name for ``allow_interruptions``."""
        return self.allow_interruptions

    def interrupt(self, *, force: bool = False) -> SpeechHandle:
        """Stop this speech now. A speech that does not allow interruptions raises ``RuntimeError`` (as
        VideoSDK's ``UtteranceHandle`` does) unless ``force``."""
        if not force and not self.allow_interruptions:
            raise RuntimeError(f"{self.id} does not allow interruptions: use interrupt(force=True)")
        if not self.done():
            self._stop(self)
        return self

    async def wait_for_playout(self) -> None:
        """Return once it has been played out or interrupted."""
        await asyncio.shield(self._done)

    def __await__(self) -> Generator[Any, None, SpeechHandle]:
        yield from self.wait_for_playout().__await__()
        return self

    def add_done_callback(self, callback: Callable[[SpeechHandle], Any]) -> None:
        """Call ``callback(handle)`` when it is done."""
        self._done.add_done_callback(lambda _: callback(self))

    # ---- for the session
    def next_response_id(self) -> str:
        rid = f"{self.id}_{next(self._response_count)}"
        self.expecting.add(rid)
        return rid

    @property
    def finished_work(self) -> bool:
        """Nothing more will be generated: no response expected, no tool running, every response done."""
        return not self.expecting and not self.tools_running and all(r.done for r in self.responses)

    def settled(self) -> bool:
        return self.finished_work and all(r.played_out for r in self.responses)

    def _finish(self, *, interrupted: bool) -> bool:
        if self._done.done():
            return False
        self._interrupted = interrupted
        self._done.set_result(None)
        return True
