"""Frame conversion and the paced output track, without a peer."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from agentsession import AudioFrame, PlayoutBuffer
from agentsession.testing import tone, virtual_clock
from agentsession_webrtc import AgentAudioTrack, frame_from_av


@pytest.mark.parametrize(("fmt", "layout"), [("s16", "stereo"), ("s16p", "stereo"), ("s16", "mono"),
                                             ("fltp", "stereo"), ("flt", "mono")])
def test_frame_from_av_keeps_samples_and_channels(fmt: str, layout: str) -> None:
    channels = 2 if layout == "stereo" else 1
    left = np.arange(960, dtype=np.int16) * 10
    right = -left
    interleaved = np.stack([left, right], axis=1)[:, :channels]
    if fmt.startswith("flt"):
        values: np.ndarray = interleaved.astype(np.float32) / 32767.0
    else:
        values = interleaved
    array = np.ascontiguousarray(values.T if fmt.endswith("p") else values.reshape(1, -1))
    frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
    frame.sample_rate = 48000
    out = frame_from_av(frame)
    assert isinstance(out, AudioFrame)
    assert out.sample_rate == 48000 and out.channels == channels and out.samples_per_channel == 960
    assert np.abs(out.data.astype(np.int32) - interleaved).max() <= 1


@virtual_clock
async def test_the_track_paces_20_ms_blocks_and_sends_silence_when_idle() -> None:
    playout = PlayoutBuffer(48000)
    track = AgentAudioTrack(playout)
    loop = asyncio.get_running_loop()
    start = loop.time()
    frames = [await track.recv() for _ in range(5)]
    assert loop.time() - start == pytest.approx(0.08, abs=1e-6)  # the first block goes at once
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    assert all(f.samples == 960 and f.sample_rate == 48000 and not f.to_ndarray().any() for f in frames)
    assert playout.played == 0.0

    await playout.put(tone(0.03, 48000))
    audio = [await track.recv() for _ in range(2)]
    assert audio[0].to_ndarray().any() and audio[1].to_ndarray()[0, :480].any()
    assert playout.played == pytest.approx(0.03)


@virtual_clock
async def test_the_track_resyncs_after_a_stall_instead_of_bursting() -> None:
    track = AgentAudioTrack(PlayoutBuffer(48000))
    loop = asyncio.get_running_loop()
    await track.recv()
    await asyncio.sleep(0.3)  # a stalled event loop, from the track's point of view
    t = loop.time()
    await track.recv()  # late: goes at once, and the clock restarts from here
    assert loop.time() == t
    await track.recv()
    assert loop.time() - t == pytest.approx(0.02, abs=1e-6)  # not a burst to catch up
    track.stop()
