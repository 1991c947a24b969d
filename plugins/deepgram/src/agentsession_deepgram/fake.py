"""A local server that speaks Deepgram's speech-to-text protocol, for tests and offline examples.

```python
async with FakeDeepgramServer() as server:        # needs agentsession-deepgram[fake] (aiohttp)
    server.transcript = "What is the weather in Paris?"
    os.environ |= {"DEEPGRAM_BASE_URL": server.base_url, "DEEPGRAM_API_KEY": API_KEY}
```

- ``GET /v1/listen`` (websocket): the live API. Binary messages are linear16 audio at the query's ``sample_rate``;
  text messages are ``KeepAlive``, ``Finalize``, ``CloseStream``. It hears speech by loudness (no recognition:
  each utterance's words are ``transcripts.pop(0)``, else ``transcript``) and answers on the audio's own timeline:
  ``SpeechStarted`` (with ``vad_events``), interim ``Results`` every 0.25 s of speech (with ``interim_results``),
  a final one with ``speech_final: true`` after ``endpointing`` ms of silence (at least ``WORD_GAP``: the pauses
  between spoken words do not end an utterance), ``UtteranceEnd`` after
  ``utterance_end_ms``, ``from_finalize: true`` for a ``Finalize``, ``Metadata`` and a close for ``CloseStream``.
- ``POST /v1/listen``: the prerecorded API (a WAV or raw linear16 body); the transcript if the audio has speech.

Every message it sends is validated against the SDK's own types; anything unexpected it gets lands in
``protocol_errors``. ``drop_after`` cuts a connection (no close frame) once it has had that many seconds of audio.
``agentsession fakes deepgram`` serves one (``DeepgramFakes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from aiohttp import WSMsgType, web
from deepgram.listen.v1.types import (
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from deepgram.types.listen_v1response import ListenV1Response
from pydantic import BaseModel

from agentsession.plugin import FakeService

API_KEY = "dg-test-fake-0123456789abcdef"
LOUD = 500.0  # RMS above which a message counts as speech
INTERIM_EVERY = 0.25  # seconds of speech between interim results
WORD_GAP = 0.3  # silence shorter than this is inside the speech (it has no recognizer to tell a pause from a word's)
_MESSAGES: dict[str, type[BaseModel]] = {
    "Results": ListenV1Results, "SpeechStarted": ListenV1SpeechStarted, "UtteranceEnd": ListenV1UtteranceEnd,
    "Metadata": ListenV1Metadata,
}
_MODEL_INFO = {"name": "general-nova", "version": "2024-01-01.0", "arch": "nova-2"}
_MODEL_UUID = "4d892fb6-7cb1-4bd0-8e3f-3c2b4f5a1e2d"


@dataclass
class LiveSession:
    """One websocket: its query, what came in, what went out (with the loop time of each send)."""

    query: dict[str, str]
    audio_seconds: float = 0.0
    controls: list[str] = field(default_factory=list)
    sent: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    keepalive: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.sent if m.get("type") == kind]


@dataclass
class _Speech:
    start: float
    words: list[str]
    loud: float = 0.0
    silence: float = 0.0
    interims: int = 0
    end: float = 0.0
    final_sent: bool = False


class FakeDeepgramServer:
    """``async with FakeDeepgramServer() as server``; ``base_url`` is ``http://127.0.0.1:P``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.transcript = "Hello there, how are you today?"
        self.transcripts: list[str] = []
        self.drop_after: float | None = None
        self.sessions: list[LiveSession] = []
        self.prerecorded: list[dict[str, Any]] = []
        self.protocol_errors: list[str] = []
        self.connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    async def __aenter__(self) -> FakeDeepgramServer:
        app = web.Application()
        app.router.add_get("/v1/listen", self._live)
        app.router.add_post("/v1/listen", self._prerecorded)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_words(self) -> list[str]:
        text = self.transcripts.pop(0) if self.transcripts else self.transcript
        return text.split()

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Token {API_KEY}"

    # ------------------------------------------------------------------ live

    async def _live(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401)
        query = dict(request.query)
        problems = [f"{k}={query.get(k)!r}" for k, v in (("encoding", "linear16"), ("channels", "1"))
                    if query.get(k) != v]
        if problems or not query.get("model") or not query.get("sample_rate", "").isdigit():
            self.protocol_errors.append(f"unexpected live query: {query}")
            return web.json_response({"err_code": "Bad Request", "err_msg": "bad query"}, status=400)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = LiveSession(query)
        self.sessions.append(session)
        self.connected.set()
        rate = int(query["sample_rate"])
        speech: _Speech | None = None
        request_id = str(uuid.uuid4())

        async def send(message: dict[str, Any]) -> None:
            kind = message["type"]
            _MESSAGES[kind].model_validate(message)  # the SDK's own schema
            session.sent.append((asyncio.get_running_loop().time(), message))
            await ws.send_str(json.dumps(message))

        def results(words: list[str], start: float, end: float, *, is_final: bool, speech_final: bool = False,
                    from_finalize: bool = False) -> dict[str, Any]:
            step = (end - start) / max(1, len(words))
            return {
                "type": "Results", "channel_index": [0, 1], "duration": round(end - start, 3),
                "start": round(start, 3), "is_final": is_final, "speech_final": speech_final,
                "from_finalize": from_finalize,
                "channel": {"alternatives": [{
                    "transcript": " ".join(words), "confidence": 0.98 if words else 0.0,
                    "words": [{"word": w.strip(",.?!").lower(), "start": round(start + i * step, 3),
                               "end": round(start + (i + 1) * step, 3), "confidence": 0.98, "punctuated_word": w}
                              for i, w in enumerate(words)]}]},
                "metadata": {"request_id": request_id, "model_info": _MODEL_INFO, "model_uuid": _MODEL_UUID},
            }

        async def final(current: _Speech, *, speech_final: bool, from_finalize: bool = False) -> None:
            current.final_sent = True
            await send(results(current.words, current.start, current.end, is_final=True, speech_final=speech_final,
                               from_finalize=from_finalize))

        endpointing = query.get("endpointing", "10")
        endpoint = None if endpointing == "false" else max(WORD_GAP, int(endpointing) / 1000)
        utterance_end = int(query["utterance_end_ms"]) / 1000 if "utterance_end_ms" in query else None
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    samples = np.frombuffer(msg.data, "<i2").astype(np.float64)
                    duration = len(samples) / rate
                    now = session.audio_seconds
                    session.audio_seconds += duration
                    loud = bool(len(samples)) and float(np.sqrt(np.mean(samples**2))) > LOUD
                    if loud and (speech is None or speech.final_sent):
                        speech = _Speech(now, self._next_words())
                        if query.get("vad_events") == "true":
                            await send({"type": "SpeechStarted", "channel": [0], "timestamp": round(now, 3)})
                    if speech is None:
                        pass
                    elif loud:
                        speech.loud += duration
                        speech.silence = 0.0
                        speech.end = session.audio_seconds
                        shown = min(len(speech.words) - 1, int(speech.loud / INTERIM_EVERY))
                        if query.get("interim_results") == "true" and shown > speech.interims:
                            speech.interims = shown
                            await send(results(speech.words[:shown], speech.start, speech.end, is_final=False))
                    else:
                        speech.silence += duration
                        if not speech.final_sent and endpoint is not None and speech.silence >= endpoint:
                            await final(speech, speech_final=True)
                        if utterance_end is not None and speech.silence >= utterance_end:
                            if not speech.final_sent:
                                await final(speech, speech_final=False)
                            await send({"type": "UtteranceEnd", "channel": [0, 1],
                                        "last_word_end": round(speech.end, 3)})
                            speech = None
                    if self.drop_after is not None and session.audio_seconds >= self.drop_after:
                        self.drop_after = None
                        transport = request.transport
                        assert transport is not None
                        transport.abort()  # no close frame: a dropped connection
                        break
                elif msg.type == WSMsgType.TEXT:
                    kind = str(json.loads(msg.data).get("type"))
                    session.controls.append(kind)
                    if kind == "KeepAlive":
                        session.keepalive.set()
                    elif kind == "Finalize":
                        if speech is not None and not speech.final_sent:
                            await final(speech, speech_final=False, from_finalize=True)
                        else:
                            end = session.audio_seconds
                            await send(results([], end, end, is_final=True, from_finalize=True))
                    elif kind == "CloseStream":
                        if speech is not None and not speech.final_sent:
                            await final(speech, speech_final=True)
                        await send({"type": "Metadata", "transaction_key": "deprecated", "request_id": request_id,
                                    "sha256": hashlib.sha256(request_id.encode()).hexdigest(),
                                    "created": datetime.now(UTC).isoformat(), "duration": session.audio_seconds,
                                    "channels": 1})
                        await ws.close()
                        break
                    else:
                        self.protocol_errors.append(f"unknown control message {msg.data!r}")
        finally:
            session.closed.set()
        return ws

    # ------------------------------------------------------------------ prerecorded

    async def _prerecorded(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401)
        body = await request.read()
        query = dict(request.query)
        if body[:4] == b"RIFF":
            with wave.open(io.BytesIO(body), "rb") as w:
                rate, channels = w.getframerate(), w.getnchannels()
                samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        elif query.get("encoding") == "linear16" and query.get("sample_rate", "").isdigit():
            rate, channels, samples = int(query["sample_rate"]), 1, np.frombuffer(body, "<i2")
        else:
            self.protocol_errors.append(f"prerecorded body is neither a WAV nor described raw audio: {query}")
            return web.json_response({"err_code": "Bad Request", "err_msg": "unknown audio"}, status=400)
        seconds = len(samples) / channels / rate
        self.prerecorded.append({"query": query, "seconds": seconds, "sample_rate": rate, "channels": channels})
        voiced = len(samples) > 0 and float(np.max(np.abs(samples.astype(np.int32)))) > LOUD
        words = self._next_words() if voiced else []
        step = seconds / max(1, len(words))
        request_id = str(uuid.uuid4())
        response = {
            "metadata": {"transaction_key": "deprecated", "request_id": request_id,
                         "sha256": hashlib.sha256(body).hexdigest(), "created": datetime.now(UTC).isoformat(),
                         "duration": seconds, "channels": channels, "models": [_MODEL_UUID],
                         "model_info": {_MODEL_UUID: _MODEL_INFO}},
            "results": {"channels": [{"alternatives": [{
                "transcript": " ".join(words), "confidence": 0.98 if words else 0.0,
                "words": [{"word": w.strip(",.?!").lower(), "start": i * step, "end": (i + 1) * step,
                           "confidence": 0.98, "punctuated_word": w} for i, w in enumerate(words)]}]}]},
        }
        ListenV1Response.model_validate(response)
        return web.json_response(response, headers={"dg-request-id": request_id})


class DeepgramFakes(FakeService):
    """``agentsession fakes deepgram``: one ``FakeDeepgramServer``."""

    description: ClassVar[str] = "Deepgram live (/v1/listen websocket) and prerecorded speech to text"
    knobs: ClassVar[dict[str, str]] = {
        "heard": "what the fake hears the user say in each utterance",
    }

    def __init__(self) -> None:
        self.heard = "hello there"
        self.server: FakeDeepgramServer | None = None

    async def start(self, host: str = "127.0.0.1") -> dict[str, str]:
        self.server = await FakeDeepgramServer(host).__aenter__()
        self.server.transcript = self.heard
        return {"DEEPGRAM_BASE_URL": self.server.base_url, "DEEPGRAM_API_KEY": API_KEY}

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.__aexit__(None, None, None)
