"""What a provider implements: a speech-to-speech ``RealtimeModel``, or ``STT``/``LLM``/``TTS``/``VAD`` for cascades."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._audio import AudioFrame
from ._chat import ChatContext
from ._pipeline_events import PipelineEvent, ToolCall
from ._stt_stream import BufferedSpeechStream, SpeechStream
from ._tools import FunctionTool, ToolResult
from ._tts_stream import SentenceSynthesisStream, SynthesisStream


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
    hop on the audio path; without a sink, events queue for async iteration (``agentsession.testing``'s
    ``read_events`` and the contract suites read them so).
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
    ``self.channel.emit``. Contract (checked by ``agentsession.testing.RealtimeModelContract``):

    - every ``say``/``reply``/``send_text``/``send_tool_results`` is answered by one response whose events
      carry the ``response_id`` the call gave, and which ends with ``ResponseDone``; a response the model
      starts by itself (an answer to the user's speech) carries an id of the model's own, new each time;
    - responses are generated one at a time, in the order they were asked for; a response's ``ToolCall``s
      come before its ``ResponseDone``;
    - after ``interrupt(heard)`` returns, no event of the responses named in ``heard`` is emitted;
    - ``close()`` is idempotent and ends the event stream.
    """

    input_sample_rate: int = 24000
    provider: str = "unknown"
    #: whether the model reports the user's speech (``UserSpeechStarted``/``Stopped``) as it happens; when it
    #: does not, the session runs a VAD of its own on the user's audio for the user state, barge-in and wake-up
    reports_user_speech: bool = True

    def __init__(self) -> None:
        self.channel = EventChannel()

    @abstractmethod
    async def start(self, options: ModelOptions) -> None:
        """Connect and configure the model."""

    @abstractmethod
    def push_audio(self, frame: AudioFrame) -> None:
        """Take one input frame; must not block (queue it for a sender task)."""

    @abstractmethod
    async def send_text(self, text: str, *, response_id: str) -> None:
        """The user typed ``text``: add it as a user turn and answer it as response ``response_id``."""

    @abstractmethod
    async def say(self, text: str, *, response_id: str) -> None:
        """Speak ``text`` (as close to verbatim as the provider allows) as response ``response_id``."""

    @abstractmethod
    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        """Generate response ``response_id`` now, with optional extra instructions for it."""

    @abstractmethod
    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        """Stop the responses named in ``heard``: cancel the one being generated, drop those asked for and
        not begun. Each value is how many seconds of that response's audio the user heard (``None``: none
        of it reached the user); the model cuts its own record of the response there, so its context
        matches what the user heard."""

    @abstractmethod
    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        """Hand the results of all the tool calls of one response to the model together, and continue
        with response ``response_id``."""

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        """Change the instructions and tools mid-session, keeping the conversation (an agent handoff)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its agent mid-session")

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
    streaming: bool = False
    """True when ``stream()`` takes text as it is generated and starts speaking before a sentence is complete;
    False: it synthesizes each sentence once it is complete."""

    @abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Stream audio for ``text``."""

    def stream(self) -> SynthesisStream:
        """An incremental synthesis (see ``SynthesisStream``); call it from the event loop. This default
        synthesizes each sentence with ``synthesize`` once it is complete; a provider that takes text
        incrementally overrides it and sets ``streaming``."""
        return SentenceSynthesisStream(self.synthesize)

    async def aclose(self) -> None:
        """Release resources (optional)."""
