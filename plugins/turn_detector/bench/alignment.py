"""How much Smart Turn's decision depends on where, to the millisecond, the audio it hears ends.

Each clip (espeak-ng: finished sentences and sentences cut off mid-way, two voices) is heard with 0.5 s of
silence before it and 0.17 to 0.23 s after it, in 1 ms steps: 61 ends, all within the 0.2 s the cascade passes
give or take a VAD frame or two. The model reads every window once (in batches); ``TurnDetector``'s decision
with 1 or 3 readings at each end is then what it computes from those readings (the first; if that is not
sure, the median of it and the readings ending 4, 8, ... ms earlier). Printed per setting: how many of the
decisions differ from the clip's usual one (what one reading says at most of its ends), and the readings it
took per decision.

    .venv/bin/python plugins/turn_detector/bench/alignment.py           # 20 clips (~2 min)
    .venv/bin/python plugins/turn_detector/bench/alignment.py --quick   # 4 clips
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from espeak import RATE, render, silence  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from agentsession_turn_detector._model import READINGS, SURE, TRIM, load_model  # noqa: E402

FINISHED = ["I want to book a flight to Paris.", "Please remind me to call my mother at six.",
            "What is the weather like in London today?", "Thank you, that is all.", "Can you help me with my order?"]
CUT = ["I want to book a flight to", "Please remind me to call my", "What is the weather like in",
       "I was wondering if", "Can you help me with"]
ENDS = 61  # trailing silence from 0.23 s down to 0.17 s, 1 ms apart
MS = RATE // 1000
STEP = TRIM // MS  # ms between two readings


def readings_of(clip: np.ndarray, model: object) -> list[float]:
    """The model's one reading of the clip ending 0, 1, 2, ... ms earlier (as many as any setting needs)."""
    windows = [clip[: len(clip) - k * MS] for k in range(ENDS + STEP * (max(READINGS) - 1))]
    out: list[float] = []
    for i in range(0, len(windows), 8):
        out += model._read(windows[i : i + 8])  # type: ignore[attr-defined]
    return out


def decide(read: list[float], k: int, readings: int) -> tuple[bool, int]:
    """``TurnDetector``'s decision at end ``k`` with ``readings``, and how many readings it took."""
    first = read[k]
    if readings == 1 or first <= SURE or first >= 1.0 - SURE:
        return first >= 0.5, 1
    return statistics.median(read[k + STEP * i] for i in range(readings)) >= 0.5, readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one voice, two sentences of each kind")
    args = parser.parse_args()
    voices = ["en-us"] if args.quick else ["en-us", "en-gb"]
    texts = FINISHED[:2] + CUT[:2] if args.quick else FINISHED + CUT
    model = load_model()
    tables = []
    for voice in voices:
        for text in texts:
            speech = render(text, voice)
            clip = np.concatenate([silence(0.5), speech, silence(0.23)]).astype(np.float32) / 32768.0
            tables.append(readings_of(clip, model))
            print(f"{voice} {text!r}: readings {min(tables[-1]):.2f} to {max(tables[-1]):.2f}", file=sys.stderr)
    print(f"\n{len(tables)} clips x {ENDS} ends 1 ms apart (0.17-0.23 s of silence after the speech)\n")
    print("| readings | decisions unlike the clip's usual one | readings per decision |")
    print("|---|---|---|")
    for readings in READINGS:
        differ = taken = 0
        for read in tables:
            usual = sum(p >= 0.5 for p in read[:ENDS]) * 2 > ENDS
            decisions = [decide(read, k, readings) for k in range(ENDS)]
            differ += sum(d != usual for d, _ in decisions)
            taken += sum(n for _, n in decisions)
        total = len(tables) * ENDS
        print(f"| {readings} | {differ}/{total} ({differ / total:.1%}) | {taken / total:.2f} |")


if __name__ == "__main__":
    main()
