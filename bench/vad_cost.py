"""What a VAD costs: CPU per stream, as a share of one core, for SileroVAD and core's EnergyVAD side by side.

N streams each get the same audio in 20 ms frames (``--rate``, default 24 kHz: core's internal rate), pushed
one frame per stream in turn, as fast as possible; the process CPU time over N times the audio duration is
the share of one core a stream needs in real time. SileroVAD's figure includes core's resampling to the
model's 16 kHz. A third line times Silero's model alone on a batch of N windows per call (what batching
inference across streams would cost; SileroVAD does not do it, one call per stream and window is cheap
enough). The audio is noise with louder tone bursts; the model costs the same whatever it hears.

    python bench/vad_cost.py            # N = 1, 10, 50, 20 s of audio per stream
    python bench/vad_cost.py --quick    # N = 1, 10, 3 s per stream (CI)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

from agentsession._audio import AudioFrame
from agentsession._models import VAD
from agentsession._vad import EnergyVAD


def make_audio(seconds: float, rate: int, channels: int) -> list[AudioFrame]:
    rng = np.random.default_rng(1)
    t = np.arange(round(seconds * rate)) / rate
    signal = rng.standard_normal(len(t)) * 300 + np.sin(2 * np.pi * 220 * t) * 8000 * (t % 2 < 1)
    pcm = np.clip(signal, -32768, 32767).astype(np.int16)[:, np.newaxis].repeat(channels, axis=1)
    size = rate // 50
    return [AudioFrame(pcm[i : i + size], rate) for i in range(0, len(pcm) - size + 1, size)]


def measure(make: Callable[[], VAD], streams: int, frames: Sequence[AudioFrame]) -> float:
    """Share of one core per stream."""
    vads = [make() for _ in range(streams)]
    for vad in vads:  # warm up: first inference, resampler filter design
        vad.push(frames[0])
        vad.reset()
    start = time.process_time()
    for frame in frames:
        for vad in vads:
            vad.push(frame)
    cpu = time.process_time() - start
    audio = sum(frame.duration for frame in frames)
    return cpu / (streams * audio)


def measure_batched(streams: int, seconds: float) -> float:
    """Silero's model alone, N windows per call: share of one core per stream."""
    from agentsession_silero._model import CONTEXT_SAMPLES, WINDOW_SAMPLES, load_model

    model = load_model()
    width = CONTEXT_SAMPLES[16000] + WINDOW_SAMPLES[16000]
    windows = (np.random.default_rng(2).standard_normal((streams, width)) * 0.05).astype(np.float32)
    state = np.zeros((2, streams, 128), np.float32)
    calls = round(seconds * 16000 / WINDOW_SAMPLES[16000])
    model.run(windows, state, 16000)
    start = time.process_time()
    for _ in range(calls):
        _, state = model.run(windows, state, 16000)
    return (time.process_time() - start) / (streams * seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1, 10 and 3 s of audio (CI)")
    parser.add_argument("--streams", type=int, nargs="+", help="stream counts (default 1 10 50)")
    parser.add_argument("--seconds", type=float, help="audio per stream (default 20)")
    parser.add_argument("--rate", type=int, default=24000, help="input sample rate (default 24000)")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 2))
    args = parser.parse_args()
    counts = args.streams or ([1, 10] if args.quick else [1, 10, 50])
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    frames = make_audio(seconds, args.rate, args.channels)

    from agentsession_silero import SileroVAD

    started = time.perf_counter()
    SileroVAD()
    print(f"model load (once per process): {(time.perf_counter() - started) * 1e3:.0f} ms")
    print(f"{seconds:g} s of {args.rate} Hz x {args.channels} ch per stream, 20 ms frames; % of one core per stream")
    print(f"{'streams':>8} {'SileroVAD':>10} {'EnergyVAD':>10} {'Silero model, batched':>22}")
    for streams in counts:
        silero = measure(SileroVAD, streams, frames)
        energy = measure(EnergyVAD, streams, frames)
        batched = measure_batched(streams, seconds)
        print(f"{streams:>8} {silero * 100:>9.2f}% {energy * 100:>9.3f}% {batched * 100:>21.2f}%")
    if args.quick and silero >= 0.05:
        raise SystemExit(f"SileroVAD costs {silero:.1%} of a core per stream: over the 5 % budget")


if __name__ == "__main__":
    main()
