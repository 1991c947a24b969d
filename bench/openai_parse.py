"""What parsing the OpenAI Realtime server events the plugin acts on costs: the SDK's ``parse_event`` (the whole
union of server events) against the plugin's parse (the one class for the event's type), side by side.

These events come about seven times a turn (the user's speech start and stop, the transcript, the response's
start, transcript, last item and end); the audio and transcript deltas, 50 a second, are read from the JSON and
parsed by neither.

    python bench/openai_parse.py            # 20,000 parses of each, 5 repeats
    python bench/openai_parse.py --quick    # 2,000, 3 repeats (CI)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from openai.resources.realtime.realtime import AsyncRealtimeConnection

from agentsession_openai._realtime import _parse_event
from agentsession_openai.fake.samples import WELL_FORMED

#: the user's speech start, a response's start and its end: a small, a middling and the largest of the events
EVENTS = [e for e in WELL_FORMED if e["type"] in ("input_audio_buffer.speech_started", "response.created",
                                                  "response.done")]


def _parse_raw(kind: str, raw: bytes) -> object:
    """The plugin's path: the JSON is read once (for the event's type), then the one class is parsed."""
    return _parse_event(kind, json.loads(raw))


def per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 parses, 3 repeats (CI)")
    n, repeats = (2000, 3) if parser.parse_args().quick else (20000, 5)
    sdk_parse = AsyncRealtimeConnection.parse_event
    print("event parse, us per event (median): the SDK's union parse / the plugin's parse of the one class")
    for event in EVENTS:
        raw = json.dumps(event).encode()
        kind = event["type"]
        sdk = partial(sdk_parse, cast(Any, None), raw)
        ours = partial(_parse_raw, kind, raw)
        assert ours() == sdk(), f"{kind}: the two parses differ"
        times = [(per_call_us(sdk, n), per_call_us(ours, n)) for _ in range(repeats)]  # interleaved
        sdk_us, our_us = (statistics.median(column) for column in zip(*times, strict=True))
        print(f"  {kind:36} {sdk_us:6.1f} / {our_us:5.1f}  ({sdk_us / our_us:.1f}x less)")

if __name__ == "__main__":
    main()
