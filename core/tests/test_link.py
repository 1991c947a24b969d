"""The provider link against a tiny scripted protocol (no network): its queue, liveness, reconnects, masking."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from agentsession.plugin import (
    AudioBacklog,
    AudioChunk,
    AudioFrame,
    Error,
    LinkedRealtimeModel,
    Liveness,
    ModelOptions,
    ProviderLink,
    Reconnected,
    Reconnecting,
    Request,
    ResponseDone,
    ToolResult,
    protect_secret,
)
from agentsession.testing import EventRecorder, is_event, virtual_clock

SECRET = "sk-scripted-secret-0123456789"


def chunk(seconds: float = 0.1, level: int = 0) -> AudioFrame:
    return AudioFrame(np.full((int(seconds * 24000), 1), level, np.int16), 24000)


# ---------------------------------------------------------------------- AudioBacklog


def test_the_backlog_keeps_the_last_outage_buffer_seconds_and_counts_the_rest_lost() -> None:
    backlog = AudioBacklog(outage_buffer=1.0)
    for _ in range(15):
        backlog.push(chunk(), voiced=False)
    assert backlog.lost == pytest.approx(0.5)
    assert [c.position for c in backlog.take()][0] == pytest.approx(0.5)  # the oldest went first


def test_what_was_sent_and_not_confirmed_goes_again_first_in_order() -> None:
    backlog = AudioBacklog(outage_buffer=10.0)
    for _ in range(3):
        backlog.push(chunk(), voiced=False)
    sent = backlog.take(2)
    backlog.push(chunk(), voiced=False)
    backlog.replay()
    assert [c.position for c in backlog.take()] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert [c.position for c in sent] == pytest.approx([0.0, 0.1])
    backlog.confirm()
    backlog.replay()
    assert not backlog and backlog.lost == 0.0


def test_confirm_keeps_the_turn_in_progress_with_a_lead_in() -> None:
    backlog = AudioBacklog(outage_buffer=10.0)
    for i in range(20):
        backlog.push(chunk(), voiced=i >= 15)
    backlog.take()
    backlog.confirm(turn_start=1.0)  # the server heard a turn start at 1.0 s
    backlog.replay()
    assert backlog.take()[0].position == pytest.approx(0.7)  # from 0.3 s before it


# ---------------------------------------------------------------------- Liveness


def test_liveness_follows_the_awaited_response_not_any_message() -> None:
    live = Liveness(response_timeout=10.0, stall_timeout=15.0, voice_owed=True)
    live.reset(0.0)
    live.responding = True
    live.progress(1.0)
    for t in range(2, 30):
        live.heard(float(t))  # unrelated messages keep coming
    assert live.stall(15.9) is None
    assert live.stall(16.0) == "no progress of the response for 15.0 s"


def test_liveness_times_requests_and_the_users_voice() -> None:
    live = Liveness(response_timeout=10.0, stall_timeout=15.0, voice_owed=True)
    live.reset(0.0)
    live.expect("k", "response.create", 1.0)
    assert live.stall(10.9) is None and live.stall(11.0) == "no answer to response.create in 10 s"
    live.answered("k")
    for t in range(10):
        live.sent(AudioChunk(t * 0.1, chunk(), voiced=True), 2.0 + t * 0.1)
    assert live.stall(16.9) is None
    assert live.stall(17.0) == "no server message for 15.0 s while the user spoke"
    live.heard(17.0)
    assert live.stall(20.0) is None


# ---------------------------------------------------------------------- a scripted protocol


class Conn:
    """An in-memory connection: what the server "says" is queued; ``None`` closes it."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.requests: list[str] = []
        self.audio: list[float] = []


class Scripted(LinkedRealtimeModel):
    """A realtime model whose provider is the test: ``server`` holds its connections."""

    def __init__(self, **link: Any) -> None:
        super().__init__()
        self.conns: list[Conn] = []
        self.refuse = 0
        self.gate: asyncio.Event | None = None  # the audio's sends wait for it (a socket whose buffer is full)
        self.opened = asyncio.Event()
        settings: dict[str, Any] = {
            "connect_timeout": 5.0, "response_timeout": 10.0, "stall_timeout": 15.0, "close_timeout": 2.0,
            "outage_buffer": 10.0, "max_reconnects": 3, "reconnect_delay": 0.5, "max_reconnect_delay": 4.0}
        self._link: ProviderLink[Conn, str] = ProviderLink(self, self.channel, name="Scripted",
                                                           **{**settings, **link})

    @property
    def conn(self) -> Conn:
        return self.conns[-1]

    async def start(self, options: ModelOptions) -> None:
        await self._link.start()

    def push_audio(self, frame: AudioFrame) -> None:
        self._link.push(frame, voiced=False)

    async def say(self, text: str, *, response_id: str) -> None:
        self._link.ask(response_id, text)

    send_text = say

    async def reply(self, instructions: str | None = None, *, response_id: str) -> None:
        self._link.ask(response_id, instructions or "")

    async def interrupt(self, heard: Mapping[str, float | None]) -> None:
        self._link.drop(heard)

    async def send_tool_results(self, results: Sequence[ToolResult], *, response_id: str) -> None:
        self._link.ask(response_id, "results")

    async def link_open(self, first: bool) -> Conn:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError(f"refused, key {SECRET}")
        self.conns.append(Conn())
        self.opened.set()
        return self.conns[-1]

    async def link_read(self, conn: Conn) -> str:
        while (message := await conn.inbox.get()) is not None:
            self._link.heard()
            kind, _, rid = message.partition(":")
            if kind == "begin":
                self._link.begin(rid)
            elif kind == "done":
                self.channel.emit(ResponseDone(response_id=rid))
                self._link.end()
            elif kind == "error":
                self._link.error(rid)
        return f"closed by the server (key {SECRET})"

    async def link_send_audio(self, conn: Conn, chunks: list[AudioChunk]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        conn.audio += [c.position for c in chunks]

    async def link_send_request(self, conn: Conn, request: Request[str]) -> None:
        request.key = request.rid
        self._link.liveness.expect(request.key, "a request", self._link.now())
        conn.requests.append(request.rid)

    def link_socket(self, conn: Conn) -> Any:
        return None

    async def link_close(self, conn: Conn) -> None:
        conn.inbox.put_nowait(None)

    def link_lost(self, reason: str, dropped: bool) -> None:
        pass


async def started(**link: Any) -> tuple[Scripted, EventRecorder]:
    protect_secret(SECRET)
    model = Scripted(**link)
    recorder = EventRecorder(model)
    await model.start(ModelOptions(""))
    return model, recorder


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@virtual_clock
async def test_responses_are_asked_one_at_a_time_in_order_and_again_after_a_drop() -> None:
    model, rec = await started()
    try:
        for rid in ("a", "b", "c"):
            await model.say("hi", response_id=rid)
        await settle()
        first = model.conn
        assert first.requests == ["a"]
        first.inbox.put_nowait("begin:a")
        first.inbox.put_nowait("done:a")
        await settle()
        assert first.requests == ["a", "b"]
        first.inbox.put_nowait(None)  # dropped before b began: b is asked again, then c
        await rec.until(is_event(Reconnected))
        await settle()
        second = model.conn
        assert second is not first and second.requests == ["b"]
        second.inbox.put_nowait("begin:b")
        second.inbox.put_nowait("done:b")
        await settle()
        assert second.requests == ["b", "c"]
        assert [e.attempt for e in rec.of(Reconnecting)] == [1]
    finally:
        await model.close()


@virtual_clock
async def test_an_unanswered_request_is_a_stall_and_provider_text_is_masked() -> None:
    model, rec = await started()
    try:
        model.refuse = 1
        model.conn.inbox.put_nowait(f"error:bad key {SECRET}")
        await model.say("hi", response_id="a")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        at, reconnecting = await rec.until(is_event(Reconnecting, attempt=1))
        assert 10.0 <= at - asked <= 10.5 and reconnecting.reason == "stalled: no answer to a request in 10 s"
        _, retry = await rec.until(is_event(Reconnecting, attempt=2))
        await rec.until(is_event(Reconnected))
        texts = [e.message for e in rec.of(Error)] + [retry.reason]
        assert all(SECRET not in text and "sk-s" in text for text in texts), texts
    finally:
        await model.close()


@virtual_clock
async def test_a_handover_reconnects_without_reconnect_events_and_gives_up_after_max_reconnects() -> None:
    model, rec = await started()
    try:
        first = model.conn
        model._link.handover("planned")
        while model.conn is first:
            model.opened.clear()
            await model.opened.wait()
        model.refuse = 10
        model.conn.inbox.put_nowait(None)
        _, failed = await rec.until(lambda e: isinstance(e, Error) and not e.recoverable)
        assert failed.code == "reconnect_failed" and "after 3 attempts" in failed.message
        assert [e.attempt for e in rec.of(Reconnecting)] == [1, 2, 3] and not rec.of(Reconnected)
    finally:
        await model.close()


@virtual_clock
async def test_audio_pushed_while_down_is_sent_first_on_the_next_connection() -> None:
    model, rec = await started()
    try:
        model.refuse = 1
        model.conn.inbox.put_nowait(None)
        await rec.until(is_event(Reconnecting))
        for _ in range(5):
            model.push_audio(chunk())
        _, back = await rec.until(is_event(Reconnected))
        await settle()
        assert model.conn.audio == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4]) and back.audio_lost == 0.0
    finally:
        await model.close()


@virtual_clock
async def test_a_send_that_blocks_for_response_timeout_is_a_stall_and_its_audio_goes_again() -> None:
    model, rec = await started()
    try:
        first = model.conn
        model.gate = asyncio.Event()  # never set: the send blocks
        loop = asyncio.get_running_loop()
        blocked_at = loop.time()
        for _ in range(3):
            model.push_audio(chunk())
        await settle()
        assert first.audio == [] and model._link.liveness.sending_since == blocked_at
        model.gate = None  # the next connection's socket takes them
        at, reconnecting = await rec.until(is_event(Reconnecting))
        assert 10.0 <= at - blocked_at <= 10.5 and reconnecting.reason == "stalled: a send blocked for 10 s"
        await rec.until(is_event(Reconnected))
        await settle()
        assert model.conn is not first and model.conn.audio == pytest.approx([0.0, 0.1, 0.2])
        assert model._link.liveness.sending_since is None
    finally:
        await model.close()


@virtual_clock
async def test_a_send_that_returns_within_response_timeout_is_no_stall() -> None:
    model, rec = await started()
    try:
        first, gate = model.conn, asyncio.Event()
        model.gate = gate
        for _ in range(3):
            model.push_audio(chunk())
        await asyncio.sleep(9.9)  # the watchdog has looked many times meanwhile
        assert first.audio == [] and model._link.liveness.sending_since is not None
        gate.set()
        await settle()
        assert first.audio == pytest.approx([0.0, 0.1, 0.2]) and model._link.liveness.sending_since is None
        await asyncio.sleep(30.0)
        assert model.conn is first and not rec.of(Reconnecting)
    finally:
        await model.close()


@virtual_clock
async def test_close_while_a_send_is_blocked_returns_at_once() -> None:
    model, _ = await started()
    model.gate = asyncio.Event()
    model.push_audio(chunk())
    await settle()
    assert model._link.liveness.sending_since is not None
    loop = asyncio.get_running_loop()
    closing = loop.time()
    await model.close()
    assert loop.time() - closing <= model._link.close_timeout


def test_bad_settings_are_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="stall_timeout"):
        Scripted(stall_timeout=0)
    with pytest.raises(ValueError, match="max_message_size"):
        Scripted(max_message_size=0)
