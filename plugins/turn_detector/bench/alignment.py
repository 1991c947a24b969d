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
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from espeak import RATE, render, silence  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from agentsession_turn_detector._model import READINGS, TRIM, SmartTurnModel, load_model  # noqa: E402

FINISHED = ["I want to book a flight to Paris.", "Please remind me to call my mother at six.",
            "What is the weather like in London today?", "Thank you, that is all.", "Can you help me with my order?"]
CUT = ["I want to book a flight to", "Please remind me to call my", "What is the weather like in",
       "I was wondering if", "Can you help me with"]
ENDS = 61  # trailing silence from 0.23 s down to 0.17 s, 1 ms apart
MS = RATE // 1000


class ReadOnce(SmartTurnModel):
    """``SmartTurnModel.probability`` itself, its readings looked up (by window length) from one batched pass of
    the real model over every window it can ask for; counts the readings it takes."""

    def __init__(self, model: SmartTurnModel, clip: np.ndarray) -> None:
        windows = [clip[: len(clip) - k * MS] for k in range(ENDS)]
        windows += [w[: len(w) - TRIM * i] for w in windows for i in range(1, max(READINGS))]
        unique = list({len(w): w for w in windows}.values())
        answers = [p for i in range(0, len(unique), 8) for p in model._read(unique[i : i + 8])]
        self.table = dict(zip((len(w) for w in unique), answers, strict=True))
        self.taken = 0

    def _read(self, windows: list[np.ndarray]) -> list[float]:  # type: ignore[override]
        self.taken += len(windows)
        return [self.table[len(w)] for w in windows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one voice, two sentences of each kind")
    args = parser.parse_args()
    voices = ["en-us"] if args.quick else ["en-us", "en-gb"]
    texts = FINISHED[:2] + CUT[:2] if args.quick else FINISHED + CUT
    model = load_model()
    clips = []
    for voice in voices:
        for text in texts:
            speech = render(text, voice)
            clip = np.concatenate([silence(0.5), speech, silence(0.23)]).astype(np.float32) / 32768.0
            once = ReadOnce(model, clip)
            ends = [clip[: len(clip) - k * MS] for k in range(ENDS)]
            usual = sum(once.probability(end) >= 0.5 for end in ends) * 2 > ENDS  # one reading at most ends
            clips.append((once, ends, usual))
            print(f"{voice} {text!r}: readings {min(once.table.values()):.2f} to {max(once.table.values()):.2f}",
                  file=sys.stderr)
    print(f"\n{len(clips)} clips x {ENDS} ends 1 ms apart (0.17-0.23 s of silence after the speech)\n")
    print("| readings | decisions unlike the clip's usual one | readings per decision |")
    print("|---|---|---|")
    for readings in READINGS:
        differ = taken = 0
        for once, ends, usual in clips:
            once.taken = 0
            differ += sum((once.probability(end, readings) >= 0.5) != usual for end in ends)
            taken += once.taken
        total = len(clips) * ENDS
        print(f"| {readings} | {differ}/{total} ({differ / total:.1%}) | {taken / total:.2f} |")


if __name__ == "__main__":
    main()
