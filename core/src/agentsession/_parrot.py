"""``ParrotModel``: an offline realtime model that repeats what you said. No key, no network."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from ._audio import AudioFrame
from ._models import VAD, ModelOptions, RealtimeModel
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    ResponseDone,
    ToolCall,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._tools import FunctionTool, ToolResult
from ._vad import EnergyVAD, UtteranceCollector


def chime(sample_rate: int = 24000, duration: float = 0.45) -> AudioFrame:
    """Two soft rising tones with fades: the parrot's way of "saying" something."""
    n = int(sample_rate * duration)
    t = np.arange(n) / sample_rate
    freq = np.where(t < duration / 2, 660.0, 880.0)
    envelope = np.minimum(1.0, np.minimum(t, duration - t) / 0.02)
    return AudioFrame.from_float(0.25 * envelope * np.sin(2 * np.pi * freq * t), sample_rate)


class ParrotModel(RealtimeModel):
    """Detects the end of your utterance with ``EnergyVAD`` and plays it back to you.

    ``say``/``reply``/typed text/tool results answer with a short chime and the text as transcript (it
    cannot synthesise speech). It honours interruptions, so states, barge-in, wake-up and metrics all
    run for real.

    It cannot recognise speech either, so a script stands in for it: ``heard`` is what your first
    utterances count as, one each (later ones are repeated back). ``calls`` maps words to tools: text
    you typed, or an utterance heard as text, that contains a key (any case) makes the parrot call that
    tool (no arguments) and then read its result out, so a tool runs offline:
    ``ParrotModel(heard=["What time is it?"], calls={"time": "get_time"})``.
    """

    provider = "parrot"

    def __init__(self, *, vad: VAD | None = None, max_utterance: float = 15.0, sample_rate: int = 24000,
                 heard: Sequence[str] = (), calls: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.input_sample_rate = sample_rate
        self.calls = dict(calls or {})
        self._heard = deque(heard)
        self._call_ids = itertools.count(1)
        self._utterances = UtteranceCollector(vad if vad is not None else EnergyVAD(), max_duration=max_utterance)
        self._responses: dict[str, asyncio.Task[None]] = {}
        self._turns = itertools.count(1)
        self._closed = False

    async def start(self, options: ModelOptions) -> None:
        self._closed = False

    def push_audio(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        for event, audio in self._utterances.push(frame):
            if audio is None:
                self.channel.emit(UserSpeechStarted())
                continue
            self.channel.emit(UserSpeechStopped(audio_end=event.position))
            rid = f"parrot_{next(self._turns)}"
            if self._heard:
                text = self._heard.popleft()
                self.channel.emit(UserTranscript(text))
                if self._call_for(rid, text):
                    continue
            self.channel.emit(UserTranscript(f"({audio.duration:.1f} s of speech)"))
            self._respond(rid, audio, f"(repeating {audio.duration:.1f} s of your speech)")

    async def send_text(self, text: str, *, response_id: str) -> None:
        if not self._call_for(response_id, text):
            self._respond(response_id, chime(self.input_sample_rate), f"You typed: {text}")

    def _call_for(self, rid: str, text: str) -> bool:
        """Answer ``text`` with a call of the tool its words name, if any."""
        tool = next((name for key, name in self.calls.items() if key.lower() in text.lower()), None)
        if tool is None:
            return False
        call = ToolCall(f"parrot_call_{next(self._call_ids)}", tool, "{}", response_id=rid)
        self._respond(rid, chime(self.input_sample_rate), f"Let me call {tool}.", call)
        return True

    async def say(self, text: str, *, response_id: str) -> None:
        self._respond(response_id, chime(self.input_sample_rate), text)

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        self._respond(response_id, chime(self.input_sample_rate), instructions or "(chirp)")

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        self._respond(response_id, chime(self.input_sample_rate), " ".join(r.output for r in results))

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        """The parrot keeps no context: nothing to record."""

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        """The parrot has no instructions to change: it goes on repeating."""

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        stopped = [task for rid, task in self._responses.items() if rid in heard]
        for task in stopped:
            task.cancel()
        await asyncio.gather(*stopped, return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        await self.interrupt(dict.fromkeys(self._responses))
        self.channel.end()

    def _respond(self, rid: str, audio: AudioFrame, text: str, call: ToolCall | None = None) -> None:
        previous = [t for t in self._responses.values() if not t.done()]
        self._responses = {r: t for r, t in self._responses.items() if not t.done()}
        self._responses[rid] = asyncio.get_running_loop().create_task(self._speak(previous, rid, audio, text, call))

    async def _speak(self, previous: list[asyncio.Task[None]], rid: str, audio: AudioFrame, text: str,
                     call: ToolCall | None) -> None:
        if previous:
            await asyncio.wait(previous)  # one response at a time, in order
        chunk = self.input_sample_rate // 10
        self.channel.emit(AgentTranscript(text, final=False, response_id=rid))
        for start in range(0, audio.samples_per_channel, chunk):
            self.channel.emit(AgentAudio(AudioFrame(audio.data[start : start + chunk], audio.sample_rate),
                                         response_id=rid))
            await asyncio.sleep(0)
        self.channel.emit(AgentTranscript(text, final=True, response_id=rid))
        if call is not None:
            self.channel.emit(call)
        self.channel.emit(ResponseDone(response_id=rid))
