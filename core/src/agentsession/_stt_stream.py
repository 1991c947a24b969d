"""Streaming speech to text: audio in as it is spoken, speech events and interim/final transcripts out.

``STT.stream()`` returns a ``SpeechStream``. Push frames with ``push_audio`` (never blocks), mark the end
of an utterance with ``flush()`` when your own VAD decides it, and ``end_input()`` when there is no more
audio; read ``SpeechEvent``s with ``async for``. The iteration ends after ``end_input()`` once every
final is out, or at ``aclose()``; a stream that fails raises its ``ModelError`` from the iteration.

A provider that transcribes while the user speaks subclasses ``SpeechStream``; any other ``STT`` gets
``BufferedSpeechStream``, which collects each utterance and calls ``transcribe`` once when it is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np

from ._audio import AudioConverter, AudioFrame
from ._secrets import redact

__all__ = ["BufferedSpeechStream", "SpeechEvent", "SpeechEventType", "SpeechStream"]

logger = logging.getLogger("agentsession.stt")

SpeechEventType: TypeAlias = Literal["speech_started", "interim", "final", "speech_stopped"]


@dataclass(slots=True)
class SpeechEvent:
    """One thing a ``SpeechStream`` learnt.

    - ``speech_started`` / ``speech_stopped``: the provider's own voice detection, ``position`` seconds into
      the audio pushed to the stream (streams without one send neither);
    - ``interim``: the utterance's text so far (the whole hypothesis, not a delta), may still change;
    - ``final``: the utterance's text, settled. Finals come in the order the utterances were spoken, one per
      utterance; a transcription that failed is a final with ``text=""`` and ``error`` saying why.
    """

    type: SpeechEventType
    text: str = ""
    utterance_id: str = ""
    position: float | None = None
    error: str | None = None

    @property
    def data(self) -> SpeechEvent:
        """VideoSDK's ``event.data`` (``event.data.text``): the event itself (a pipeline ``"stt"`` hook may set
        ``event.data.text`` before it yields the event on)."""
        return self

    @property
    def event_type(self) -> SpeechEventType:
        """VideoSDK's name for ``type``."""
        return self.type



class SpeechStream(ABC):
    """One live transcription: ``push_audio`` frames, read ``SpeechEvent``s with ``async for``."""

    def __init__(self) -> None:
        self._events: asyncio.Queue[SpeechEvent | BaseException | None] = asyncio.Queue()
        self._finished = False

    @abstractmethod
    def push_audio(self, frame: AudioFrame) -> None:
        """Take one frame (any rate, mono or stereo); never blocks. An error after ``end_input``/``aclose``."""

    @abstractmethod
    def flush(self) -> None:
        """The current utterance is over (the caller's VAD says so): transcribe what was pushed since the last
        one; its final comes through the iteration. Nothing to do without audio."""

    @abstractmethod
    def end_input(self) -> None:
        """No more audio: the iteration ends once the finals of everything pushed are out."""

    async def aclose(self) -> None:
        """Stop now (pending transcriptions are dropped), end the iteration; idempotent."""
        self._finish()

    # ------------------------------------------------------------------ for implementations

    def _emit(self, event: SpeechEvent) -> None:
        if not self._finished:
            self._events.put_nowait(event)

    def _fail(self, error: BaseException) -> None:
        """End the iteration by raising ``error`` (after the events already queued)."""
        if not self._finished:
            self._finished = True
            self._events.put_nowait(error)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._events.put_nowait(None)

    @property
    def finished(self) -> bool:
        """The iteration has been told to end (normally, by an error or by ``aclose``)."""
        return self._finished

    def __aiter__(self) -> SpeechStream:
        return self

    async def __anext__(self) -> SpeechEvent:
        item = await self._events.get()
        if item is None or isinstance(item, BaseException):
            self._events.put_nowait(None)  # later reads end too
            if item is None:
                raise StopAsyncIteration
            raise item
        return item


Transcribe: TypeAlias = Callable[..., Awaitable[str]]


class BufferedSpeechStream(SpeechStream):
    """The stream of an ``STT`` that only transcribes whole utterances: each ``flush()`` (and ``end_input``)
    sends what was pushed since the last one to ``transcribe`` (in order, one request at a time) and emits its
    final. No interim text and no speech events: the caller's VAD decides where utterances end."""

    def __init__(self, transcribe: Transcribe, sample_rate: int, *, language: str | None = None) -> None:
        super().__init__()
        self._transcribe = transcribe
        self._language = language
        self._converter = AudioConverter(sample_rate)
        self._rate = sample_rate
        self._frames: list[AudioFrame] = []
        self._pending: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._input_ended = False
        self._count = 0

    def push_audio(self, frame: AudioFrame) -> None:
        if self._input_ended or self.finished:
            raise RuntimeError("push_audio() after end_input() or aclose()")
        self._frames.extend(self._converter.push(frame))

    def flush(self) -> None:
        if self._input_ended or self.finished:
            return
        frames = self._frames + self._converter.flush()
        self._frames = []
        if frames:
            self._start_worker()
            data = np.concatenate([f.data for f in frames])
            self._pending.put_nowait(AudioFrame(data, self._rate))

    def end_input(self) -> None:
        if self._input_ended or self.finished:
            return
        self.flush()
        self._input_ended = True
        self._start_worker()
        self._pending.put_nowait(None)

    async def aclose(self) -> None:
        self._input_ended = True
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await super().aclose()

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="stt-buffered-stream")

    async def _work(self) -> None:
        while (audio := await self._pending.get()) is not None:
            self._count += 1
            utterance = f"utterance_{self._count}"
            try:
                text = await self._transcribe(audio, language=self._language)
            except Exception as exc:
                logger.warning("speech-to-text of %s failed: %s", utterance, redact(str(exc)))
                self._emit(SpeechEvent("final", "", utterance, error=redact(str(exc)) or type(exc).__name__))
                continue
            self._emit(SpeechEvent("final", text.strip(), utterance))
        self._finish()
