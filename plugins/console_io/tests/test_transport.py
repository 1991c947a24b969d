"""ConsoleTransport on a fake sounddevice: the contract, the callback discipline, devices, errors, watchdog."""

from __future__ import annotations

import asyncio
import importlib.abc
import io
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from agentsession import Agent, AgentSession, AudioFrame, EnergyVAD, RealTimePipeline
from agentsession.testing import FakeRealtimeModel, FakeResponse, TransportContract, tone
from agentsession_console_io import ConsoleDeviceError, ConsoleTransport, ConsoleView, load_sounddevice
from agentsession_console_io._devices import translate

sd = pytest.importorskip("sounddevice")

TIMEOUT = 10.0


class TestConsoleTransportContract(TransportContract):
    """Core's contract, on fake streams that call back in real time from their own threads."""

    @pytest.fixture(autouse=True)
    def _device(self, make_fake_sd: Any) -> None:
        self.sd = make_fake_sd()

    async def create_transport(self) -> ConsoleTransport:
        transport = ConsoleTransport(backend=self.sd)
        await transport.start()
        return transport

    async def send_user_audio(self, transport: Any, audio: AudioFrame) -> None:
        self.sd.feed(audio)


async def _started(sd: Any, **kwargs: Any) -> ConsoleTransport:
    transport = ConsoleTransport(backend=sd, **kwargs)
    await transport.start()
    return transport


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait for a condition that a device thread makes true (nothing to await there: poll it)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def _next_frames(transport: ConsoleTransport, seconds: float) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    async for frame in transport.audio_input():
        frames.append(frame)
        if sum(f.duration for f in frames) >= seconds:
            break
    return frames


async def test_devices_rates_and_blocks(fake_sd: Any) -> None:
    transport = await _started(fake_sd)
    try:
        assert transport.input_config is not None and transport.output_config is not None
        assert (transport.input_config.name, transport.output_config.name) == ("Fake Mic", "Fake Speakers")
        assert transport.sample_rate == 48000 and transport.channels == 1
        assert {s.blocksize for s in fake_sd.streams} == {960}  # 20 ms at 48 kHz
        frames = await asyncio.wait_for(_next_frames(transport, 0.1), TIMEOUT)
        assert {f.samples_per_channel for f in frames} == {960}
        assert [f.timestamp for f in frames] == pytest.approx([i * 0.02 for i in range(len(frames))])
    finally:
        await transport.close()


async def test_input_is_handed_to_the_loop_from_the_callback_thread(fake_sd: Any) -> None:
    transport = await _started(fake_sd)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = transport._on_input

    def spy(data: np.ndarray) -> None:
        seen.append(threading.get_ident())
        original(data)

    transport._on_input = spy  # type: ignore[method-assign]
    try:
        signal = tone(0.2, 48000, freq=300.0)
        fake_sd.feed(signal)
        frames = await asyncio.wait_for(_next_frames(transport, 0.2), TIMEOUT)
        got = np.concatenate([f.data for f in frames])[: signal.samples_per_channel]
        assert np.array_equal(got, signal.data), "the microphone's samples arrived changed"
        assert seen and set(seen) == {loop_thread}
        assert fake_sd.stream("input").callback_thread != loop_thread
    finally:
        await transport.close()


async def test_output_is_bit_exact_padded_with_silence_and_played_is_exact(fake_sd: Any) -> None:
    transport = await _started(fake_sd)
    try:
        signal = tone(0.3, 48000, freq=500.0)
        for start in range(0, signal.samples_per_channel, 480):
            await asyncio.wait_for(transport.play(AudioFrame(signal.data[start:start + 480], 48000)), TIMEOUT)
        await asyncio.wait_for(transport.wait_for_playout(), TIMEOUT)
        assert transport.played == pytest.approx(0.3, abs=1 / 48000)
        blocks = len(fake_sd.speaker)
        await until(lambda: len(fake_sd.speaker) > blocks)  # the last block's callback has returned
        out = fake_sd.played()[:, 0]
        assert not np.any(out == 12345), "a block was not written by the callback"
        begin = int(np.flatnonzero(out)[0]) - 1  # the tone starts with a zero sample
        assert np.array_equal(out[begin:begin + signal.samples_per_channel], signal.data[:, 0])
        assert transport.stats()["playout_underruns"] == 0
    finally:
        await transport.close()


async def test_clear_silences_the_speakers_within_one_block(fake_sd: Any) -> None:
    transport = await _started(fake_sd)
    try:
        async def play_long() -> None:
            for frame in TransportContract()._frames(transport, 2.0):
                await transport.play(frame)

        player = asyncio.ensure_future(play_long())
        await until(lambda: transport.played >= 0.2)
        player.cancel()
        await asyncio.gather(player, return_exceptions=True)
        blocks_before = len(fake_sd.speaker)
        transport.clear()
        heard = transport.played
        await until(lambda: len(fake_sd.speaker) >= blocks_before + 4)
        after = fake_sd.speaker[blocks_before + 1:]
        assert all(not block.any() for block in after), "audio came out more than one block after clear()"
        assert transport.played == pytest.approx(heard, abs=0.021)
    finally:
        await transport.close()


async def test_sample_rate_falls_back_to_one_the_device_supports(fake_sd: Any, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, "agentsession.console"):
        transport = await _started(fake_sd, sample_rate=16000)
    try:
        assert transport.input_config is not None and transport.input_config.sample_rate == 16000
        assert transport.sample_rate == 48000  # the speakers don't do 16 kHz: the session resamples to 48
        assert "does not support 16000 Hz; using 48000 Hz" in caplog.text
        frames = await asyncio.wait_for(_next_frames(transport, 0.04), TIMEOUT)
        assert frames[0].sample_rate == 16000 and frames[0].samples_per_channel == 320
    finally:
        await transport.close()


async def test_devices_by_index_and_by_name(make_fake_sd: Any) -> None:
    sd = make_fake_sd(devices=[
        {"name": "Built-in", "index": 0, "hostapi": 0, "max_input_channels": 2, "max_output_channels": 2,
         "default_samplerate": 44100.0, "rates": {44100}},
        {"name": "USB Headset", "index": 1, "hostapi": 0, "max_input_channels": 1, "max_output_channels": 2,
         "default_samplerate": 48000.0, "rates": {16000, 48000}},
    ])
    transport = await _started(sd, input_device="usb", output_device="0")
    try:
        assert transport.input_config is not None and transport.input_config.index == 1
        assert transport.output_config is not None and transport.output_config.index == 0
        assert transport.sample_rate == 44100  # 48 kHz preferred, else the device's default
    finally:
        await transport.close()


@pytest.mark.parametrize(
    ("kwargs", "setup", "message"),
    [
        ({}, {"devices": []}, "no input device (microphone) found"),
        ({}, {"default_device": (-1, 1)}, "no default input device"),
        ({"input_device": "nope"}, {}, "No input device matching 'nope'"),
        ({"input_device": "7"}, {}, "does not exist"),
        ({"input_device": "Speakers"}, {}, "No input device matching"),
        ({}, {"busy": {0}}, "is busy: another program is using it"),
        ({"output_device": "Mic"}, {}, "No output device matching"),
    ],
)
async def test_device_problems_are_clear_errors(make_fake_sd: Any, kwargs: dict[str, Any],
                                                setup: dict[str, Any], message: str) -> None:
    sd = make_fake_sd(**setup)
    transport = ConsoleTransport(backend=sd, **kwargs)
    with pytest.raises(ConsoleDeviceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await transport.start()
    assert all(s in sd.closed for s in sd.streams), "a stream was left open after a failed start"
    await transport.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Error opening InputStream: Unanticipated host error", -9999, (0, -16, "Device or resource busy")),
         "'Mic' is busy"),
        (("Error opening InputStream: Device unavailable", -9985), "'Mic' is busy"),
        (("Error opening InputStream: Invalid device", -9996), "not usable (unplugged?)"),
        (("Error opening InputStream: Invalid sample rate", -9997), "rejected the sample rate"),
        (("Error starting stream: Internal PortAudio error", -9986), "cannot open the input device (microphone) 'Mic'"),
    ],
)
def test_portaudio_errors_are_translated(args: tuple[Any, ...], message: str) -> None:
    assert message in str(translate(sd.PortAudioError(*args), "input", "Mic"))


class _NoPortAudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")  # what sounddevice raises without libportaudio2
        return None


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice")
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(ConsoleDeviceError, match="apt-get install libportaudio2.*brew install portaudio"):
        load_sounddevice()


async def test_text_mode_without_any_audio_device_goes_on_without_playback(monkeypatch: pytest.MonkeyPatch,
                                                                           make_fake_sd: Any) -> None:
    transport = await _started(make_fake_sd(devices=[]), text=True, stdin=io.StringIO(""))
    try:
        assert not transport.playback and transport.input_config is None
        await asyncio.wait_for(transport.play(AudioFrame.silence(0.1, transport.sample_rate)), TIMEOUT)
        await asyncio.wait_for(transport.wait_for_playout(), TIMEOUT)  # paced by the loop instead
        assert transport.played == pytest.approx(0.1)
    finally:
        await transport.close()


async def test_watchdog_reports_a_device_that_stops_delivering(fake_sd: Any, caplog: Any) -> None:
    view_out = io.StringIO()
    transport = await _started(fake_sd, watchdog=0.3, view=ConsoleView(Console(file=view_out), live=False))
    try:
        fake_sd.stream("input").stalled.set()
        reason = await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
        assert "the input device 'Fake Mic' stopped working: it delivered no audio for" in reason
        assert "stopped working" in caplog.text and "stopped working" in view_out.getvalue()
        assert transport.failure == reason
    finally:
        await transport.close()


async def test_a_stream_that_ends_by_itself_is_reported(fake_sd: Any) -> None:
    transport = await _started(fake_sd)
    try:
        fake_sd.stream("output").lose()
        reason = await asyncio.wait_for(transport.wait_ended(), TIMEOUT)
        assert "output device 'Fake Speakers' stopped working" in reason and "unplugged" in reason
    finally:
        await transport.close()
    assert await transport.wait_ended() == reason


async def test_half_duplex_mutes_the_microphone_while_the_agent_is_audible(fake_sd: Any) -> None:
    transport = await _started(fake_sd, half_duplex=True, echo_tail=0.1)
    try:
        reader = asyncio.ensure_future(_next_frames(transport, 100))
        for frame in TransportContract()._frames(transport, 0.3):
            await transport.play(frame)
            fake_sd.feed(AudioFrame(frame.data.copy(), 48000))  # the speakers leak into the mic
        assert transport.muted
        await transport.wait_for_playout()
        fake_sd.feed(tone(0.5, 48000))
        await until(lambda: transport.level_db > -20 and not transport.muted)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    finally:
        await transport.close()


async def test_half_duplex_frames_are_silence(fake_sd: Any) -> None:
    transport = await _started(fake_sd, half_duplex=True)
    try:
        async def speak() -> None:
            for frame in TransportContract()._frames(transport, 0.6):
                await transport.play(frame)

        speaker = asyncio.ensure_future(speak())
        await until(transport.agent_audible)
        fake_sd.feed(tone(0.3, 48000))
        frames = await asyncio.wait_for(_next_frames(transport, 0.3), TIMEOUT)
        assert all(not f.data.any() for f in frames), "the microphone was heard while the agent spoke"
        await speaker
    finally:
        await transport.close()


class _Echo(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="test")


async def test_a_session_talks_through_the_devices(fake_sd: Any) -> None:
    """Speech into the fake microphone -> EnergyVAD turn -> scripted answer out of the fake speakers."""
    out = io.StringIO()
    view = ConsoleView(Console(file=out, width=120), live=False)
    transport = await _started(fake_sd, view=view)
    model = FakeRealtimeModel([FakeResponse(text="a fine answer", audio=0.5, delay=0.05)],
                              vad=EnergyVAD(min_silence=0.2))
    session = AgentSession(_Echo(), RealTimePipeline(model))
    await session.start(transport=transport)
    try:
        metrics: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.on("metrics_collected", lambda m: metrics.done() or metrics.set_result(m))
        fake_sd.feed(tone(0.4, 48000, freq=300.0))
        turn = await asyncio.wait_for(metrics, TIMEOUT)  # a turn is complete once its answer was played
        assert turn["trigger"] == "user" and turn["e2e"] is not None and turn["eou_delay"] is not None
        assert transport.played == pytest.approx(0.5, abs=0.03)  # + resampler tail, padded frame
        heard = fake_sd.played()[:, 0].astype(np.float64)
        assert np.sqrt(np.mean(heard[np.flatnonzero(heard)[0]:][:24000] ** 2)) > 5000
    finally:
        await session.close()
        await transport.close()
    text = out.getvalue()
    assert "agent: a fine answer" in text
    assert "turn 1 (user)" in text and "e2e" in text
    assert "session summary" in text and "playout_underruns 0" in text


async def test_typed_lines_are_user_turns_and_eof_ends_once_quiet(fake_sd: Any) -> None:
    out = io.StringIO()
    transport = await _started(fake_sd, text=True, stdin=io.StringIO("hello there\n"),
                               view=ConsoleView(Console(file=out, width=120), live=False))
    assert transport.input_config is None and transport.output_config is not None
    model = FakeRealtimeModel([FakeResponse(text="hi back", audio=0.3, delay=0.05)])
    session = AgentSession(_Echo(), RealTimePipeline(model))
    await session.start(transport=transport)
    try:
        assert await asyncio.wait_for(transport.wait_ended(), TIMEOUT) == "input done"
        assert model.texts == ["hello there"]
        assert transport.played == pytest.approx(0.3, abs=0.03)
    finally:
        await session.close()
        await transport.close()
    assert "you typed: hello there" in out.getvalue() and "agent: hi back" in out.getvalue()
