"""``OpenAIRealtimeReplayer``: a cassette's OpenAI Realtime traffic played back on a loopback websocket.

``python agent.py replay`` points the SDK here with ``OPENAI_BASE_URL``; each websocket connection plays the
next recorded connection (core's ``ReplayScript``: recorded answers when the agent has sent what preceded them,
with their recorded delays; the agent's events compared with the recorded ones as they arrive).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from agentsession.plugin import Replayer, ReplayScript, TrafficRecord

#: the ``ProviderLink`` name of ``OpenAIRealtime``, as a cassette names its traffic
LINK_NAME = "OpenAI Realtime"
REPLAY_KEY = "sk-replay-agentsession"
#: the server's own log (websockets logs each connection at INFO): warnings only
_server_log = logging.getLogger("agentsession.openai.replay.server")
_server_log.setLevel(logging.WARNING)


def audio_size(message: Any) -> int | None:
    """Bytes of audio in an ``input_audio_buffer.append`` (``None`` for any other client event: a request)."""
    if isinstance(message, dict) and message.get("type") == "input_audio_buffer.append":
        try:
            return len(binascii.a2b_base64(message.get("audio") or ""))
        except (binascii.Error, TypeError):
            return 0
    return None


class OpenAIRealtimeReplayer(Replayer):
    """Serves recorded OpenAI Realtime connections at ``ws://127.0.0.1:<port>/v1/realtime``."""

    def __init__(self) -> None:
        self._scripts: list[ReplayScript] = []
        self._next = 0
        self._extra: list[str] = []
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, connections: list[list[TrafficRecord]]) -> dict[str, str]:
        many = len(connections) > 1
        self._scripts = [ReplayScript(records, audio_size, name=f" on connection {i + 1}" if many else "")
                         for i, records in enumerate(connections)]
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None,
                                   logger=_server_log)
        port = next(iter(self._server.sockets)).getsockname()[1]
        return {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": REPLAY_KEY}

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def differences(self) -> list[str]:
        found = list(self._extra)
        for script in self._scripts[:self._next]:
            found += script.finish()
        for n in range(self._next, len(self._scripts)):
            found.append(f"connection {n + 1} to OpenAI Realtime was not made: the agent made it in the recording")
        return found

    async def _handle(self, ws: ServerConnection) -> None:
        n = self._next
        self._next += 1
        if n >= len(self._scripts):
            self._extra.append(f"connection {n + 1} to OpenAI Realtime is new: the cassette has no traffic for it")
            await ws.close(1011, "the cassette has no such connection")
            return
        script = self._scripts[n]

        async def send(record: TrafficRecord, message: Any) -> None:
            await ws.send(json.dumps(message) if record.is_json else str(message))

        player = asyncio.get_running_loop().create_task(script.play(send), name="openai-replay")
        try:
            async for raw in ws:
                try:
                    message: Any = json.loads(raw)
                except ValueError:
                    message = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                script.client(message)
        except ConnectionClosed:
            pass
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
