"""The floor of the peers' OpenAI Realtime workload: no framework and no SDK. Per session, one raw websocket
(``websockets``, the library under the ``openai`` SDK) to the harness's fake server, the harness's caller
(``realtime_common.Caller``) with its 20 ms frames sent in one ``input_audio_buffer.append`` per 100 ms, as
every framework measured sends them, and each 100 ms ``response.output_audio.delta`` played as one chunk into
``TurnPlayoutClock``. What is left of a framework's CPU above this is the framework, its SDK and its plugin.

Run from the harness's folder (``bench/peers/matrix.py`` does):
``cd ../shared/peers && python /path/to/bench/peers/realtime_floor.py --sessions 50 --seconds 20``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
from importlib.metadata import version

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, ".")  # the harness's folder
from realtime_common import (  # noqa: E402
    API_KEY,
    RATE,
    Caller,
    TurnPlayoutClock,
    WindowCounters,
    add_realtime_args,
    emit,
    measure_realtime,
    parse_args,
    phase_of,
    start_server,
)

FRAMES_PER_APPEND = 5  # 100 ms
DELTAS = ("response.output_audio.delta", "response.audio.delta")


class RawSession:
    def __init__(self, url: str, counters: WindowCounters, phase: float) -> None:
        self._url = url
        self._counters = counters
        self._caller = Caller(counters, phase)
        self._clock = TurnPlayoutClock(counters)
        self._audio: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: ClientConnection | None = None

    async def start(self) -> None:
        self._ws = ws = await connect(f"{self._url}?model=gpt-realtime", compression=None, max_size=None,
                                      additional_headers={"Authorization": f"Bearer {API_KEY}"})
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        self._tasks = [asyncio.create_task(run(ws)) for run in (self._send, self._read)]
        self._tasks.append(asyncio.create_task(self._play()))

    async def _send(self, ws: ClientConnection) -> None:
        frames: list[bytes] = []
        while True:
            frames.append(await self._caller.next_frame())
            if len(frames) == FRAMES_PER_APPEND:
                audio = base64.b64encode(b"".join(frames)).decode("ascii")
                frames.clear()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            event = json.loads(message)
            if event["type"] in DELTAS:
                self._audio.put_nowait(base64.b64decode(event["delta"]))

    async def _play(self) -> None:
        while True:
            pcm = await self._audio.get()
            seconds = len(pcm) / 2 / RATE
            await self._clock.play(seconds)
            self._counters.frames_out += 1
            self._counters.audio_out_s += seconds

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()


async def main() -> None:
    args = parse_args(__doc__ or "", add_realtime_args)
    if not args.verbose:
        logging.basicConfig(level=logging.WARNING)
    server = start_server(args)
    try:
        counters = [WindowCounters() for _ in range(args.sessions)]
        sessions: list[RawSession] = []

        async def start_all() -> None:
            for i, c in enumerate(counters):
                session = RawSession(server.ws_url, c, phase_of(args, i))
                await session.start()
                sessions.append(session)

        async def stop_all() -> None:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

        emit(await measure_realtime(framework="raw-websocket", version=version("websockets"), args=args,
                                    counters=counters, server=server, start_all=start_all, stop_all=stop_all,
                                    errors=[]))
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
