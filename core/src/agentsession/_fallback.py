"""Fallback providers: ``FallbackSTT``, ``FallbackLLM``, ``FallbackTTS`` (VideoSDK's names and options).

Each is an ``STT``/``LLM``/``TTS`` over a list of providers in priority order. A call goes to the first usable
provider; one that fails before its first result (an exception, or nothing within ``attempt_timeout``) is
disabled for ``temporary_disable_sec`` and the same call goes on with the next, so the user still gets the
answer. A provider that failed ``permanent_disable_after_attempts`` times in a row is never tried again; one
whose cooldown ran out is tried again first (recovery). A failure after the first result ends that stream
where it is (what was produced stays) and disables the provider for the next calls. Optionally
(``latency_threshold_ms``) a provider slower than the threshold to its first result for
``consecutive_latency_hits`` calls in a row is disabled like a failing one.

Every switch is reported: in a cascade as an ``Error`` pipeline event (``recoverable=True``,
``code="fallback_switch"``, ``component`` ``"stt"``/``"llm"``/``"tts"``), which the session emits as an
``error`` event; and counted in ``stats``. When every provider failed, an ``Error`` with
``code="fallback_exhausted"`` is reported and the call raises ``ModelError``: the cascade ends that turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import numpy as np

from ._audio import AudioConverter, AudioFrame
from ._chat import ChatContext
from ._errors import ModelError
from ._models import LLM, STT, TTS
from ._pipeline_events import Error, ToolCall
from ._secrets import redact
from ._tools import FunctionTool

__all__ = ["FallbackLLM", "FallbackSTT", "FallbackStats", "FallbackTTS"]

logger = logging.getLogger("agentsession.fallback")

P = TypeVar("P", STT, LLM, TTS)
T = TypeVar("T")


@dataclass
class FallbackStats:
    """What a fallback provider did so far: ``switches`` (a call moved on to the next provider),
    ``failures`` and ``successes`` by provider name, ``recoveries`` (a disabled provider tried again),
    ``exhausted`` (calls where every provider failed)."""

    switches: int = 0
    recoveries: int = 0
    exhausted: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)


@dataclass
class _Health:
    failures_in_a_row: int = 0
    disabled_until: float | None = None  # loop time
    slow_in_a_row: int = 0

    def usable(self, now: float) -> bool:
        return self.disabled_until is None or now >= self.disabled_until


class _Failed(Exception):
    """One provider's attempt failed before its first result."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FallbackBase(Generic[P]):
    """The provider list, its health and the reporting, shared by the three fallback classes."""

    component: str = ""

    def __init__(self, providers: Sequence[P], kind: type, *, temporary_disable_sec: float,
                 permanent_disable_after_attempts: int, latency_threshold_ms: float | None,
                 consecutive_latency_hits: int, attempt_timeout: float | None) -> None:
        name = type(self).__name__
        providers = list(providers)
        if not providers:
            raise ValueError(f"{name} needs at least one provider, e.g. {name}([primary, backup])")
        wrong = [type(p).__name__ for p in providers if not isinstance(p, kind)]
        if wrong:
            raise TypeError(f"{name} takes {kind.__name__} providers; got {', '.join(wrong)}")
        if temporary_disable_sec < 0:
            raise ValueError(f"{name}: temporary_disable_sec must be >= 0 (seconds), got {temporary_disable_sec!r}")
        if permanent_disable_after_attempts < 1:
            raise ValueError(f"{name}: permanent_disable_after_attempts must be >= 1, "
                             f"got {permanent_disable_after_attempts!r}")
        if latency_threshold_ms is not None and latency_threshold_ms <= 0:
            raise ValueError(f"{name}: latency_threshold_ms must be > 0 or None, got {latency_threshold_ms!r}")
        if attempt_timeout is not None and attempt_timeout <= 0:
            raise ValueError(f"{name}: attempt_timeout must be > 0 (seconds) or None, got {attempt_timeout!r}")
        self.providers: list[P] = providers
        self.temporary_disable_sec = temporary_disable_sec
        self.permanent_disable_after_attempts = permanent_disable_after_attempts
        self.latency_threshold_ms = latency_threshold_ms
        self.consecutive_latency_hits = max(1, consecutive_latency_hits)
        self.attempt_timeout = attempt_timeout
        self.stats = FallbackStats()
        self._health = [_Health() for _ in providers]
        self._names = _names(providers)
        self._report: Callable[[Error], None] | None = None
        self._active = 0

    # ------------------------------------------------------------------ what users read

    @property
    def active_provider(self) -> P:
        """The provider the next call goes to first."""
        order = self._order()
        return self.providers[order[0] if order else self._active]

    @property
    def provider(self) -> str:
        return f"fallback({self._names[self._active]})"

    def report_to(self, sink: Callable[[Error], None] | None) -> None:
        """Deliver switch and failure reports to ``sink`` (a cascade passes its event channel's ``emit``)."""
        self._report = sink

    # ------------------------------------------------------------------ the failover

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _permanent(self, i: int) -> bool:
        return self._health[i].failures_in_a_row >= self.permanent_disable_after_attempts

    def _order(self) -> list[int]:
        """The providers to try, in priority order: those usable now, else (all in cooldown) every one not
        disabled for good, so a call is never refused while a provider may still answer."""
        try:
            now = self._now()
        except RuntimeError:
            now = 0.0
        alive = [i for i in range(len(self.providers)) if not self._permanent(i)]
        ready = [i for i in alive if self._health[i].usable(now)]
        return ready or alive

    async def _attempts(self, first: Callable[[P], AsyncIterator[T]]) -> AsyncGenerator[T, None]:
        """Items of the first provider that gives one; the later ones are failed over within this call."""
        order = self._order()
        if not order:
            self._exhausted("every provider is disabled after repeated failures")
        reasons: list[str] = []
        for n, i in enumerate(order):
            health = self._health[i]
            if health.disabled_until is not None:  # its cooldown ran out (or all are in cooldown): try again
                self.stats.recoveries += 1
                health.disabled_until = None
                logger.info("%s: trying %s again after its cooldown", type(self).__name__, self._names[i])
            stream = first(self.providers[i])
            asked = self._now()
            try:
                item = await self._first_item(stream)
            except _Failed as failed:
                reasons.append(f"{self._names[i]}: {failed.reason}")
                self._failed(i, failed.reason, order[n + 1] if n + 1 < len(order) else None)
                continue
            except BaseException:
                await _aclose(stream)
                raise
            self._active = i
            self._succeeded(i, self._now() - asked)
            try:
                if item is not _END:
                    yield cast(T, item)
                    async for later in stream:
                        yield later
            except Exception as exc:  # after the first result: what was produced stays; the next call moves on
                reason = _reason(exc)
                logger.warning("%s: %s failed mid-stream: %s", type(self).__name__, self._names[i], reason)
                self._disable(i)
                self._emit(f"{self.component.upper()} provider {self._names[i]} failed mid-stream ({reason}); "
                           "the next calls go to the next provider", "fallback_mid_stream")
            finally:
                await _aclose(stream)
            return
        self._exhausted("; ".join(reasons))

    async def _first_item(self, stream: AsyncIterator[T]) -> T | object:
        timeout = asyncio.timeout(self.attempt_timeout)
        try:
            async with timeout:
                return await anext(stream, _END)
        except TimeoutError as exc:  # ours, or the provider's own
            await _aclose(stream)
            raise _Failed(f"no result within {self.attempt_timeout:g} s" if timeout.expired() else _reason(exc)) \
                from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await _aclose(stream)
            raise _Failed(_reason(exc)) from None

    def _failed(self, i: int, reason: str, next_i: int | None) -> None:
        name = self._names[i]
        self._disable(i)
        if next_i is None:
            logger.warning("%s: %s failed: %s", type(self).__name__, name, reason)
            return
        self.stats.switches += 1
        logger.warning("%s: %s failed (%s); switching to %s", type(self).__name__, name, reason, self._names[next_i])
        self._emit(f"{self.component.upper()} provider {name} failed ({reason}); switched to {self._names[next_i]}",
                   "fallback_switch")

    def _disable(self, i: int) -> None:
        health = self._health[i]
        health.failures_in_a_row += 1
        health.slow_in_a_row = 0
        self.stats.failures[self._names[i]] = self.stats.failures.get(self._names[i], 0) + 1
        health.disabled_until = self._now() + self.temporary_disable_sec
        if self._permanent(i):
            logger.warning("%s: %s failed %d times in a row: disabled for good", type(self).__name__,
                           self._names[i], health.failures_in_a_row)

    def _succeeded(self, i: int, first_result_after: float) -> None:
        health = self._health[i]
        health.failures_in_a_row = 0
        self.stats.successes[self._names[i]] = self.stats.successes.get(self._names[i], 0) + 1
        if self.latency_threshold_ms is None:
            return
        if first_result_after * 1000 <= self.latency_threshold_ms:
            health.slow_in_a_row = 0
            return
        health.slow_in_a_row += 1
        if health.slow_in_a_row >= self.consecutive_latency_hits and len(self.providers) > 1:
            slow = f"{first_result_after * 1000:.0f} ms > {self.latency_threshold_ms:g} ms"
            health.slow_in_a_row = 0
            health.disabled_until = self._now() + self.temporary_disable_sec
            self.stats.switches += 1
            self._emit(f"{self.component.upper()} provider {self._names[i]} was slow for {self.consecutive_latency_hits}"
                       f" calls in a row ({slow}); the next calls go to the next provider", "fallback_switch")

    def _exhausted(self, reasons: str) -> None:
        self.stats.exhausted += 1
        message = f"every {self.component.upper()} provider failed ({reasons})"
        self._emit(message, "fallback_exhausted")
        raise ModelError(message)

    def _emit(self, message: str, code: str) -> None:
        if self._report is not None:
            self._report(Error(redact(message), recoverable=True, code=code, component=self.component))

    async def _close_all(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception:
                logger.exception("closing %s failed", type(provider).__name__)


class FallbackSTT(FallbackBase[STT], STT):
    """Speech to text over ``providers`` in priority order (see the module's docstring for the options).

    It transcribes one utterance per request (``transcribe``): a streaming provider is used through its
    one-shot ``transcribe`` here. Audio is converted to each provider's rate.
    """

    component = "stt"

    def __init__(self, providers: Sequence[STT], temporary_disable_sec: float = 60.0,
                 permanent_disable_after_attempts: int = 3, latency_threshold_ms: float | None = None,
                 consecutive_latency_hits: int = 3, *, attempt_timeout: float | None = 30.0) -> None:
        super().__init__(providers, STT, temporary_disable_sec=temporary_disable_sec,
                         permanent_disable_after_attempts=permanent_disable_after_attempts,
                         latency_threshold_ms=latency_threshold_ms, consecutive_latency_hits=consecutive_latency_hits,
                         attempt_timeout=attempt_timeout)
        self.sample_rate = self.providers[0].sample_rate

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        async def one(stt: STT) -> AsyncIterator[str]:
            yield await stt.transcribe(_at_rate(audio, stt.sample_rate), language=language)

        results = self._attempts(one)
        try:
            async for text in results:
                return text
            return ""
        finally:
            await results.aclose()

    async def aclose(self) -> None:
        await self._close_all()


class FallbackLLM(FallbackBase[LLM], LLM):
    """A chat model over ``providers`` in priority order (see the module's docstring for the options)."""

    component = "llm"

    def __init__(self, providers: Sequence[LLM], temporary_disable_sec: float = 60.0,
                 permanent_disable_after_attempts: int = 3, latency_threshold_ms: float | None = None,
                 consecutive_latency_hits: int = 3, *, attempt_timeout: float | None = 15.0) -> None:
        super().__init__(providers, LLM, temporary_disable_sec=temporary_disable_sec,
                         permanent_disable_after_attempts=permanent_disable_after_attempts,
                         latency_threshold_ms=latency_threshold_ms, consecutive_latency_hits=consecutive_latency_hits,
                         attempt_timeout=attempt_timeout)

    def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        return self._attempts(lambda llm: llm.chat(ctx, tools=tools))

    async def aclose(self) -> None:
        await self._close_all()


class FallbackTTS(FallbackBase[TTS], TTS):
    """Text to speech over ``providers`` in priority order (see the module's docstring for the options).

    Its ``sample_rate`` is the first provider's; another provider's audio is resampled to it.
    """

    component = "tts"

    def __init__(self, providers: Sequence[TTS], temporary_disable_sec: float = 60.0,
                 permanent_disable_after_attempts: int = 3, latency_threshold_ms: float | None = None,
                 consecutive_latency_hits: int = 3, *, attempt_timeout: float | None = 10.0) -> None:
        super().__init__(providers, TTS, temporary_disable_sec=temporary_disable_sec,
                         permanent_disable_after_attempts=permanent_disable_after_attempts,
                         latency_threshold_ms=latency_threshold_ms, consecutive_latency_hits=consecutive_latency_hits,
                         attempt_timeout=attempt_timeout)
        self.sample_rate = self.providers[0].sample_rate

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        return self._attempts(lambda tts: self._converted(tts, text))

    async def _converted(self, tts: TTS, text: str) -> AsyncIterator[AudioFrame]:
        stream = tts.synthesize(text)
        try:
            if tts.sample_rate == self.sample_rate:
                async for frame in stream:
                    yield frame.to_mono() if frame.channels != 1 else frame
                return
            converter = AudioConverter(self.sample_rate)
            async for frame in stream:
                for out in converter.push(frame):
                    yield out
            for out in converter.flush():
                yield out
        finally:
            await _aclose(stream)

    async def aclose(self) -> None:
        await self._close_all()


_END = object()


def _names(providers: Sequence[object]) -> list[str]:
    """A name per provider for logs and events: its ``provider`` or its class, numbered when two are alike."""
    names = [str(getattr(p, "provider", None) or type(p).__name__) for p in providers]
    return [f"{name}#{i + 1}" if names.count(name) > 1 else name for i, name in enumerate(names)]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _at_rate(audio: AudioFrame, rate: int) -> AudioFrame:
    if audio.sample_rate == rate:
        return audio
    converter = AudioConverter(rate, channels=audio.channels)
    frames = converter.push(audio) + converter.flush()
    data = np.concatenate([f.data for f in frames]) if frames else np.zeros((0, audio.channels), np.int16)
    return AudioFrame(data, rate, audio.timestamp)


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.debug("closing a provider's stream failed", exc_info=True)
