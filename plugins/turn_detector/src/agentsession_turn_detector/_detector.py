"""``TurnDetector``: Smart Turn v3 on core's turn-detector interface, hearing the user's audio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import numpy.typing as npt

from agentsession.plugin import AudioFrame, ChatContext, Resampler
from agentsession.plugin import TurnDetector as BaseTurnDetector

from ._features import SAMPLE_RATE, SECONDS
from ._model import READINGS, TRIM, SmartTurnModel, load_model


class TurnDetector(BaseTurnDetector):
    """End of turn from the sound of the user's speech (intonation, rhythm, the words as heard): Pipecat's
    Smart Turn v3 model, run with onnxruntime on the CPU in a worker thread.

    It hears the last 8 s of the turn up to 0.2 s after the user stopped speaking (the cascade passes them:
    ``audio_window``, ``audio_silence``), in any language the model knows; the transcript is not used.
    ``threshold``: under this probability the user is judged not done, and the cascade's ``Endpointing`` waits
    ``max_endpointing_delay`` for more (0.5 is the model's own decision point). ``readings=3``: an answer that is
    not sure (between 0.05 and 0.95) is the median of three, the audio ending 4 ms earlier each time (the model's
    answer can swing with a millisecond of where the audio ends; up to three times the CPU of one reading, the
    default). ``model_path``: another Smart Turn v3 ONNX file instead of the bundled one.
    """

    audio_window = float(SECONDS)
    audio_silence = 0.2  # what it hears after the speech: Pipecat's VAD stop for Smart Turn, whatever the cascade's

    def __init__(self, threshold: float = 0.5, *, readings: int = 1, model_path: str | Path | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold!r}")
        if readings not in READINGS:
            raise ValueError(f"readings must be one of {READINGS}, got {readings!r}")
        self.threshold = self.unlikely_threshold = threshold
        self.readings = readings
        self.model: SmartTurnModel = load_model(model_path)

    def __repr__(self) -> str:
        return f"TurnDetector(threshold={self.threshold}, readings={self.readings}, model={self.model.path.name!r})"

    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str, *,
                                      audio: AudioFrame | None = None) -> float:
        if audio is None:
            raise ValueError("TurnDetector hears the user's audio: pass audio= (a CascadingPipeline does)")
        return await asyncio.to_thread(self.probability, audio)

    def probability(self, audio: AudioFrame) -> float:
        """The probability that the speaker of ``audio`` (any rate; the end of their turn) is done. CPU-bound:
        ``end_of_turn_probability`` runs it off the event loop."""
        return self.model.probability(_at_16k(audio), self.readings)


def _at_16k(audio: AudioFrame) -> npt.NDArray[np.float32]:
    """The last 8 s of ``audio`` (and what the earliest reading leaves off) as mono 16 kHz floats in [-1, 1]."""
    mono = audio.to_mono()
    data = mono.data[-int((SECONDS + TRIM * (max(READINGS) - 1) / SAMPLE_RATE) * mono.sample_rate) - 1:]
    if mono.sample_rate != SAMPLE_RATE:
        resampler = Resampler(mono.sample_rate, SAMPLE_RATE)
        data = np.concatenate([resampler.push_samples(data), resampler.flush()])
    return data[:, 0].astype(np.float32) / np.float32(32768.0)


def pre_download_model() -> Path:
    """Load the bundled model now (VideoSDK's name; call it before the first session, e.g. in a prewarm).
    Nothing is downloaded: the model ships in the ``pipecat-ai`` package. Returns the model file's path."""
    return load_model().path
