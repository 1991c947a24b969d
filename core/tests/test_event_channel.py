"""``EventChannel`` in every order of emit, end, attach and iteration: nothing lost, nothing after the end."""

from __future__ import annotations

import asyncio

from agentsession import PipelineEvent, UserSpeechStarted, UserSpeechStopped
from agentsession._models import EventChannel

A, B = UserSpeechStarted(), UserSpeechStopped(audio_end=1.0)


def attached(channel: EventChannel) -> list[PipelineEvent | None]:
    got: list[PipelineEvent | None] = []
    channel.attach(got.append)
    return got


def test_what_was_emitted_before_the_sink_reaches_it_first_and_in_order() -> None:
    channel = EventChannel()
    channel.emit(A)
    channel.emit(B)
    got = attached(channel)
    channel.end()
    assert got == [A, B, None]


def test_an_end_before_the_sink_reaches_it_after_the_events() -> None:
    channel = EventChannel()
    channel.emit(A)
    channel.end()
    channel.emit(B)  # after the end: dropped
    assert attached(channel) == [A, None]


def test_a_sink_from_the_start_gets_each_event_as_it_is_emitted() -> None:
    channel = EventChannel()
    got = attached(channel)
    channel.emit(A)
    assert got == [A]
    channel.end()
    channel.end()  # once only
    channel.emit(B)
    assert got == [A, None]


async def test_iterating_reads_what_was_queued_then_waits_for_more_until_the_end() -> None:
    channel = EventChannel()
    channel.emit(A)
    read: list[PipelineEvent] = []
    reading = asyncio.ensure_future(_read(channel, read))
    await asyncio.sleep(0)
    assert read == [A] and not reading.done()  # waiting for more
    channel.emit(B)
    channel.end()
    await reading
    assert read == [A, B]


async def test_iterating_a_channel_that_already_ended_reads_its_events_and_stops() -> None:
    channel = EventChannel()
    channel.emit(A)
    channel.end()
    read: list[PipelineEvent] = []
    await _read(channel, read)
    assert read == [A]


async def _read(channel: EventChannel, into: list[PipelineEvent]) -> None:
    async for event in channel:
        into.append(event)
