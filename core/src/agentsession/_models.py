"""What a provider implements: a speech-to-speech ``RealtimeModel``, or ``STT``/``LLM``/``TTS``/``VAD`` for cascades."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._audio import AudioFrame
from ._chat import ChatContext
from ._pipeline_events import AgentAudio, PipelineEvent, ToolCall
from ._stt_stream import BufferedSpeechStream, SpeechStream
from ._tools import FunctionTool, ToolResult


@dataclass
class ModelOptions:
    """What a model is started with: the agent's instructions and tools, and the session's history.

    ``chat_ctx`` is the session's live history (read it, don't change it): a model that reconnects can
    replay it.
    """

    instructions: str
    tools: Sequence[FunctionTool] = ()
    chat_ctx: ChatContext = field(default_factory=ChatContext)


EventSink = Callable[["PipelineEvent | None"], None]


class EventChannel:
    """Pipeline events from a model to their consumer.

    The session ``attach``-es a sink and gets each event synchronously as it is emitted, with no queue
    hop on the audio path; without a sink, events queue for async iteration (as the contract suites read
    them).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[PipelineEvent | None] = asyncio.Queue()
        self._sink: EventSink | None = None
        self._ended = False

    def emit(self, event: PipelineEvent) -> None:
        """Deliver or queue one event (never blocks)."""
        if self._ended:
            return
        if self._sink is not None:
            self._sink(event)
        else:
            self._queue.put_nowait(event)

    def attach(self, sink: EventSink) -> None:
        """From now on deliver every event to ``sink`` (what was queued first); ``None`` marks the end."""
        while not self._queue.empty():
            sink(self._queue.get_nowait())
        self._sink = sink

    def purge_audio(self) -> int:
        """Drop queued ``AgentAudio`` not yet consumed (on interruption); return how many."""
        kept: list[PipelineEvent | None] = []
        dropped = 0
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, AgentAudio):
                dropped += 1
            else:
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)
        return dropped

    def end(self) -> None:
        """No more events: the iterator stops after what is queued; a sink gets ``None``."""
        if not self._ended:
            self._ended = True
            if self._sink is not None:
                self._sink(None)
            else:
                self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[PipelineEvent]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class RealtimeModel(ABC):
    """A speech-to-speech model (OpenAI Realtime, Gemini Live, ...).

    It receives mono 20 ms frames at ``input_sample_rate`` and emits pipeline events through
    ``self.channel.emit``. Contract (checked by ``agentsession.testing.RealtimeModelContract``): every
    user turn and every ``say``/``reply``/``send_text``/tool result is answered by a response that ends
    with ``ResponseDone``; after ``interrupt()`` returns, no more audio of the interrupted response is
    emitted; ``close()`` is idempotent and ends the event stream.
    """

    input_sample_rate: int = 24000
    provider: str = "unknown"

    def __init__(self) -> None:
        self.channel = EventChannel()

    @abstractmethod
    async def start(self, options: ModelOptions) -> None:
        """Connect and configure the model."""

    @abstractmethod
    def push_audio(self, frame: AudioFrame) -> None:
        """Take one input frame; must not block (queue it for a sender task)."""

    @abstractmethod
    async def send_text(self, text: str) -> None:
        """The user typed ``text``: add it as a user turn and respond."""

    @abstractmethod
    async def say(self, text: str) -> None:
        """Speak ``text`` (as close to verbatim as the provider allows)."""

    @abstractmethod
    async def reply(self, instructions: str | None = None) -> None:
        """Generate a response now, with optional extra instructions for this response."""

    @abstractmethod
    async def interrupt(self, played: float | None = None) -> None:
        """Cancel the current response; ``played`` is how many seconds of it the user heard."""

    @abstractmethod
    async def send_tool_result(self, result: ToolResult) -> None:
        """Hand a tool's result to the model, which continues the response."""

    async def update_instructions(self, instructions: str) -> None:
        """Change the system instructions mid-session (optional)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change instructions mid-session")

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; idempotent; must end the event stream (``self.channel.end()``)."""


@dataclass(frozen=True, slots=True)
class VADEvent:
    """Speech started or ended at ``position`` seconds of the audio pushed so far."""

    kind: Literal["start", "end"]
    position: float


class VAD(ABC):
    """Voice activity detection over a stream of frames."""

    @abstractmethod
    def push(self, frame: AudioFrame) -> list[VADEvent]:
        """Process one frame; return the speech starts/ends it completes."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the stream so far."""


class STT(ABC):
    """Speech to text for one utterance."""

    sample_rate: int = 16000
    streaming: bool = False
    """True when ``stream()`` transcribes while the user speaks (interim text); False: it buffers each utterance
    and calls ``transcribe`` once the utterance is flushed."""

    @abstractmethod
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        """Return the text of ``audio`` (mono, ``sample_rate``)."""

    def stream(self, *, language: str | None = None) -> SpeechStream:
        """A live transcription (see ``SpeechStream``). This default buffers each utterance until ``flush()``
        and transcribes it in one request; a streaming provider overrides it and sets ``streaming``."""
        return BufferedSpeechStream(self.transcribe, self.sample_rate, language=language)

    async def aclose(self) -> None:
        """Release resources (optional)."""


class LLM(ABC):
    """A chat model that streams text and tool calls."""

    @abstractmethod
    def chat(
        self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()
    ) -> AsyncIterator[str | ToolCall]:
        """Stream the next assistant turn for ``ctx``: text deltas and tool calls."""

    async def aclose(self) -> None:
        """Release resources (optional)."""


class TTS(ABC):
    """Text to speech."""

    sample_rate: int = 24000

    @abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Stream audio for ``text``."""

    async def aclose(self) -> None:
        """Release resources (optional)."""
