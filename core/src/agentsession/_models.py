"""What a provider implements: a speech-to-speech ``RealtimeModel``, or ``STT``/``LLM``/``TTS``/``VAD`` for cascades."""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._audio import AudioFrame
from ._chat import ChatContext
from ._pipeline_events import PipelineEvent, ToolCall
from ._provider_compat import (
    VIDEOSDK_INPUT_CHANNELS,
    VIDEOSDK_INPUT_RATE,
    VADAdapter,
    VideoSDKSpeechStream,
    adapt_chat,
    adapt_synthesize,
    transcribe_with_stream,
)
from ._stt_stream import BufferedSpeechStream, SpeechStream
from ._tools import FunctionTool, ToolResult
from ._tts_stream import SentenceSynthesisStream, SynthesisStream


def _videosdk_style(cls: type, method: str, ours: str) -> bool:
    """Whether ``cls`` implements VideoSDK's ``method`` and not our ``ours`` (still abstract)."""
    implemented = getattr(cls, method, None)
    return callable(implemented) and getattr(getattr(cls, ours, None), "__isabstractmethod__", False)


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
        # made on first use: a session's channel has a sink from the start and never queues (a queue is six
        # more objects per session for the garbage collector to scan)
        self._queue: asyncio.Queue[PipelineEvent | None] | None = None
        self._sink: EventSink | None = None
        self._ended = False

    def emit(self, event: PipelineEvent) -> None:
        """Deliver or queue one event (never blocks)."""
        if self._ended:
            return
        if self._sink is not None:
            self._sink(event)
        else:
            self._queued().put_nowait(event)

    def attach(self, sink: EventSink) -> None:
        """From now on deliver every event to ``sink`` (what was queued first); ``None`` marks the end."""
        queue = self._queue
        while queue is not None and not queue.empty():
            sink(queue.get_nowait())
        self._sink = sink

    def end(self) -> None:
        """No more events: the iterator stops after what is queued; a sink gets ``None``."""
        if not self._ended:
            self._ended = True
            if self._sink is not None:
                self._sink(None)
            else:
                self._queued().put_nowait(None)

    def _queued(self) -> asyncio.Queue[PipelineEvent | None]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    async def __aiter__(self) -> AsyncIterator[PipelineEvent]:
        queue = self._queued()
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item


class PipelineEngine(ABC):
    """What an ``AgentSession`` drives: mono 20 ms frames in at ``input_sample_rate``, ``PipelineEvent``s out
    (delivered to the sink given to ``attach``), and the control calls below. A ``RealtimeModel`` is one in its
    own right; a cascade of STT, LLM and TTS is another; ``Pipeline`` picks the one its components make.

    Contract (checked by ``agentsession.testing.RealtimeModelContract``):

    - every ``say``/``reply``/``send_text``/``send_tool_results`` is answered by one response whose events
      carry the ``response_id`` the call gave, and which ends with ``ResponseDone``; a response the engine
      starts by itself (an answer to the user's speech) carries an id of its own, new each time;
    - responses are generated one at a time, in the order they were asked for; a response's ``ToolCall``s
      come before its ``ResponseDone``;
    - after ``interrupt(heard)`` returns, no event of the responses named in ``heard`` is emitted;
    - ``close()`` is idempotent and ends the event stream.
    """

    #: whether its events say when the user speaks (``UserSpeechStarted``/``Stopped``) as it happens; when
    #: they do not, the session runs a VAD of its own on the user's audio for the user state, barge-in and wake-up
    reports_user_speech: bool = True
    #: whether the time to the first audio is one model's (a realtime model) rather than stages' (a cascade)
    reports_first_audio: bool = False
    input_sample_rate: int = 24000

    @abstractmethod
    def attach(self, sink: EventSink) -> None:
        """Deliver every ``PipelineEvent`` to ``sink`` as it happens; ``None`` when the stream ends."""

    @abstractmethod
    async def start(self, options: ModelOptions) -> None:
        """Connect and configure; ``options`` carries the agent's instructions and tools and the history."""

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
        of it reached the user); the engine cuts its own record of the response there, so its context
        matches what the user heard."""

    @abstractmethod
    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        """Hand the results of all the tool calls of one response over together, and continue with
        response ``response_id``."""

    async def record_tool_results(self, results: Sequence[ToolResult]) -> None:
        """Hand over the results of one response's tool calls WITHOUT asking for an answer: a handoff, where the
        new agent speaks first (its ``on_enter``), as VideoSDK does. An engine that cannot raises
        ``NotImplementedError`` and the session continues with ``send_tool_results`` instead."""
        raise NotImplementedError(f"{type(self).__name__} cannot take tool results without answering them")

    async def update_agent(self, instructions: str, tools: Sequence[FunctionTool]) -> None:
        """Change the instructions and tools mid-session, keeping the conversation (an agent handoff)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its agent mid-session")

    def heard_text(self, response_id: str, seconds: float) -> str | None:
        """The text of response ``response_id`` spoken in its first ``seconds`` of audio, when the engine knows
        it word by word (a TTS with timings); ``None``: the session cuts the history in proportion."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; idempotent; must end the event stream."""


class RealtimeModel(PipelineEngine):
    """A speech-to-speech model (OpenAI Realtime, Gemini Live, ...): a pipeline engine of its own.

    It emits its events through ``self.channel.emit``; ``close()`` must end them (``self.channel.end()``).
    A model that can answer in text only (``supports_text_output``) also runs with a separate TTS
    (``Pipeline(llm=model, tts=...)``, VideoSDK's hybrid mode): then ``text_output`` is set before ``start``.
    """

    provider: str = "unknown"
    reports_first_audio = True
    #: whether the model can answer in text instead of audio (set ``text_output`` before ``start``)
    supports_text_output: bool = False

    def __init__(self) -> None:
        self.channel = EventChannel()
        self.text_output = False

    def attach(self, sink: EventSink) -> None:
        self.channel.attach(sink)


@dataclass(frozen=True, slots=True)
class VADEvent:
    """Speech started or ended at ``position`` seconds of the audio pushed so far."""

    kind: Literal["start", "end"]
    position: float


class VAD(ABC):
    """Voice activity detection over a stream of frames.

    A subclass written against VideoSDK's ``VAD`` (``async def process_audio(self, audio_frames: bytes)`` reporting
    ``VADResponse``s through ``self._vad_callback``) works as it is (see ``docs/custom-providers.md``)."""

    def __init__(self, sample_rate: int = 16000, threshold: float = 0.5, min_speech_duration: float = 0.05,
                 min_silence_duration: float = 0.5) -> None:
        """VideoSDK's arguments, for subclasses that pass them to ``super().__init__``."""
        self.sample_rate = sample_rate
        self._threshold = threshold
        self._min_speech_duration = min_speech_duration
        self._min_silence_duration = min_silence_duration

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if _videosdk_style(cls, "process_audio", "push"):
            cls.push = _videosdk_vad_push  # type: ignore[method-assign]
            cls.reset = _videosdk_vad_reset  # type: ignore[method-assign]

    @abstractmethod
    def push(self, frame: AudioFrame) -> list[VADEvent]:
        """Process one frame; return the speech starts/ends it completes."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the stream so far."""


class STT(ABC):
    """Speech to text for one utterance.

    A subclass written against VideoSDK's ``STT`` (``async def process_audio(self, audio_frames: bytes, ...)``
    reporting ``STTResponse``s through ``self._transcript_callback``) works as it is: it streams, and is given
    48 kHz stereo PCM16 unless it sets ``sample_rate``/``num_channels`` (see ``docs/custom-providers.md``)."""

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

    def __init__(self, forward_interim_transcripts: bool = False) -> None:
        """VideoSDK's argument, for subclasses that call ``super().__init__``."""
        self.forward_interim_transcripts = forward_interim_transcripts

    def on_stt_transcript(self, callback: Callable[[Any], Awaitable[None]]) -> None:
        """VideoSDK's: where a VideoSDK-style ``process_audio`` reports (the stream sets it itself)."""
        self._transcript_callback = callback

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if _videosdk_style(cls, "process_audio", "transcribe"):
            if "sample_rate" not in cls.__dict__:
                cls.sample_rate = VIDEOSDK_INPUT_RATE
            if "num_channels" not in cls.__dict__:
                cls.num_channels = VIDEOSDK_INPUT_CHANNELS  # type: ignore[attr-defined]
            cls.streaming = True
            cls.stream = _videosdk_stt_stream  # type: ignore[method-assign]
            cls.transcribe = _videosdk_stt_transcribe  # type: ignore[method-assign]

    async def aclose(self) -> None:
        """Release resources (optional)."""


class LLM(ABC):
    """A chat model that streams text and tool calls.

    A subclass written against VideoSDK's ``LLM`` (``async def chat(self, messages, tools=None, **kwargs)``
    yielding ``LLMResponse``s) works as it is: its responses become text and tool calls (see
    ``docs/custom-providers.md``)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        chat = cls.__dict__.get("chat")
        if chat is not None and not getattr(chat, "__isabstractmethod__", False) and not getattr(
                chat, "_agentsession_adapted", False):
            cls.chat = adapt_chat(chat)  # type: ignore[method-assign]

    @abstractmethod
    def chat(
        self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()
    ) -> AsyncIterator[str | ToolCall]:
        """Stream the next assistant turn for ``ctx``: text deltas and tool calls."""

    async def aclose(self) -> None:
        """Release resources (optional)."""


class TTS(ABC):
    """Text to speech.

    A subclass written against VideoSDK's ``TTS`` (``async def synthesize(self, text, ...)`` writing PCM16 bytes
    with ``await self.audio_track.add_new_bytes(...)``) works as it is (see ``docs/custom-providers.md``)."""

    sample_rate: int = 24000
    streaming: bool = False
    """True when ``stream()`` takes text as it is generated and starts speaking before a sentence is complete;
    False: it synthesizes each sentence once it is complete."""
    num_channels: int = 1
    _first_audio_callback: Callable[[], Awaitable[None]] | None = None

    def __init__(self, sample_rate: int | None = None, num_channels: int = 1, word_timestamps: bool = False) -> None:
        """VideoSDK's arguments, for subclasses that pass them to ``super().__init__``."""
        if sample_rate is not None:
            self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.supports_word_timestamps = word_timestamps

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        synthesize = cls.__dict__.get("synthesize")
        if synthesize is not None and inspect.iscoroutinefunction(synthesize):  # VideoSDK's: writes to a track
            cls.synthesize = adapt_synthesize(synthesize)  # type: ignore[method-assign]

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


def _videosdk_stt_stream(self: STT, *, language: str | None = None) -> SpeechStream:
    return VideoSDKSpeechStream(self, language=language)


async def _videosdk_stt_transcribe(self: STT, audio: AudioFrame, *, language: str | None = None) -> str:
    return await transcribe_with_stream(self, audio, language)


def _videosdk_vad_push(self: VAD, frame: AudioFrame) -> list[VADEvent]:
    adapter: VADAdapter | None = self.__dict__.get("_agentsession_adapter")
    if adapter is None:
        adapter = self.__dict__["_agentsession_adapter"] = VADAdapter(self)
    return [VADEvent(kind, position) for kind, position in adapter.push(frame)]  # type: ignore[arg-type]


def _videosdk_vad_reset(self: VAD) -> None:
    adapter: VADAdapter | None = self.__dict__.get("_agentsession_adapter")
    if adapter is not None:
        adapter.reset()
