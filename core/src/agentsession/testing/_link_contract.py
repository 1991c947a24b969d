"""``ProviderLinkContract``: what every realtime model on the core provider link must do when its link fails.

Subclass it in a plugin's tests and implement the hooks against the plugin's fake server (its real wire
protocol on loopback, reached through the provider's SDK). Every test runs on the virtual clock, so the
model's default bounds (10 s for an answer, 15 s without progress, 2 s to close) are checked as they are,
in milliseconds of real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import numpy as np
import pytest

from .._audio import AudioFrame
from .._chat import ChatContext
from .._clock import virtual_clock
from .._link import DEFAULT_MAX_MESSAGE_SIZE, LinkedRealtimeModel
from .._models import ModelOptions
from .._pipeline_events import AgentAudio, Error, PipelineEvent, Reconnected, Reconnecting, ResponseDone

#: the link's watchdog period with the default bounds
TICK = 0.5


class EventRecorder:
    """Every event of a model, with the loop time it came at."""

    def __init__(self, model: LinkedRealtimeModel) -> None:
        self.events: list[tuple[float, PipelineEvent]] = []
        self._changed = asyncio.Event()
        model.channel.attach(self._sink)

    def _sink(self, event: PipelineEvent | None) -> None:
        if event is not None:
            self.events.append((asyncio.get_running_loop().time(), event))
            self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def until(self, accept: Callable[[PipelineEvent], bool], timeout: float = 120.0) -> tuple[float, Any]:
        """The first event ``accept`` takes (and its time), waiting up to ``timeout`` seconds (virtual)."""

        async def find_pcm() -> tuple[float, Any]:
            while True:
                found = next(((t, e) for t, e in self.events if accept(e)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find_pcm(), timeout)


def is_event(kind: type[Any], **fields: Any) -> Callable[[PipelineEvent], bool]:
    """A predicate: an event of ``kind`` whose ``fields`` have these values."""
    return lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())


def quiet_noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Audio below any VAD's threshold, but unique sample by sample (so order and loss can be checked)."""
    return np.random.default_rng(seed).integers(-200, 200, int(seconds * rate)).astype(np.int16)


def voice_pcm(seconds: float, rate: int) -> np.ndarray:
    """A loud 300 Hz tone: voice to any VAD."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


async def push_in_time(model: LinkedRealtimeModel, pcm: np.ndarray, rate: int) -> None:
    """Push mono ``pcm`` in real (virtual) time, 20 ms at a time."""
    n = rate // 50
    for i in range(0, len(pcm), n):
        model.push_audio(AudioFrame(pcm[i : i + n].reshape(-1, 1), rate))
        await asyncio.sleep(0.02)


def find_pcm(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Where ``needle`` first occurs in ``haystack`` (-1: nowhere)."""
    if len(haystack) < len(needle):
        return -1
    windows = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    hits = np.flatnonzero((windows == needle).all(axis=1))
    return int(hits[0]) if len(hits) else -1


def link_tasks(model: LinkedRealtimeModel) -> list[asyncio.Task[Any]]:
    """Live tasks of the model, its link or its websocket client (not a fake server's)."""
    out = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if owner is model or type(owner).__name__ == "ClientConnection" or task.get_name().startswith("link:"):
            out.append(task)
    return out


async def tasks_left(model: LinkedRealtimeModel) -> list[asyncio.Task[Any]]:
    """The model's tasks still there once those close() cancelled (websockets' keepalive, say) have ended."""
    cancelled = [task for task in link_tasks(model) if task.cancelling()]
    if cancelled:
        await asyncio.wait(cancelled, timeout=0.01)
    return link_tasks(model)


class ProviderLinkContract:
    """The link's behaviour under faults, for a realtime model built on ``ProviderLink``.

    Implement the hooks below against the plugin's fake server. ``create_model`` passes ``link`` (any of
    ``reconnect_delay``, ``outage_buffer``, ``stall_timeout``, ``response_timeout``) to the model and allows
    at least 5 reconnect attempts.
    """

    #: the model's input rate (what ``push_audio`` takes)
    sample_rate = 24000
    #: the API key the model is given (the fake quotes it back in ``echo_secret``)
    secret = ""
    #: the longest wait between reconnect attempts
    max_reconnect_delay = 8.0

    def server(self) -> AbstractAsyncContextManager[Any]:
        """A fake server, started on entry and stopped on exit."""
        raise NotImplementedError

    def create_model(self, server: Any, **link: Any) -> LinkedRealtimeModel:
        raise NotImplementedError

    async def ask_long_answer(self, model: LinkedRealtimeModel, server: Any, response_id: str) -> None:
        """Ask for a response that streams its audio in real time for more than a minute."""
        raise NotImplementedError

    async def ask_answer(self, model: LinkedRealtimeModel, server: Any, response_id: str) -> None:
        """Ask for a short response (and make the server's answers short from now on)."""
        raise NotImplementedError

    def stall(self, server: Any) -> None:
        """The current connection stays open and forwards nothing, either way."""
        raise NotImplementedError

    def stall_new(self, server: Any) -> None:
        """Every new connection is accepted, then stalls before its session is set up."""
        raise NotImplementedError

    def trickle(self, server: Any) -> None:
        """A slow-loris: the server's bytes go out one every 0.5 s, so no message completes."""
        raise NotImplementedError

    async def drop(self, server: Any, reason: str = "") -> None:
        """Cut the current connection: without a close frame, or (``reason``) with a 1011 close frame saying it."""
        raise NotImplementedError

    def refuse(self, server: Any, n: int) -> None:
        """Refuse the next ``n`` connection attempts."""
        raise NotImplementedError

    def hang(self, server: Any) -> None:
        """The answer in flight stops where it is; the server keeps sending unrelated messages every second."""
        raise NotImplementedError

    async def echo_secret(self, server: Any) -> None:
        """The server sends an error message that quotes the key the client sent."""
        raise NotImplementedError

    async def send_raw(self, server: Any, data: str) -> None:
        """Send ``data`` as one text message on the current connection."""
        raise NotImplementedError

    def connections(self, server: Any) -> int:
        raise NotImplementedError

    async def wait_connections(self, server: Any, n: int) -> None:
        """Wait until ``n`` connections were accepted."""
        raise NotImplementedError

    def audio_received(self, server: Any) -> np.ndarray:
        """The user audio the current connection received (int16 mono)."""
        raise NotImplementedError

    async def wait_audio(self, server: Any, samples: int) -> None:
        """Wait until the current connection received ``samples`` of user audio."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    async def _started(self, server: Any, **link: Any) -> tuple[LinkedRealtimeModel, EventRecorder]:
        model = self.create_model(server, **link)
        recorder = EventRecorder(model)
        await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
        return model, recorder

    def _within(self, elapsed: float, bound: float) -> None:
        assert bound <= elapsed <= bound + TICK + 0.2, f"{elapsed:.2f} s, expected {bound:g} s + one tick"

    # ------------------------------------------------------------------ stalls

    @virtual_clock
    async def test_a_server_that_stalls_during_a_response_is_left_after_stall_timeout(self) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await self.ask_long_answer(model, server, "a")
                await rec.until(is_event(AgentAudio))
                stalled_at = asyncio.get_running_loop().time()
                self.stall(server)
                at, reconnecting = await rec.until(is_event(Reconnecting))
                self._within(at - stalled_at, model.stall_timeout)
                assert reconnecting.attempt == 1
                assert reconnecting.reason.startswith("stalled: no progress of the response for")
                cut = [e for _, e in rec.events if isinstance(e, Error | ResponseDone)]
                assert [(type(e), getattr(e, "code", None)) for e in cut[:1]] == [(Error, "connection_lost")]
                assert cut[1:] == [ResponseDone(interrupted=True, response_id="a")]
                back_at, back = await rec.until(is_event(Reconnected))
                assert back.downtime == pytest.approx(back_at - at, abs=0.01) and back.audio_lost == 0.0
                assert self.connections(server) == 2
                await self.ask_answer(model, server, "b")
                await rec.until(is_event(ResponseDone, response_id="b"))
            finally:
                await model.close()

    @virtual_clock
    async def test_an_answer_that_stops_while_the_server_chatters_is_a_stall(self) -> None:
        """Liveness follows the response awaited: unrelated messages do not keep a stopped answer alive."""
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await self.ask_long_answer(model, server, "a")
                await rec.until(is_event(AgentAudio))
                hung_at = asyncio.get_running_loop().time()
                self.hang(server)
                at, reconnecting = await rec.until(is_event(Reconnecting), timeout=60.0)
                self._within(at - hung_at, model.stall_timeout)
                assert reconnecting.reason.startswith("stalled: no progress of the response")
                assert rec.of(ResponseDone) == [ResponseDone(interrupted=True, response_id="a")]
                await rec.until(is_event(Reconnected))
            finally:
                await model.close()

    @virtual_clock
    async def test_a_request_with_no_answer_within_response_timeout_is_a_stall_and_is_asked_again(self) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                self.stall(server)
                asked_at = asyncio.get_running_loop().time()
                await self.ask_answer(model, server, "a")
                at, reconnecting = await rec.until(is_event(Reconnecting))
                self._within(at - asked_at, model.response_timeout)
                assert reconnecting.reason.startswith("stalled: no answer to ")
                assert not rec.of(ResponseDone)  # never begun: nothing to cut, it is asked again
                _, done = await rec.until(is_event(ResponseDone, response_id="a"))
                assert not done.interrupted and self.connections(server) == 2
            finally:
                await model.close()

    @virtual_clock
    async def test_voice_with_no_server_message_is_a_stall_and_is_heard_after_the_reconnect(self) -> None:
        rate = self.sample_rate
        async with self.server() as server:
            model, rec = await self._started(server, stall_timeout=5.0)  # within outage_buffer: all of it kept
            try:
                self.stall(server)
                spoke_at = asyncio.get_running_loop().time()
                said = np.concatenate([voice_pcm(1.0, rate), np.zeros(30 * rate, np.int16)])
                speaking = asyncio.ensure_future(push_in_time(model, said, rate))
                at, reconnecting = await rec.until(is_event(Reconnecting))
                self._within(at - spoke_at, model.stall_timeout)
                assert "while the user spoke" in reconnecting.reason
                _, back = await rec.until(is_event(Reconnected))
                assert back.audio_lost == 0.0
                await self.wait_audio(server, rate)
                heard = self.audio_received(server)
                assert 0 <= find_pcm(heard, voice_pcm(1.0, rate)) <= int(0.4 * rate)  # whole, in order, little before it
                speaking.cancel()
            finally:
                await model.close()

    @virtual_clock
    async def test_a_quiet_room_is_not_a_stall(self) -> None:
        rate = self.sample_rate
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await push_in_time(model, quiet_noise(60.0, rate), rate)  # a minute in which the server has nothing to say
                await self.wait_audio(server, 60 * rate)
                assert not rec.of(Reconnecting) and self.connections(server) == 1
            finally:
                await model.close()

    @virtual_clock
    async def test_a_slow_loris_server_is_left_after_stall_timeout(self) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await self.ask_long_answer(model, server, "a")
                await rec.until(is_event(AgentAudio))
                trickled_at = asyncio.get_running_loop().time()
                self.trickle(server)
                at, _ = await rec.until(is_event(Reconnecting))
                self._within(at - trickled_at, model.stall_timeout)
                assert rec.of(ResponseDone) == [ResponseDone(interrupted=True, response_id="a")]
                await rec.until(is_event(Reconnected))
            finally:
                await model.close()

    # ------------------------------------------------------------------ faults the provider sends

    @virtual_clock
    async def test_provider_text_never_carries_the_key(self) -> None:
        """An error or a close reason that quotes the key reaches events masked."""
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await self.echo_secret(server)
                _, first = await rec.until(lambda e: isinstance(e, Error | Reconnecting))
                if isinstance(first, Reconnecting):  # the provider said it in a close frame
                    await rec.until(is_event(Reconnected))
                back = len(rec.of(Reconnected))
                await self.drop(server, reason=f"bad key {self.secret}")
                await rec.until(lambda e: isinstance(e, Reconnected) and len(rec.of(Reconnected)) > back)
                texts = [e.message for e in rec.of(Error)] + [e.reason for e in rec.of(Reconnecting)]
                assert texts and not any(self.secret in text for text in texts), texts
                assert any(self.secret[:4] in text for text in texts)  # the message itself is kept, masked
            finally:
                await model.close()

    @virtual_clock
    async def test_an_oversized_message_is_a_link_fault(self) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                await self.send_raw(server, '{"padding": "' + "x" * DEFAULT_MAX_MESSAGE_SIZE + '"}')  # over the cap
                _, reconnecting = await rec.until(is_event(Reconnecting), timeout=30.0)
                assert "1009" in reconnecting.reason or "too big" in reconnecting.reason
                assert model.max_message_size == DEFAULT_MAX_MESSAGE_SIZE  # the default, configurable
                await rec.until(is_event(Reconnected))
                await self.ask_answer(model, server, "b")
                await rec.until(is_event(ResponseDone, response_id="b"))
            finally:
                await model.close()

    # ------------------------------------------------------------------ close

    @pytest.mark.parametrize("fault", ["stall", "trickle"])
    @virtual_clock
    async def test_close_is_bounded_whatever_the_socket_does(self, fault: str) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            await self.ask_long_answer(model, server, "a")
            await rec.until(is_event(AgentAudio))
            getattr(self, fault)(server)
            loop = asyncio.get_running_loop()
            began = loop.time()
            await model.close()
            assert loop.time() - began <= model.close_timeout + 0.1  # websockets alone would wait 10 s
            assert await tasks_left(model) == []

    @virtual_clock
    async def test_close_during_a_reconnect_is_bounded(self) -> None:
        async with self.server() as server:
            model, rec = await self._started(server)
            self.stall(server)
            self.stall_new(server)
            await self.ask_answer(model, server, "a")
            await rec.until(is_event(Reconnecting))
            await asyncio.wait_for(self.wait_connections(server, 2), 5.0)
            loop = asyncio.get_running_loop()
            began = loop.time()
            await model.close()
            assert loop.time() - began <= model.close_timeout + 0.1
            assert await tasks_left(model) == []

    # ------------------------------------------------------------------ audio during an outage

    @pytest.mark.parametrize(("outage_buffer", "lost"), [(10.0, 1.0), (20.0, 0.0)])
    @virtual_clock
    async def test_audio_during_an_outage_is_sent_after_the_reconnect_and_what_did_not_fit_is_reported(
        self, outage_buffer: float, lost: float
    ) -> None:
        rate = self.sample_rate
        async with self.server() as server:
            model, rec = await self._started(server, reconnect_delay=1.0, outage_buffer=outage_buffer)
            try:
                loop = asyncio.get_running_loop()
                self.refuse(server, 3)  # three attempts refused, the fourth gets in
                await self.drop(server)
                await rec.until(is_event(Reconnecting, attempt=1))
                dropped_at = loop.time()
                said = quiet_noise(11.0, rate, seed=1)
                await push_in_time(model, said, rate)  # all of it while the link is down
                assert not rec.of(Reconnected)
                at, back = await rec.until(is_event(Reconnected))
                assert [e.attempt for e in rec.of(Reconnecting)] == [1, 2, 3, 4]
                down = sum(min(2.0**i, self.max_reconnect_delay) for i in range(4))
                assert back.downtime == pytest.approx(down, abs=0.3) and at - dropped_at == pytest.approx(down, abs=0.3)
                assert back.audio_lost == pytest.approx(lost, abs=1e-6) and model.audio_lost == back.audio_lost
                kept = said[int(lost * rate) :]
                await self.wait_audio(server, len(kept))
                assert np.array_equal(self.audio_received(server), kept)  # in order, nothing twice
            finally:
                await model.close()

    @virtual_clock
    async def test_audio_sent_into_a_stalled_link_is_sent_again_after_the_reconnect(self) -> None:
        rate = self.sample_rate
        async with self.server() as server:
            model, rec = await self._started(server)
            try:
                before = quiet_noise(1.0, rate, seed=2)
                await push_in_time(model, before, rate)
                await self.wait_audio(server, rate)
                self.stall(server)
                said = quiet_noise(3.0, rate, seed=3)
                await push_in_time(model, said, rate)  # sent into the stalled socket: never read by the server
                await self.ask_answer(model, server, "a")
                await rec.until(is_event(Reconnected))
                await rec.until(is_event(ResponseDone, response_id="a"))
                await self.wait_audio(server, 3 * rate)
                # what was sent since the server last answered goes again, in order
                heard = self.audio_received(server)
                at = find_pcm(heard, said[:64])
                assert at >= 0 and np.array_equal(heard[at : at + len(said)], said)
                assert model.audio_lost == 0.0
            finally:
                await model.close()
