"""The floor of the peers' OpenAI Realtime workload: no framework and no SDK. Per session, one raw websocket
(``websockets``, the library under the ``openai`` SDK) to the harness's fake server, the harness's caller
(``realtime_common.Caller``) with its 20 ms frames sent in one ``input_audio_buffer.append`` per 100 ms, as
every framework measured sends them, and each 100 ms ``response.output_audio.delta`` played as one chunk into
``TurnPlayoutClock``. What is left of a framework's CPU above this is the framework, its SDK and its plugin.

``--client aiohttp`` makes the same calls through ``aiohttp``'s websocket (its frame reader is compiled), the
library under LiveKit's plugin: how much of each framework's floor is its websocket library.

Run from the harness's folder (``bench/peers/matrix.py`` does):
``cd ../shared/peers && python /path/to/bench/peers/realtime_floor.py --sessions 50 --seconds 20``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import version

import aiohttp
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
        self.tasks += [asyncio.create_task(self._send(ws.send)), asyncio.create_task(self._read(ws))]
        self.start_playout()

    async def _send(self, send: Callable[[str], Awaitable[None]]) -> None:
        frames: list[bytes] = []
        while True:
            frames.append(await self._caller.next_frame())
            if len(frames) == FRAMES_PER_APPEND:
                audio = base64.b64encode(b"".join(frames)).decode("ascii")
                frames.clear()
                await send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            self._heard(message)

    def _heard(self, message: str | bytes) -> None:
        event = json.loads(message)
        if event["type"] in DELTAS:
            self.play(len(base64.b64decode(event["delta"])) / 2 / RATE)

    async def disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class AiohttpSession(RawSession):
    """The same calls through ``aiohttp``'s websocket client (one ``ClientSession`` for every session)."""

    http: aiohttp.ClientSession | None = None
    connected = 0

    async def start(self) -> None:
        if AiohttpSession.http is None:
            AiohttpSession.http = aiohttp.ClientSession()
        AiohttpSession.connected += 1
        self._aio = ws = await AiohttpSession.http.ws_connect(
            f"{self._url}?model=gpt-realtime", max_msg_size=0, headers={"Authorization": f"Bearer {API_KEY}"})
        await ws.send_str(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        self.tasks += [asyncio.create_task(self._send(ws.send_str)), asyncio.create_task(self._read_aiohttp(ws))]
        self.start_playout()

    async def _read_aiohttp(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            self._heard(message.data)

    async def disconnect(self) -> None:
        await self._aio.close()
        AiohttpSession.connected -= 1
        if not AiohttpSession.connected and AiohttpSession.http is not None:
            await AiohttpSession.http.close()


async def start(counters: WindowCounters, phase: float, server: FakeServer) -> RawSession:
    session = (AiohttpSession if CLIENT == "aiohttp" else RawSession)(server.ws_url, counters, phase)
    await session.start()
    return session


if __name__ == "__main__":
    CLIENT = "websockets"
    if "--client" in sys.argv:  # not the harness's own option: taken out before it parses the rest
        at = sys.argv.index("--client")
        CLIENT = sys.argv[at + 1]
        del sys.argv[at:at + 2]
        if CLIENT not in ("websockets", "aiohttp"):
            raise SystemExit(f"--client must be websockets or aiohttp, got {CLIENT!r}")
    run(__doc__ or "", f"raw-{CLIENT}", version(CLIENT), start)
