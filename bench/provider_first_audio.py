"""The first-audio latency our provider plugins add, measured against their fake servers on loopback.

- ElevenLabs: from the moment the fake service hands its first audio message of a context to the socket to the
  moment the first ``AudioFrame`` comes out of ``ElevenLabsTTS.stream()`` (websocket read, JSON and base64
  decoding, the SDK's message type, PCM to frame, our queue).
- Anthropic: from the moment the fake API hands its first ``text_delta`` event to the socket to the moment
  the first text chunk comes out of ``AnthropicLLM.chat()`` (the SDK's HTTP client, SSE decoding, the SDK's event
  types, our loop).

The fake runs in a thread of its own (its own event loop: its work does not queue behind ours, though it shares
the interpreter; the GIL's switch interval is cut to 0.5 ms so a thread waiting for it is not what is measured). Each figure includes the loopback hop, so it is an upper bound on our code's share; the
provider's own time to first byte is not in it. Runs are sequential; the median and 95th percentile are printed.

    python bench/provider_first_audio.py              # 200 runs each
    python bench/provider_first_audio.py --quick      # 30 runs each
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from agentsession import ChatContext
from agentsession_anthropic import AnthropicLLM
from agentsession_anthropic.fake import API_KEY as ANTHROPIC_KEY
from agentsession_anthropic.fake import FakeAnthropic
from agentsession_elevenlabs import ElevenLabsTTS
from agentsession_elevenlabs.fake import API_KEY as ELEVENLABS_KEY
from agentsession_elevenlabs.fake import FakeElevenLabs

_S = TypeVar("_S", bound=AbstractAsyncContextManager[Any])


def serve_in_thread(make: Callable[[], _S]) -> _S:
    """A fake server started in a daemon thread with its own event loop; it runs until the process exits."""
    ready = threading.Event()
    box: list[_S] = []

    async def run() -> None:
        async with make() as server:
            box.append(server)
            ready.set()
            await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(run()), daemon=True).start()
    ready.wait(10)
    return box[0]


TEXT = "Hello there, my friend. The weather in Paris is sunny and warm today. "


async def elevenlabs(runs: int) -> list[float]:
    added: list[float] = []
    server = serve_in_thread(FakeElevenLabs)
    tts = ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=server.base_url)
    for _ in range(runs + 1):
        stream = tts.stream()
        stream.push_text(TEXT)  # past the first 50 characters: the service generates at once
        await anext(aiter(stream))
        out = time.perf_counter()
        sent = server.contexts[stream.context_id].first_audio_sent
        assert sent is not None
        added.append(out - sent)
        await stream.aclose()
    await tts.aclose()
    return added[1:]  # the first run opens the websocket


async def anthropic(runs: int) -> list[float]:
    added: list[float] = []
    server = serve_in_thread(FakeAnthropic)
    llm = AnthropicLLM(api_key=ANTHROPIC_KEY, base_url=server.base_url)
    ctx = ChatContext()
    ctx.add_message("system", "You are a test agent.")
    ctx.add_message("user", TEXT)
    for _ in range(runs + 1):
        chat = llm.chat(ctx)
        await anext(chat)
        out = time.perf_counter()
        added.append(out - server.first_text_sent[-1])
        await chat.aclose()  # type: ignore[attr-defined]
    await llm.aclose()
    return added[1:]


def report(name: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"{name}: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms over {len(ms)} runs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="30 runs each")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    runs = 30 if args.quick else args.runs
    sys.setswitchinterval(0.0005)
    report("ElevenLabs: first audio at the socket -> first frame out of ElevenLabsTTS.stream()", await elevenlabs(runs))
    report("Anthropic: first text delta at the socket -> first chunk out of AnthropicLLM.chat()", await anthropic(runs))


if __name__ == "__main__":
    asyncio.run(main())
