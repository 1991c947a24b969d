"""Streaming text to speech: text in as the LLM generates it, audio out as soon as the provider has some.

``TTS.stream()`` returns a ``SynthesisStream``. Push text with ``push_text`` (never blocks), mark the end of a
segment with ``flush()`` (synthesize what was pushed now, without waiting for more), ``end_input()`` when there
is no more text; read ``AudioFrame``s with ``async for``. The iteration ends after the audio of all the text
pushed once the input ended, or at ``aclose()``, which stops the synthesis (a provider stops generating, and
billing, the rest); a stream that fails raises its error from the iteration.

A provider that takes text incrementally (a websocket) subclasses ``SynthesisStream``; any other ``TTS`` gets
``SentenceSynthesisStream``, which calls ``synthesize`` once per sentence as each one is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable

from ._audio import AudioFrame

__all__ = ["SentenceSynthesisStream", "SynthesisStream"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # where a sentence ends (the cascade splits the LLM's text there too)


class SynthesisStream(ABC):
    """One incremental synthesis: ``push_text`` as text comes, read ``AudioFrame``s with ``async for``."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[AudioFrame | BaseException | None] = asyncio.Queue()
        self._finished = False

    @abstractmethod
    def push_text(self, text: str) -> None:
        """Take more text (any size, a token or a paragraph); never blocks. An error after ``end_input``/``aclose``."""

    @abstractmethod
    def flush(self) -> None:
        """Synthesize what was pushed so far now, without waiting for more text (a segment boundary)."""

    @abstractmethod
    def end_input(self) -> None:
        """No more text: the iteration ends after the audio of everything pushed."""

    async def aclose(self) -> None:
        """Stop now: the rest is not synthesized, the iteration ends; idempotent."""
        self._finish()

    def heard_text(self, seconds: float) -> str | None:
        """The text spoken in the first ``seconds`` of this stream's audio (whole words), where the provider
        gives word or character timings; ``None`` where it does not."""
        return None

    @property
    def finished(self) -> bool:
        """Whether the iteration has ended (or will, once what is queued is read)."""
        return self._finished

    @contextlib.asynccontextmanager
    async def feeding(self, texts: AsyncIterable[str]) -> AsyncIterator[asyncio.Future[None]]:
        """Push ``texts`` into this stream as they come, then end its input, while the body reads the audio;
        awaiting the yielded task raises what the source of the text raised. On exit the feeding stops and the
        stream is closed."""

        async def feed() -> None:
            async for text in texts:
                self.push_text(text)
            self.end_input()

        task = asyncio.ensure_future(feed())
        try:
            yield task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.aclose()

    # ------------------------------------------------------------------ for implementations

    def _emit(self, frame: AudioFrame) -> None:
        if not self._finished:
            self._frames.put_nowait(frame)

    def _fail(self, error: BaseException) -> None:
        if not self._finished:
            self._finished = True
            self._frames.put_nowait(error)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._frames.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        while True:
            item = await self._frames.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class SentenceSynthesisStream(SynthesisStream):
    """``SynthesisStream`` over a whole-text ``synthesize``: each sentence is synthesized once it is complete
    (or flushed), one after the other, in order."""

    def __init__(self, synthesize: Callable[[str], AsyncIterator[AudioFrame]]) -> None:
        super().__init__()
        self._synthesize = synthesize
        self._pending = ""
        self._segments: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False
        self._task = asyncio.ensure_future(self._run())

    def push_text(self, text: str) -> None:
        if self._ended:
            raise RuntimeError("push_text() after end_input() or aclose()")
        *sentences, self._pending = _SENTENCE_END.split(self._pending + text)
        for sentence in sentences:
            self._segment(sentence)

    def flush(self) -> None:
        if not self._ended:
            self._segment(self._pending)
            self._pending = ""

    def end_input(self) -> None:
        if not self._ended:
            self.flush()
            self._ended = True
            self._segments.put_nowait(None)

    async def aclose(self) -> None:
        self._ended = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._finish()

    def _segment(self, text: str) -> None:
        if text.strip():
            self._segments.put_nowait(text)

    async def _run(self) -> None:
        try:
            while (text := await self._segments.get()) is not None:
                frames = self._synthesize(text)
                try:
                    async for frame in frames:
                        self._emit(frame)
                finally:
                    close = getattr(frames, "aclose", None)
                    if close is not None:
                        await close()  # a synthesis cut short stops its request now
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        self._finish()
