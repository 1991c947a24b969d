"""Pipeline hooks, as VideoSDK 1.0 users write them: ``@pipeline.on("llm")``, ``"tts"``, ``"user_turn_start"``...

Two kinds. Observers (``user_turn_start(transcript)``, ``user_turn_end()``, ``agent_turn_start()``,
``agent_turn_end()``, ``llm({"text": ...})``, ``turn_state({...})``) are called by the session, each in a task
of its own, isolated (a raising hook is logged). Transforms are async generators that sit in the cascade's
stream: ``llm(text_stream)`` rewrites the answer's text before it is spoken, ``tts(text_stream)`` turns text
into audio (usually by rewriting the text, then ``async for frame in run_tts(texts)``), ``stt(audio_stream)``
turns the user's audio into speech events (``run_stt(audio)``).
"""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeAlias, get_args

from ._audio import AudioFrame

logger = logging.getLogger("agentsession.pipeline")

HookName: TypeAlias = Literal[
    "stt", "tts", "llm", "vision_frame", "user_turn_start", "user_turn_end", "agent_turn_start", "agent_turn_end",
    "turn_state",
]
HOOK_NAMES: tuple[str, ...] = get_args(HookName)
ObserverName: TypeAlias = Literal["user_turn_start", "user_turn_end", "agent_turn_start", "agent_turn_end", "llm",
                                  "turn_state"]

TextStream: TypeAlias = AsyncIterator[str]
#: ``run_tts``'s TTS while a cascade response runs: a function from a text stream to audio frames
_TTS: contextvars.ContextVar[Callable[[TextStream], AsyncIterator[AudioFrame]] | None] = contextvars.ContextVar(
    "agentsession_tts", default=None)
_STT: contextvars.ContextVar[Callable[[AsyncIterator[Any]], AsyncIterator[Any]] | None] = contextvars.ContextVar(
    "agentsession_stt", default=None)


def run_tts(text_stream: TextStream) -> AsyncIterator[AudioFrame]:
    """Inside a ``"tts"`` hook: speak ``text_stream`` with the pipeline's TTS, frame by frame."""
    tts = _TTS.get()
    if tts is None:
        raise RuntimeError("run_tts() runs only inside a pipeline's \"tts\" hook")
    return tts(text_stream)


def run_stt(audio_stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Inside an ``"stt"`` hook: transcribe ``audio_stream`` (the hook's mono 16-bit PCM bytes, one utterance an
    item, or ``AudioFrame``s) with the pipeline's STT; yields its speech events (``event.text``, also
    ``event.data.text`` as VideoSDK reads it)."""
    stt = _STT.get()
    if stt is None:
        raise RuntimeError("run_stt() runs only inside a pipeline's \"stt\" hook")
    return stt(audio_stream)


class PipelineHooks:
    """The hooks registered on one pipeline (``Pipeline.on``)."""

    def __init__(self) -> None:
        self.observers: dict[str, list[Callable[..., Any]]] = {}
        self.llm_stream: Callable[[TextStream], TextStream] | None = None
        self.tts_stream: Callable[[TextStream], AsyncIterator[AudioFrame | bytes]] | None = None
        self.stt_stream: Callable[[AsyncIterator[Any]], AsyncIterator[Any]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        """Register ``callback`` for ``event`` (as a decorator without ``callback``)."""
        if event not in HOOK_NAMES:
            close = difflib.get_close_matches(event, HOOK_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; hooks are {', '.join(HOOK_NAMES)}"
            raise ValueError(f"unknown pipeline hook {event!r}{hint}")
        if callback is None:
            return lambda cb: self.on(event, cb)
        if not callable(callback):
            raise TypeError(f"the {event!r} hook must be callable, got {type(callback).__name__}")
        streaming = inspect.isasyncgenfunction(callback)
        if event in ("stt", "tts") and not streaming:
            raise TypeError(f"the {event!r} hook must be an async generator (async def ... yield ...)")
        if event == "vision_frame":
            logger.warning("the \"vision_frame\" hook is accepted but never called: agentsession has no video input")
        elif event == "llm" and streaming:
            self._replace("llm_stream", callback)
        elif event == "tts":
            self._replace("tts_stream", callback)
        elif event == "stt":
            self._replace("stt_stream", callback)
        else:
            self.observers.setdefault(event, []).append(callback)
        return callback

    def _replace(self, slot: str, callback: Callable[..., Any]) -> None:
        if getattr(self, slot) is not None:
            logger.warning("a %s hook was already registered: the new one replaces it", slot.replace("_", " "))
        setattr(self, slot, callback)

    def has(self, event: ObserverName) -> bool:
        return bool(self.observers.get(event))

    def fire(self, event: ObserverName, *args: Any) -> None:
        """Call the observers of ``event`` with ``args``, each in a task of its own (never blocks the caller)."""
        for callback in self.observers.get(event, ()):
            try:
                result = callback(*args)
            except Exception:
                logger.exception("pipeline hook %r (%s) raised", event, getattr(callback, "__qualname__", callback))
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guarded(event, callback, result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(event: str, callback: Callable[..., Any], awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("pipeline hook %r (%s) raised", event, getattr(callback, "__qualname__", callback))

    async def aclose(self) -> None:
        """Cancel the observers still running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
