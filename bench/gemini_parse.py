"""What reading a Gemini Live message of the model's audio costs: the SDK's read (its converter, then its pydantic
models; what ``session.receive()`` does) against the plugin's (``server_audio``: the JSON, then the base64),
side by side. While the model speaks these are nearly all the server sends: 25 a second for 40 ms chunks.

    python bench/gemini_parse.py            # 20,000 reads of each, 5 repeats
    python bench/gemini_parse.py --quick    # 2,000, 3 repeats (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from collections.abc import AsyncIterator

import numpy as np
from google import genai
from google.genai import types
from google.genai.live import AsyncSession

from agentsession_gemini._server_audio import server_audio

CHUNK_MS = 40


def message(transcript: str | None) -> bytes:
    """A chunk of audio as the server sends it (standard base64), with its transcript if given (Gemini 3)."""
    pcm = (np.sin(np.arange(24 * CHUNK_MS) / 5) * 8000).astype(np.int16).tobytes()
    blob = types.Blob(data=pcm, mime_type="audio/pcm;rate=24000")
    said = types.Transcription(text=transcript) if transcript is not None else None
    content = types.LiveServerContent(model_turn=types.Content(role="model", parts=[types.Part(inline_data=blob)]),
                                      output_transcription=said)
    body = types.LiveServerMessage(server_content=content).model_dump(mode="json", by_alias=True, exclude_none=True)
    body["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"] = base64.b64encode(pcm).decode()
    return json.dumps(body).encode()


class Socket:
    """The same message, over and over."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def recv(self, decode: bool | None = None) -> bytes:
        return self.raw


async def sdk_us(reads: AsyncIterator[types.LiveServerMessage], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await anext(reads)
    return (time.perf_counter() - start) / n * 1e6


def ours_us(raw: bytes, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        server_audio(raw)
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 reads, 3 repeats (CI)")
    n, repeats = (2000, 3) if parser.parse_args().quick else (20000, 5)
    client = genai.Client(api_key="bench-key-0123456789abcdef")
    print(f"a {CHUNK_MS} ms audio message, us per message (median): the SDK's read / the plugin's")
    for name, transcript in (("audio", None), ("audio + transcript", "Hello there")):
        raw = message(transcript)
        session = AsyncSession(api_client=client._api_client, websocket=Socket(raw))  # type: ignore[arg-type]
        reads = session.receive()
        read, ours = await anext(reads), server_audio(raw)
        assert read.server_content is not None and read.server_content.model_turn is not None
        parts = read.server_content.model_turn.parts or []
        assert ours is not None and [(p.inline_data.data, p.inline_data.mime_type) for p in parts
                                     if p.inline_data is not None] == ours.chunks, "the two reads differ"
        times = [(await sdk_us(reads, n), ours_us(raw, n)) for _ in range(repeats)]  # interleaved
        sdk, our = (statistics.median(column) for column in zip(*times, strict=True))
        print(f"  {name:20} {sdk:6.1f} / {our:5.1f}  ({sdk / our:.1f}x less)")


if __name__ == "__main__":
    asyncio.run(main())
