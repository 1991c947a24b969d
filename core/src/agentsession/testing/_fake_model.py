"""``FakeRealtimeModel``: a scripted realtime model for tests."""

from __future__ import annotations

import asyncio
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
from .._tools import ToolResult


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
    ``responses`` (then ``default``); ``say`` speaks its text. It honours ``interrupt``. What it was
    sent is recorded for assertions.
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
        self.interrupts: list[float | None] = []
        self.tool_results: list[ToolResult] = []
        self.closed = False
        self._pending_calls: dict[str, FakeResponse] = {}
        self._response: asyncio.Task[None] | None = None

    # ---- cues
    def user_starts_speaking(self) -> None:
        self.channel.emit(UserSpeechStarted())

    def user_stops_speaking(self, transcript: str = "", *, respond: bool = True) -> None:
        """End the user's turn: transcript, then the next scripted response."""
        self.channel.emit(UserSpeechStopped(audio_end=self.received_audio))
        if transcript:
            self.channel.emit(UserTranscript(transcript, final=True))
        if respond:
            self._start(self._next())

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
                    self._start(self._next())

    async def send_text(self, text: str) -> None:
        self.texts.append(text)
        self._start(self._next())

    async def say(self, text: str) -> None:
        self.said.append(text)
        self._start(FakeResponse(text=text, audio=max(0.3, 0.06 * len(text))))

    async def reply(self, instructions: str | None = None) -> None:
        self.replies.append(instructions)
        self._start(self._next())

    async def interrupt(self, played: float | None = None) -> None:
        self.interrupts.append(played)
        if self._response is not None and not self._response.done():
            self._response.cancel()
            await asyncio.gather(self._response, return_exceptions=True)
            self.channel.emit(ResponseDone(interrupted=True))

    async def send_tool_result(self, result: ToolResult) -> None:
        self.tool_results.append(result)
        then = self._pending_calls.pop(result.call_id, None)
        if then is not None and not any(r is then for r in self._pending_calls.values()):
            self._start(then)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._response is not None:
                self._response.cancel()
                await asyncio.gather(self._response, return_exceptions=True)
            self.channel.end()

    # ---- internals
    def _next(self) -> FakeResponse:
        return self.responses.popleft() if self.responses else self.default

    def _start(self, response: FakeResponse) -> None:
        previous = self._response
        self._response = asyncio.get_running_loop().create_task(self._run(previous, response))

    async def _run(self, previous: asyncio.Task[None] | None, response: FakeResponse) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await asyncio.sleep(response.delay)
        audio = tone(response.audio, 24000)
        step = int(self.chunk * 24000)
        if response.text:
            self.channel.emit(AgentTranscript(response.text, final=False))
        for start in range(0, audio.samples_per_channel, step):
            self.channel.emit(AgentAudio(AudioFrame(audio.data[start : start + step], 24000)))
            await asyncio.sleep(self.chunk / self.speed)
        if response.text:
            self.channel.emit(AgentTranscript(response.text, final=True))
        for call in response.tool_calls:
            args = call.arguments if isinstance(call.arguments, str) else json.dumps(dict(call.arguments))
            if response.then is not None:
                self._pending_calls[call.id] = response.then
            self.channel.emit(ToolCall(call.id, call.name, args))
        self.channel.emit(ResponseDone(usage=dict(response.usage)))
