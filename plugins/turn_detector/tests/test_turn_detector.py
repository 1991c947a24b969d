"""Smart Turn v3 from the installed package: its features against Pipecat's reference, its judgement on espeak-ng
speech, and the detector inside a cascade run through the CLI's file mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from espeak import RATE, available, frame, render, silence

from agentsession import ChatContext
from agentsession.plugin import AudioConverter, AudioFrame
from agentsession.plugin import TurnDetector as BaseTurnDetector
from agentsession_turn_detector import TurnDetector, bundled_model_path, pre_download_model
from agentsession_turn_detector._features import N_SAMPLES, fit, log_mel
from agentsession_turn_detector._model import TRIM, SmartTurnModel

AGENT = Path(__file__).parent / "cascade_agent.py"
needs_espeak = pytest.mark.skipif(not available(), reason="needs espeak-ng")
COMPLETE, CUT = "I want to book a flight to Paris.", "I want to book a flight to"


def turn(samples: np.ndarray, trailing: float = 0.2) -> np.ndarray:
    """What the cascade passes: a little silence, the speech, the silence after which the VAD stopped."""
    return np.concatenate([silence(0.5), samples, silence(trailing)])


def test_the_model_comes_from_the_installed_package_without_importing_it() -> None:
    path = bundled_model_path()
    assert path.is_file() and path.name.startswith("smart-turn-v3") and path.suffix == ".onnx"
    assert "site-packages" in path.parts or "dist-packages" in path.parts
    assert pre_download_model() == path
    first, second = TurnDetector(), TurnDetector(threshold=0.6)
    assert first.model is second.model  # one session per process
    assert isinstance(first, BaseTurnDetector) and first.audio_window == 8.0 and second.unlikely_threshold == 0.6
    check = ("import sys, agentsession_turn_detector as t; t.pre_download_model(); "
             "assert 'pipecat' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)


def test_features_match_the_reference_implementation() -> None:
    """Pipecat's numpy port of transformers' WhisperFeatureExtractor, shipped beside the model."""
    from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features

    rng = np.random.default_rng(7)
    t = np.arange(3 * RATE) / RATE
    chirp = 0.3 * np.sin(2 * np.pi * (150 + 400 * t) * t) + 0.02 * rng.standard_normal(t.size)
    for samples in (fit(chirp), fit(np.zeros(10)), fit(rng.uniform(-1, 1, 10 * RATE))):
        ours, reference = log_mel(samples), compute_whisper_log_mel_features(samples)
        assert ours.shape == reference.shape == (80, 800) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, reference, atol=1e-5)
    with pytest.raises(ValueError, match="8 s at 16 kHz"):
        log_mel(np.zeros(N_SAMPLES - 1, np.float32))


class ScriptedSession:
    """onnxruntime's session with answers given in advance, one per window read; keeps what it was given."""

    def __init__(self, *answers: float) -> None:
        self.answers, self.batches = list(answers), []

    def run(self, outputs: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = feeds["input_features"]
        self.batches.append(batch)
        out, self.answers = self.answers[:len(batch)], self.answers[len(batch):]
        return [np.array(out, np.float32).reshape(-1, 1)]


@pytest.mark.parametrize(("readings", "answers", "expected"), [
    (3, (0.97,), 0.97),  # sure: one reading
    (3, (0.02,), 0.02),
    (3, (0.31, 0.91, 0.92), 0.91),  # a finished sentence read at an unlucky end: the other two outvote it
    (3, (0.62, 0.10, 0.20), 0.20),  # a cut-off one read as finished at one end: outvoted too
    (1, (0.31,), 0.31),  # one reading, sure or not
])
def test_an_unsure_answer_is_read_again_ending_earlier_and_the_median_taken(
        readings: int, answers: tuple[float, ...], expected: float) -> None:
    model = object.__new__(SmartTurnModel)
    model._session = session = ScriptedSession(*answers)
    samples = np.random.default_rng(3).uniform(-0.5, 0.5, 3 * RATE).astype(np.float32)
    assert model.probability(samples, readings) == pytest.approx(expected)
    first, *again = session.batches  # one run for the first reading, one for the others
    assert not session.answers and len(first) == 1 and [len(b) for b in again] == ([len(answers) - 1] if again else [])
    windows = [samples] + [samples[:-TRIM * i] for i in range(1, len(answers))]  # 4 ms earlier each time
    for features, window in zip(np.concatenate(session.batches), windows, strict=True):
        np.testing.assert_array_equal(features, log_mel(fit(window)))
    with pytest.raises(ValueError, match="readings"):
        model.probability(samples, 2)


@needs_espeak
@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize(("readings", "margin"), [(3, 0.3), (1, 0.0)])
def test_a_complete_sentence_ends_the_turn_and_a_cut_off_one_does_not(voice: str, readings: int,
                                                                      margin: float) -> None:
    """With three readings, clear of the threshold by 0.3 either way (the cut sentence reads 0.02-0.17 under
    onnxruntime 1.26, 1.29 and 1.32); with one, on the right side of it (0.02-0.25 there: 0.25 under 1.29)."""
    detector = TurnDetector(readings=readings)
    done = detector.probability(frame(turn(render(COMPLETE, voice))))
    cut = detector.probability(frame(turn(render(CUT, voice))))
    assert done >= detector.threshold + margin and cut < detector.threshold - margin, (done, cut)


@needs_espeak
async def test_any_rate_is_resampled_and_the_model_runs_off_the_loop() -> None:
    # three readings: the resampler's round trip moves where the audio ends by a few ms, and one reading can swing
    # with that alone (0.90 against 0.97 here with onnxruntime 1.32)
    detector = TurnDetector(readings=3)
    speech = turn(render(COMPLETE))
    converter = AudioConverter(48000)
    frames = converter.push_samples(speech.reshape(-1, 1), RATE) + converter.flush()
    at_48k = AudioFrame(np.concatenate([f.data for f in frames]), 48000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    high = await detector.end_of_turn_probability(ChatContext(), "", audio=at_48k)
    task.cancel()
    assert ticks > 1  # the loop ran while the model did
    assert high == pytest.approx(detector.probability(frame(speech)), abs=0.05)
    with pytest.raises(ValueError, match="audio="):
        await detector.end_of_turn_probability(ChatContext(), "hello")
    with pytest.raises(ValueError, match="threshold"):
        TurnDetector(threshold=1.0)
    with pytest.raises(ValueError, match="readings"):
        TurnDetector(readings=4)


def write_wav(folder: Path, audio: np.ndarray) -> tuple[Path, Path]:
    folder.mkdir()
    source, out = folder / "in.wav", folder / "out.wav"
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.astype("<i2").tobytes())
    return source, out


async def run_agent(folder: Path, audio: np.ndarray, **env: str) -> str:
    source, out = write_wav(folder, audio)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(AGENT), "file", "--input", str(source), "--output", str(out), env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    stdout = (await asyncio.wait_for(proc.communicate(), 120))[0].decode()
    assert proc.returncode == 0, stdout
    assert "error:" not in stdout, stdout
    return stdout


def turns(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("turn: ")]


@needs_espeak
async def test_in_a_cascade_a_pause_mid_sentence_does_not_end_the_turn(tmp_path: Path) -> None:
    """The user pauses 1.2 s after "...a flight to", then says "Paris."; then a whole sentence. The same file
    with silence-only endpointing (run beside it) is cut at the pause."""
    audio = np.concatenate([silence(1.0), render(CUT), silence(1.2), render("Paris."), silence(4.0),
                            render("Please remind me to call my mother at six."), silence(2.0)])
    with_detector, silence_only = await asyncio.gather(
        run_agent(tmp_path / "detector", audio), run_agent(tmp_path / "silence", audio, SILENCE_ONLY="1"))
    heard = turns(with_detector)
    assert len(heard) == 2 and heard[0].startswith("turn: part1 part2 ("), with_detector  # one turn, not cut
    assert heard[1] == "turn: part3 (turn_detector)", with_detector  # a whole sentence: ended by the model
    assert turns(silence_only) == ["turn: part1 (silence)", "turn: part2 (silence)", "turn: part3 (silence)"], (
        silence_only)
