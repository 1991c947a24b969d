"""What the Deepgram and Cartesia plugins add to the first-audio latency: from the provider's message leaving the
server's socket to what our code hands on.

- Deepgram: the final ``Results`` (``speech_final``) sent by the server -> the ``final`` ``SpeechEvent`` out of
  ``DeepgramSTT.stream()`` (what the cascade's end-of-turn logic acts on);
- Cartesia: the first ``chunk`` of a context sent by the server -> the first ``AudioFrame`` out of
  ``CartesiaTTS.stream()`` (what the cascade hands on to the session's playout and the transport).

Both run against the plugins' fake servers (``agentsession_deepgram.fake``, ``agentsession_cartesia.fake``) in this
process, over loopback, through the official SDKs: the figure is loopback TCP + websocket framing + the SDK's parsing
+ our code. The server stamps each message on the event loop's clock just before sending it; the consumer stamps
what comes out on the same clock.

    python bench/provider_latency.py            # 50 utterances and 50 syntheses
    python bench/provider_latency.py --quick    # 10 of each
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics

from agentsession import AudioFrame
from agentsession.testing import frames_of, tone
from agentsession_cartesia import CartesiaTTS
from agentsession_cartesia.fake import API_KEY as CARTESIA_KEY
from agentsession_cartesia.fake import FakeCartesiaServer
from agentsession_deepgram import DeepgramSTT
from agentsession_deepgram.fake import API_KEY as DEEPGRAM_KEY
from agentsession_deepgram.fake import FakeDeepgramServer


async def deepgram(n: int) -> list[float]:
    async with FakeDeepgramServer() as server:
        os.environ.update(DEEPGRAM_BASE_URL=server.base_url, DEEPGRAM_API_KEY=DEEPGRAM_KEY)
        stt = DeepgramSTT()
        stream = stt.stream()
        loop = asyncio.get_running_loop()
        delays: list[float] = []
        try:
            for _ in range(n):
                for frame in frames_of(tone(0.5, stt.sample_rate)) + frames_of(AudioFrame.silence(0.5, stt.sample_rate)):
                    stream.push_audio(frame)
                async for event in stream:
                    if event.type == "final":
                        out = loop.time()
                        sent = [t for t, m in server.sessions[0].sent if m["type"] == "Results" and m["is_final"]]
                        delays.append(out - sent[len(delays)])
                        break
        finally:
            await stream.aclose()
            await stt.aclose()
        return delays


async def cartesia(n: int) -> list[float]:
    async with FakeCartesiaServer() as server:
        os.environ.update(CARTESIA_BASE_URL=server.base_url, CARTESIA_API_KEY=CARTESIA_KEY)
        tts = CartesiaTTS()
        loop = asyncio.get_running_loop()
        delays: list[float] = []

        try:
            [f async for f in tts.synthesize("Warm up.")]  # the websocket is open from then on, as in a call
            for _ in range(n):
                stream = tts.stream()
                for word in "Sure, here is what I found about".split():
                    stream.push_text(word + " ")
                await anext(aiter(stream))
                out = loop.time()
                delays.append(out - server.contexts[-1].chunks[0][0])
                await stream.aclose()
        finally:
            await tts.aclose()
        return delays


def summary(name: str, delays: list[float]) -> str:
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{name:<9} n={len(ms):<3} p50 {statistics.median(ms):.2f} ms  p95 {p95:.2f} ms  max {ms[-1]:.2f} ms"


async def main(n: int) -> None:
    print(summary("deepgram", await deepgram(n)))
    print(summary("cartesia", await cartesia(n)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 of each (CI)")
    args = parser.parse_args()
    asyncio.run(main(10 if args.quick else 50))
