"""``OpenAIRealtimeReplayer``: a cassette's OpenAI Realtime traffic played back on a loopback websocket.

``python agent.py replay`` points the SDK here with ``OPENAI_BASE_URL``; each websocket connection plays the
next recorded connection (core's ``WebSocketReplayer``: recorded answers when the agent has sent what preceded
them, with their recorded delays; the agent's events compared with the recorded ones as they arrive).
"""

from __future__ import annotations

import binascii
import logging
from typing import Any

from websockets.asyncio.server import Server, serve

from agentsession.plugin import WebSocketReplayer

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


class OpenAIRealtimeReplayer(WebSocketReplayer):
    """Serves recorded OpenAI Realtime connections at ``ws://127.0.0.1:<port>/v1/realtime``."""

    def __init__(self) -> None:
        super().__init__(LINK_NAME, audio_size)
        self._server: Server | None = None

    async def listen(self) -> dict[str, str]:
        self._server = await serve(self.handle, "127.0.0.1", 0, max_size=None, compression=None, logger=_server_log)
        port = next(iter(self._server.sockets)).getsockname()[1]
        return {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": REPLAY_KEY}

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
