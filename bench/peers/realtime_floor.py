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
import sys
from importlib.metadata import version

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, ".")  # the harness's folder
from _realtime_run import Played, run  # noqa: E402
from realtime_common import API_KEY, RATE, Caller, FakeServer, WindowCounters  # noqa: E402

FRAMES_PER_APPEND = 5  # 100 ms
DELTAS = ("response.output_audio.delta", "response.audio.delta")


class RawSession(Played):
    def __init__(self, url: str, counters: WindowCounters, phase: float) -> None:
        super().__init__(counters)
        self._url = url
        self._caller = Caller(counters, phase)
        self._ws: ClientConnection | None = None

    async def start(self) -> None:
        self._ws = ws = await connect(f"{self._url}?model=gpt-realtime", compression=None, max_size=None,
                                      additional_headers={"Authorization": f"Bearer {API_KEY}"})
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        self.tasks += [asyncio.create_task(self._send(ws)), asyncio.create_task(self._read(ws))]
        self.start_playout()

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
                self.play(len(base64.b64decode(event["delta"])) / 2 / RATE)

    async def disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()


async def start(counters: WindowCounters, phase: float, server: FakeServer) -> RawSession:
    session = RawSession(server.ws_url, counters, phase)
    await session.start()
    return session


if __name__ == "__main__":
    run(__doc__ or "", "raw-websocket", version("websockets"), start)
