"""``TTS.stream()``'s default: a whole-text TTS fed text as it is generated speaks each sentence once complete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from agentsession import (
    LLM,
    STT,
    TTS,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    ChatMessage,
    FunctionTool,
    ToolCall,
)
from agentsession.plugin import SynthesisStream
from agentsession.testing import FakeTransport, tone, virtual_clock
from core_helpers import QuietAgent


class RecordingTTS(TTS):
    """A 100 ms tone per word; remembers each text it was asked to say, and which syntheses were cut short."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.closed_early: list[str] = []
        self.gate: asyncio.Event | None = None  # when set to an Event, every word after the first waits for it

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.texts.append(text)
        done = False
        try:
            for i, _ in enumerate(text.split()):
                if i and self.gate is not None:
                    await self.gate.wait()
                yield tone(0.1, self.sample_rate)
            done = True
        finally:
            if not done:
                self.closed_early.append(text)


async def test_a_sentence_is_spoken_once_complete_before_the_input_ends() -> None:
    tts = RecordingTTS()
    stream = tts.stream()
    assert not tts.streaming
    frames = aiter(stream)
    stream.push_text("Hello")
    stream.push_text(" there. How")
    first = await asyncio.wait_for(anext(frames), 5)
    assert first.sample_rate == tts.sample_rate
    assert tts.texts == ["Hello there."]
    stream.push_text(" are you?")
    stream.end_input()
    rest = [f async for f in frames]
    assert tts.texts == ["Hello there.", "How are you?"]
    assert len(rest) == 1 + 3  # "there." then the second sentence, a tone per word
    with pytest.raises(RuntimeError):
        stream.push_text("more")


async def test_flush_speaks_an_unfinished_sentence_now() -> None:
    tts = RecordingTTS()
    stream = tts.stream()
    stream.push_text("Let me check")
    stream.flush()
    await asyncio.wait_for(anext(aiter(stream)), 5)
    assert tts.texts == ["Let me check"]
    await stream.aclose()


async def test_aclose_stops_the_synthesis_in_progress() -> None:
    tts = RecordingTTS()
    tts.gate = asyncio.Event()  # never set: the synthesis waits inside its second word
    stream = tts.stream()
    frames = aiter(stream)
    stream.push_text("One two three four. Five six.")
    await asyncio.wait_for(anext(frames), 5)
    await stream.aclose()
    assert [f async for f in frames] == []
    assert stream.finished
    assert tts.closed_early == ["One two three four."]
    assert tts.texts == ["One two three four."]  # the second sentence was never asked for


async def test_a_failing_synthesis_raises_from_the_iteration() -> None:
    class Failing(TTS):
        async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
            raise ValueError("no voice")
            yield tone(0.1, self.sample_rate)

    stream = Failing().stream()
    stream.push_text("Hi.")
    stream.end_input()
    with pytest.raises(ValueError, match="no voice"):
        async for _ in stream:
            pass


class PushedTTS(TTS):
    """A streaming TTS that says each piece of text as soon as it is pushed (a 10 ms tone per character)."""

    streaming = True

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.first_audio_before: str | None = None  # the text pushed so far when the first frame went out
        self.closed: list[bool] = []  # per stream: closed before its input ended

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield tone(0.01 * len(text), self.sample_rate)

    def stream(self) -> SynthesisStream:
        tts = self

        class Stream(SynthesisStream):
            ended = False

            def push_text(self, text: str) -> None:
                tts.pushed.append(text)
                if tts.first_audio_before is None:
                    tts.first_audio_before = "".join(tts.pushed)
                self._emit(tone(0.01 * len(text), tts.sample_rate))

            def flush(self) -> None:
                pass

            def end_input(self) -> None:
                self.ended = True
                self._finish()

            async def aclose(self) -> None:
                tts.closed.append(not self.ended)
                await super().aclose()

        return Stream()


class WordByWordLLM(LLM):
    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in ["Hello", " there", " friend,", " how", " are", " you?"]:
            yield word


@virtual_clock
async def test_a_streaming_tts_gets_the_text_as_the_llm_streams_it() -> None:
    tts = PushedTTS()
    agent = QuietAgent()
    session = AgentSession(agent, CascadingPipeline(stt=SilentSTT(), llm=WordByWordLLM(), tts=tts))
    await session.start()
    result = await session.run(user_input="hi")
    assert result.text == "Hello there friend, how are you?"
    assert tts.pushed == ["Hello", " there", " friend,", " how", " are", " you?"]  # no sentence buffering
    assert tts.first_audio_before == "Hello"  # audio began before the sentence was complete
    assert tts.closed == [False]  # one stream, ended by its input, then closed
    await session.close()


class SilentSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return ""


class TimedTTS(TTS):
    """A streaming TTS that knows when each word is spoken: 0.2 s of tone per word, whatever its length."""

    streaming = True

    def __init__(self) -> None:
        self.streams: list[SynthesisStream] = []

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield tone(0.2 * len(text.split()), self.sample_rate)

    def stream(self) -> SynthesisStream:
        tts = self

        class Stream(SynthesisStream):
            def __init__(self) -> None:
                super().__init__()
                self.words: list[tuple[str, float]] = []  # (word, end)

            def push_text(self, text: str) -> None:
                for word in text.split():
                    self.words.append((word, 0.2 * (len(self.words) + 1)))
                    self._emit(tone(0.2, tts.sample_rate))

            def flush(self) -> None:
                pass

            def end_input(self) -> None:
                self._finish()

            def heard_text(self, seconds: float) -> str | None:
                return " ".join(w for w, end in self.words if end <= seconds + 1e-6)

        stream = Stream()
        self.streams.append(stream)
        return stream


class LongWordLLM(LLM):
    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        for word in ["Antidisestablishmentarianism", " is", " a", " long", " word,", " friend."]:
            yield word


@virtual_clock
async def test_an_interrupted_answer_is_cut_in_the_history_at_the_words_the_tts_says_were_heard() -> None:
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), CascadingPipeline(stt=SilentSTT(), llm=LongWordLLM(), tts=TimedTTS()))
    await session.start(transport=transport)
    await session.reply(wait_for_playback=False)
    await asyncio.sleep(0.5)  # (virtual) the first two words are played, the third is under way
    await session.interrupt()
    (item,) = [i for i in session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
    assert item.interrupted and 0.4 <= (item.audio_duration or 0) < 0.6
    # by its characters, 0.5 s of the 1.2 s would keep less than the first word; the timings say two were heard
    assert item.text == "Antidisestablishmentarianism is"
    await session.close()
    await transport.close()


@virtual_clock
async def test_an_interrupted_say_is_cut_at_the_words_heard_too() -> None:
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), CascadingPipeline(stt=SilentSTT(), llm=LongWordLLM(), tts=TimedTTS()))
    await session.start(transport=transport)
    await session.say("Antidisestablishmentarianism is a long word, friend.")
    await asyncio.sleep(0.5)
    await session.interrupt()
    (item,) = [i for i in session.history.items if isinstance(i, ChatMessage) and i.role == "assistant"]
    assert item.interrupted and item.text == "Antidisestablishmentarianism is"
    await session.close()
    await transport.close()
