"""Premature cut-offs, added delay and CPU per turn of the end-of-turn strategies, on real pauses.

The corpus is rendered with espeak-ng (several voices): each sentence said whole, and said with a pause in the
middle (SSML ``<break>``, e.g. "I want to book a flight to ... Paris."). Each clip is cut by core's
``EnergyVAD`` into 20 ms frames as a cascade does; at each stop of the voice the strategies decide when the
turn ends, with core's ``Endpointing``:

- silence only: ``min_endpointing_delay`` after every stop (a fast and a patient setting);
- ``TextTurnDetector``: the words so far, as a perfect STT would write them (the words before the pause as
  written, the whole sentence with its final punctuation);
- Smart Turn (``agentsession_turn_detector.TurnDetector``): the audio of the turn up to the stop, as the
  cascade passes it (from 0.5 s before the VAD's start, at most 8 s).

The corpus is run twice: with a VAD stop after 0.2 s of silence (as Pipecat runs Smart Turn) and after
0.5 s (the cascade's default ``EnergyVAD``); the detector hears 0.2 s of silence after the speech either way
(``audio_silence``).

A cut-off is a turn ended during a mid-sentence pause (before the VAD hears the user again); the delay is
from the last voiced sample of the sentence to the end of the turn; the CPU is the detector's own time per
call (features + model), ``time.process_time``.

    .venv/bin/python plugins/turn_detector/bench/pauses.py            # the whole corpus (~1 min)
    .venv/bin/python plugins/turn_detector/bench/pauses.py --quick    # 2 voices, 4 sentences
    .venv/bin/python plugins/turn_detector/bench/pauses.py --readings 3   # the median of three when unsure
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from espeak import RATE, frame, render, silence  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from agentsession.plugin import Endpointing, EnergyVAD, TextTurnDetector  # noqa: E402
from agentsession_turn_detector import TurnDetector  # noqa: E402

VOICES = ["en-us", "en-us+f3", "en-gb", "en-gb-scotland", "en-029"]
SENTENCES = [
    ("I want to book a flight to", "Paris."),
    ("Can you tell me the weather in", "London tomorrow?"),
    ("I would like to order a large pizza with", "extra cheese."),
    ("Please remind me to call my", "mother at six."),
    ("The meeting is on", "Tuesday afternoon."),
    ("I am looking for a restaurant that", "serves vegetarian food."),
    ("Could you play some music by", "the Beatles?"),
    ("I need to change my password because", "I forgot it."),
    ("My phone number is five five five", "one two three four."),
    ("I'd like a table for four", "at eight tonight."),
    ("Can you turn off the lights", "in the kitchen?"),
    ("I need a taxi", "to the airport."),
]
PAUSES = (0.6, 1.0)
VAD_STOPS = (0.2, 0.5)  # seconds of silence before the VAD reports a stop
MIN_DELAY, MAX_DELAY = 0.3, 3.0
PATIENT_DELAY = 1.0  # a silence-only setting long enough not to cut the pauses
PREROLL = 0.5


@dataclass
class Stop:
    at: float  # seconds into the clip when the VAD reported the stop
    resume: float | None  # when the VAD reported the voice again (None: the clip's end)
    transcript: str
    audio: npt.NDArray[np.int16]


@dataclass
class Clip:
    voice: str
    text: str
    pause: float | None  # the mid-sentence pause, None: said whole
    speech_end: float
    stops: list[Stop] = field(default_factory=list)


def make_clip(voice: str, head: str, tail: str, pause: float | None, vad_stop: float, heard_silence: float) -> Clip:
    text = f"{head} {tail}"
    spoken = render(f'{head} <break time="{int(pause * 1000)}ms"/> {tail}' if pause else text, voice, ssml=bool(pause))
    lead = silence(1.0)
    audio = np.concatenate([lead, spoken, silence(MAX_DELAY + 1.0)])
    clip = Clip(voice, text, pause, (lead.size + spoken.size) / RATE)
    break_end = None
    if pause:  # where the voice comes back after the pause: the longest quiet run inside the speech
        quiet = np.concatenate([[0], (np.abs(spoken) < 300).astype(np.int8), [0]])
        runs = np.flatnonzero(np.diff(quiet)).reshape(-1, 2)
        start, end = runs[np.argmax(runs[:, 1] - runs[:, 0])]
        break_end = (lead.size + end) / RATE
    vad = EnergyVAD(min_silence=vad_stop)
    step = RATE // 50
    turn_start: int | None = None
    pending: list[tuple[float, int]] = []
    resumes: list[float] = []
    for i in range(0, audio.size - step + 1, step):
        for event in vad.push(frame(audio[i:i + step])):
            now = (i + step) / RATE
            if event.kind == "start":
                turn_start = i + step - int(PREROLL * RATE) if turn_start is None else turn_start
                resumes.append(now)
            else:  # the audio heard ends heard_silence after the speech, as the cascade cuts it
                pending.append((now, min(i + step, int((event.position + heard_silence) * RATE))))
    for at, end in pending:
        after = [r for r in resumes if r > at]
        words = head if break_end is not None and at < break_end else text
        begin = max(turn_start or 0, end - 8 * RATE)
        clip.stops.append(Stop(at, after[0] if after else None, words, audio[begin:end]))
    return clip


@dataclass
class Outcome:
    cut: bool = False
    delay: float | None = None  # from the end of the sentence to the end of the turn
    late: bool = False  # the turn ended at the longest wait


def decide(clip: Clip, probabilities: list[float | None], endpointing: Endpointing, threshold: float) -> Outcome:
    outcome = Outcome()
    for stop, probability in zip(clip.stops, probabilities, strict=True):
        decision = endpointing.decide(probability, threshold)
        ends = stop.at + decision.delay
        if stop.resume is not None and stop.resume <= ends:
            continue  # the user spoke again first: the turn goes on
        if stop.resume is not None:
            outcome.cut = True  # the turn ended in the middle of the sentence
        outcome.delay = ends - clip.speech_end
        outcome.late = decision.reason == "max_delay"
        return outcome
    return outcome


def _delays(outcomes: list[Outcome]) -> str:
    delays = sorted(o.delay for o in outcomes if o.delay is not None)
    if not delays:
        return "-"
    late = sum(o.late for o in outcomes)
    return (f"{statistics.median(delays):.2f} s / {delays[int(0.9 * (len(delays) - 1))]:.2f} s "
            f"({late}/{len(outcomes)})")


def score(clips: list[Clip], audio_detector: TurnDetector, text_detector: TextTurnDetector,
          cpu: dict[str, list[float]]) -> dict[str, list[list[float | None]]]:
    """Each strategy's probability at each stop of each clip (``None``: silence only)."""
    scores: dict[str, list[list[float | None]]] = {"silence": [], "text": [], "audio": []}
    for clip in clips:
        text_row: list[float | None] = []
        audio_row: list[float | None] = []
        for stop in clip.stops:
            started = time.process_time()
            text_row.append(text_detector.score(stop.transcript))
            cpu["text"].append(time.process_time() - started)
            started = time.process_time()
            audio_row.append(audio_detector.probability(frame(stop.audio)))
            cpu["audio"].append(time.process_time() - started)
        scores["silence"].append([None] * len(clip.stops))
        scores["text"].append(text_row)
        scores["audio"].append(audio_row)
    return scores


def table(clips: list[Clip], scores: dict[str, list[list[float | None]]], vad_stop: float,
          audio_detector: TurnDetector, text_detector: TextTurnDetector) -> None:
    fast, patient = Endpointing(MIN_DELAY, MAX_DELAY), Endpointing(PATIENT_DELAY, MAX_DELAY)
    strategies = [
        (f"silence only ({MIN_DELAY} s)", "silence", fast, 0.0),
        (f"silence only ({PATIENT_DELAY} s)", "silence", patient, 0.0),
        ("TextTurnDetector", "text", fast, text_detector.unlikely_threshold),
        ("Smart Turn (TurnDetector)", "audio", fast, audio_detector.unlikely_threshold),
    ]
    print(f"\n{len(clips)} clips, whole and with a {' / '.join(f'{p} s' for p in PAUSES)} pause; VAD stop after "
          f"{vad_stop} s of silence; endpointing {MIN_DELAY} s / {MAX_DELAY} s\n")
    print("| strategy | " + " | ".join(f"cut-offs, {p} s pauses" for p in PAUSES)
          + " | delay after a whole sentence, median / p90 (ended late) | delay after a paused sentence's end |")
    print("|---" * (len(PAUSES) + 3) + "|")
    for name, key, endpointing, threshold in strategies:
        outcomes = [decide(c, s, endpointing, threshold) for c, s in zip(clips, scores[key], strict=True)]
        cuts = []
        for pause in PAUSES:
            paused = [o for c, o in zip(clips, outcomes, strict=True) if c.pause == pause]
            cuts.append(f"{sum(o.cut for o in paused)}/{len(paused)}")
        whole = [o for c, o in zip(clips, outcomes, strict=True) if c.pause is None]
        ends = [o for c, o in zip(clips, outcomes, strict=True) if c.pause is not None and not o.cut]
        print(f"| {name} | {' | '.join(cuts)} | {_delays(whole)} | {_delays(ends)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 voices, 4 sentences")
    parser.add_argument("--readings", type=int, default=1, help="TurnDetector's readings (1 or 3)")
    args = parser.parse_args()
    voices, sentences = (VOICES[:2], SENTENCES[:4]) if args.quick else (VOICES, SENTENCES)
    audio_detector, text_detector = TurnDetector(readings=args.readings), TextTurnDetector()
    cpu: dict[str, list[float]] = {"text": [], "audio": []}
    runs = []
    for vad_stop in VAD_STOPS:
        clips = [make_clip(v, h, t, p, vad_stop, audio_detector.audio_silence or 0.0)
                 for v in voices for h, t in sentences for p in (None, *PAUSES)]
        scores = score(clips, audio_detector, text_detector, cpu)
        table(clips, scores, vad_stop, audio_detector, text_detector)
        runs.append((clips, scores))
    clips, scores = runs[0]
    stops = [(c, s, p) for c, row in zip(clips, scores["audio"], strict=True) for s, p in zip(c.stops, row, strict=True)]
    audio_ms = sorted(1000 * c for c in cpu["audio"])
    print(f"\nCPU per decision: Smart Turn {statistics.mean(audio_ms):.0f} ms mean, "
          f"{audio_ms[int(0.9 * (len(audio_ms) - 1))]:.0f} ms p90 ({len(audio_ms)} calls); "
          f"TextTurnDetector {1e6 * statistics.mean(cpu['text']):.0f} us mean")
    print(f"With a {VAD_STOPS[0]} s VAD stop:")
    mids = [p for c, s, p in stops if s.resume is not None and p is not None]
    lasts = [p for c, s, p in stops if s.resume is None and p is not None]
    print(f"Smart Turn probability: mid-sentence stops median {statistics.median(mids):.2f} ({len(mids)}), "
          f"sentence ends median {statistics.median(lasts):.2f} ({len(lasts)})")
    for voice in voices:
        judged = [p >= audio_detector.threshold for c, s, p in stops
                  if c.voice == voice and s.resume is not None and p is not None]
        print(f"  {voice}: {sum(judged)}/{len(judged)} mid-sentence stops judged finished")
    print("Sentence heads said alone (the first 3 voices), judged finished with this much silence after them:")
    heads = [np.concatenate([silence(PREROLL), render(h, v)]) for v in voices[:3] for h, _ in sentences]
    for trailing in (0.0, 0.2, 0.5):
        judged = [audio_detector.probability(frame(np.concatenate([h, silence(trailing)]))) >= 0.5 for h in heads]
        print(f"  {trailing} s: {sum(judged)}/{len(judged)}")


if __name__ == "__main__":
    main()
