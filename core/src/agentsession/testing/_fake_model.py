"""``FakeRealtimeModel``: a scripted realtime model for tests."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._audio import AudioFrame
from .._models import VAD, ModelOptions, RealtimeModel
from .._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    ResponseDone,
    ToolCall,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from .._tools import FunctionTool, ToolResult


@dataclass
class FakeToolCall:
    """A tool call the fake model makes."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:8]}")


@dataclass
class FakeResponse:
    """One scripted response: ``delay`` to first audio, ``audio`` seconds of tone, the transcript, tool
    calls, and ``then``: the response given once every tool result is in."""

    text: str = ""
    audio: float = 1.0
    delay: float = 0.2
    tool_calls: Sequence[FakeToolCall] = ()
    then: FakeResponse | None = None
    usage: Mapping[str, Any] = field(default_factory=lambda: {"output_tokens": 10})


def tone(duration: float, sample_rate: int = 24000, freq: float = 440.0) -> AudioFrame:
    """A sine tone at -10 dBFS."""
    t = np.arange(int(duration * sample_rate)) / sample_rate
    return AudioFrame.from_float(0.3 * np.sin(2 * np.pi * freq * t), sample_rate)


class FakeRealtimeModel(RealtimeModel):
    """Answers from a script. Audio is a tone streamed ``speed`` times faster than real time.

    Cue user behaviour with ``user_starts_speaking()``/``user_stops_speaking()``, or give it a ``vad``
    to detect speech in the pushed audio. Each user turn, typed text and ``reply`` takes the next of
    ``responses`` (then ``default``); ``say`` speaks its text. Responses are generated one at a time, in
    order; it honours ``interrupt``. What it was sent is recorded for assertions (``interrupts`` holds
    each ``heard`` mapping, ``tool_results`` each group of results).
    """

    provider = "fake"

    def __init__(
        self,
        responses: Sequence[FakeResponse | str] = (),
        *,
        default: FakeResponse | None = None,
        vad: VAD | None = None,
        sample_rate: int = 24000,
        speed: float = 4.0,
        chunk: float = 0.1,
    ) -> None:
        super().__init__()
        self.input_sample_rate = sample_rate
        self.responses: deque[FakeResponse] = deque(
            FakeResponse(text=r) if isinstance(r, str) else r for r in responses
        )
        self.default = default if default is not None else FakeResponse(text="ok")
        self.vad = vad
        self.speed = speed
        self.chunk = chunk
        self.options: ModelOptions | None = None
        self.received_audio = 0.0
        self.texts: list[str] = []
        self.said: list[str] = []
        self.replies: list[str | None] = []
        self.interrupts: list[dict[str, float | None]] = []
        self.tool_results: list[list[ToolResult]] = []
        self.agents: list[tuple[str, list[str]]] = []  # update_agent calls: (instructions, tool names)
        self.closed = False
        self._then: dict[str, FakeResponse] = {}  # call id -> the response that follows its results
        self._queue: deque[tuple[str, FakeResponse]] = deque()
        self._current: tuple[str, asyncio.Task[None]] | None = None
        self._ids = itertools.count(1)

    # ---- cues
    def user_starts_speaking(self) -> None:
        self.channel.emit(UserSpeechStarted())

    def user_stops_speaking(self, transcript: str = "", *, respond: bool = True) -> None:
        """End the user's turn: transcript, then the next scripted response (with an id of the model's own)."""
        self.channel.emit(UserSpeechStopped(audio_end=self.received_audio))
        if transcript:
            self.channel.emit(UserTranscript(transcript, final=True))
        if respond:
            self._enqueue(f"fake_{next(self._ids)}", self._next())

    def user_says(self, text: str, *, final: bool = True) -> None:
        """The model transcribed the user: interim (``final=False``) or final text, nothing else."""
        self.channel.emit(UserTranscript(text, final=final))

    def fail(self, message: str, *, recoverable: bool = False) -> None:
        self.channel.emit(Error(message, recoverable=recoverable, code="fake_error"))

    # ---- RealtimeModel
    async def start(self, options: ModelOptions) -> None:
        self.options = options

    def push_audio(self, frame: AudioFrame) -> None:
        if frame.sample_rate != self.input_sample_rate or frame.channels != 1:
            raise ValueError(f"FakeRealtimeModel takes mono {self.input_sample_rate} Hz, got {frame}")
        self.received_audio += frame.duration
        if self.vad is not None:
            for event in self.vad.push(frame):
                if event.kind == "start":
                    self.user_starts_speaking()
                else:
                    self.channel.emit(UserSpeechStopped(audio_end=event.position))
                    self._enqueue(f"fake_{next(self._ids)}", self._next())

    async def send_text(self, text: str, *, response_id: str) -> None:
        self.texts.append(text)
        self._enqueue(response_id, self._next())

    async def say(self, text: str, *, response_id: str) -> None:
        self.said.append(text)
        self._enqueue(response_id, FakeResponse(text=text, audio=max(0.3, 0.06 * len(text))))

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        self.replies.append(instructions)
        self._enqueue(response_id, self._next())

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        self.interrupts.append(dict(heard))
        self._queue = deque((rid, r) for rid, r in self._queue if rid not in heard)
        current = self._current
        if current is not None and current[0] in heard and not current[1].done():
            current[1].cancel()
            await asyncio.gather(current[1], return_exceptions=True)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        self.tool_results.append(list(results))
        thens = {id(t): t for r in results if (t := self._then.pop(r.call_id, None)) is not None}
        self._enqueue(response_id, next(iter(thens.values())) if thens else self._next())

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        self.tool_results.append(list(results))
        for r in results:
            self._then.pop(r.call_id, None)

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        self.agents.append((instructions, [t.name for t in tools]))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.clear()
            if self._current is not None:
                self._current[1].cancel()
                await asyncio.gather(self._current[1], return_exceptions=True)
            self.channel.end()

    # ---- internals
    def _next(self) -> FakeResponse:
        return self.responses.popleft() if self.responses else self.default

    def _enqueue(self, rid: str, response: FakeResponse) -> None:
        self._queue.append((rid, response))
        if self._current is None:
            self._start_next()

    def _start_next(self) -> None:
        self._current = None
        if self._queue and not self.closed:
            rid, response = self._queue.popleft()
            task = asyncio.get_running_loop().create_task(self._run(rid, response))
            task.add_done_callback(self._finished)
            self._current = (rid, task)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self._current is not None and self._current[1] is task:
            self._start_next()

    async def _run(self, rid: str, response: FakeResponse) -> None:
        await asyncio.sleep(response.delay)
        audio = tone(response.audio, 24000)
        step = int(self.chunk * 24000)
        if response.text:
            self.channel.emit(AgentTranscript(response.text, final=False, response_id=rid))
        for start in range(0, audio.samples_per_channel, step):
            self.channel.emit(AgentAudio(AudioFrame(audio.data[start : start + step], 24000), response_id=rid))
            await asyncio.sleep(self.chunk / self.speed)
        if response.text:
            self.channel.emit(AgentTranscript(response.text, final=True, response_id=rid))
        for call in response.tool_calls:
            args = call.arguments if isinstance(call.arguments, str) else json.dumps(dict(call.arguments))
            if response.then is not None:
                self._then[call.id] = response.then
            self.channel.emit(ToolCall(call.id, call.name, args, response_id=rid))
        self.channel.emit(ResponseDone(usage=dict(response.usage), response_id=rid))
