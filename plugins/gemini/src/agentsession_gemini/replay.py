"""``GeminiLiveReplayer``: a cassette's Gemini Live traffic played back on a loopback websocket (TLS).

``python agent.py replay`` points the SDK here with ``GOOGLE_GEMINI_BASE_URL`` (``SSL_CERT_FILE`` trusts the
certificate made at start, as ``agentsession fakes gemini`` does); each websocket connection plays the next
recorded connection (core's ``WebSocketReplayer``).
"""

from __future__ import annotations

import binascii
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, serve

from agentsession.plugin import WebSocketReplayer

from .fake import make_certificate

#: the ``ProviderLink`` name of ``GeminiRealtime``, as a cassette names its traffic
LINK_NAME = "Gemini Live"
REPLAY_KEY = "replay-agentsession-gemini-key"
#: the server's own log (websockets logs each connection at INFO): warnings only
_server_log = logging.getLogger("agentsession.gemini.replay.server")
_server_log.setLevel(logging.WARNING)


def audio_size(message: Any) -> int | None:
    """Bytes of audio in a ``realtime_input`` of audio (``None`` for any other client message: a request)."""
    if not isinstance(message, dict):
        return None
    realtime = message.get("realtime_input") or message.get("realtimeInput")
    if not isinstance(realtime, dict) or set(realtime) - {"audio", "media_chunks", "mediaChunks"}:
        return None
    size = 0
    for blob in [realtime.get("audio"), *(realtime.get("media_chunks") or realtime.get("mediaChunks") or [])]:
        if isinstance(blob, dict):
            try:
                size += len(binascii.a2b_base64(blob.get("data") or ""))
            except (binascii.Error, TypeError):
                pass
    return size


class GeminiLiveReplayer(WebSocketReplayer):
    """Serves recorded Gemini Live connections at ``wss://127.0.0.1:<port>`` (any path)."""

    def __init__(self) -> None:
        super().__init__(LINK_NAME, audio_size)
        self._server: Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def listen(self) -> dict[str, str]:
        self._tmp = tempfile.TemporaryDirectory(prefix="agentsession-gemini-replay-")
        cert, key = make_certificate(Path(self._tmp.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = await serve(self.handle, "127.0.0.1", 0, max_size=None, compression=None, ssl=context,
                                   logger=_server_log)
        port = next(iter(self._server.sockets)).getsockname()[1]
        return {"GOOGLE_GEMINI_BASE_URL": f"https://127.0.0.1:{port}", "GOOGLE_API_KEY": REPLAY_KEY,
                "SSL_CERT_FILE": str(cert)}

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
