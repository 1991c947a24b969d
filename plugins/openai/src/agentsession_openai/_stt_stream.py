"""``OpenAISpeechStream``: live transcription over a Realtime **transcription** session (the SDK's websocket).

One websocket per stream (``client.realtime.connect(extra_query={"intent": "transcription"})``), configured
with ``session.update`` (``type: "transcription"``, 24 kHz PCM, the transcription model, server VAD or none).
Audio goes out as ``input_audio_buffer.append``; ``flush()`` sends ``input_audio_buffer.commit``. From the
server: ``input_audio_buffer.speech_started/stopped`` become speech events, each
``conversation.item.input_audio_transcription.delta`` an interim with the item's text so far, ``.completed``
the final (``.failed``: an empty final with the error). Finals are released in the order the items were
committed, whatever order the service finishes them in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from openai import AsyncOpenAI, OpenAIError
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from agentsession import AudioConverter, AudioFrame, ModelError, SpeechEvent, SpeechStream, redact
from agentsession.plugin import current_link_taps, tap_message

from ._client import refused

#: the link name a transcription stream's traffic is tapped under (a cassette's)
STT_LINK = "OpenAI transcription"
logger = logging.getLogger("agentsession.openai.stt")

SAMPLE_RATE = 24000  # the only PCM rate a transcription session takes
DEFAULT_STT_TURN_DETECTION: Mapping[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
}
_MIN_COMMIT_MS = 100.0  # the service refuses to commit less
_SESSION_EVENT = "agentsession_session_update"
_NETWORK_ERRORS = (ConnectionClosed, WebSocketException, OpenAIError, OSError)
_Send = dict[str, Any]
_END = object()


class OpenAISpeechStream(SpeechStream):
    """Made by ``OpenAISTT.stream()``; connects at once, in the background (audio pushed meanwhile waits)."""

    def __init__(
        self,
        client: Callable[[], AsyncOpenAI],
        *,
        model: str,
        language: str | None = None,
        prompt: str | None = None,
        turn_detection: Mapping[str, Any] | None = None,
        noise_reduction: str | None = None,
        connect_timeout: float = 10.0,
        on_close: Callable[[OpenAISpeechStream], None] | None = None,
        connection: int = 0,
    ) -> None:
        """``connection``: which of its STT's streams this is (the cassette's connection number)."""
        super().__init__()
        self.model = model
        self.language = language
        self.prompt = prompt
        self.turn_detection = dict(turn_detection) if turn_detection is not None else None
        self.noise_reduction = noise_reduction
        self.connect_timeout = connect_timeout
        self._client = client
        self._on_close = on_close
        self._taps = current_link_taps()  # the session's (a recorder's cassette), seeing each message
        self._connection = connection
        self._converter = AudioConverter(SAMPLE_RATE)
        self._outbox: asyncio.Queue[_Send | object] = asyncio.Queue()
        self._input_ended = False
        self._appended_ms = 0.0  # audio pushed since our last commit
        self._commit_ids = (f"agentsession_commit_{n}" for n in itertools.count(1))
        self._pending_commits: list[str] = []  # our commits not yet answered
        self._all_sent = False
        self._order: list[str] = []  # committed items, in order; the head's final goes out first
        self._texts: dict[str, str] = {}
        self._finals: dict[str, SpeechEvent] = {}
        self._released: set[str] = set()
        self._spoken: set[str] = set()  # items in which the server's VAD heard speech
        self._vad_stopped: set[str] = set()  # items the VAD ended and will commit itself
        self._conn: AsyncRealtimeConnection | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="openai-stt-stream")

    # ------------------------------------------------------------------ SpeechStream

    def push_audio(self, frame: AudioFrame) -> None:
        if self._input_ended or self.finished:
            raise RuntimeError("push_audio() after end_input() or aclose()")
        for out in self._converter.push(frame):
            self._append(out)

    def flush(self) -> None:
        if self._input_ended or self.finished:
            return
        for out in self._converter.flush():
            self._append(out)
        if self._appended_ms >= _MIN_COMMIT_MS:
            commit_id = next(self._commit_ids)
            self._appended_ms = 0.0
            self._outbox.put_nowait({"type": "input_audio_buffer.commit", "event_id": commit_id})

    def end_input(self) -> None:
        if self._input_ended or self.finished:
            return
        self.flush()
        self._input_ended = True
        self._outbox.put_nowait(_END)

    async def aclose(self) -> None:
        self._input_ended = True
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await super().aclose()

    def _append(self, frame: AudioFrame) -> None:
        self._appended_ms += 1000 * frame.duration
        self._outbox.put_nowait({"type": "input_audio_buffer.append",
                                 "audio": base64.b64encode(frame.to_bytes()).decode("ascii")})

    # ------------------------------------------------------------------ the connection

    def _session_config(self) -> dict[str, Any]:
        transcription: dict[str, Any] = {"model": self.model}
        if self.language:
            transcription["language"] = self.language
        if self.prompt:
            transcription["prompt"] = self.prompt
        audio_in: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
            "transcription": transcription,
            "turn_detection": self.turn_detection,
        }
        if self.noise_reduction is not None:
            audio_in["noise_reduction"] = {"type": self.noise_reduction}
        return {"type": "transcription", "audio": {"input": audio_in}}

    async def _run(self) -> None:
        try:
            conn = await self._connect()
        except ModelError as exc:
            self._fail(exc)
            self._closed()
            return
        sender = asyncio.get_running_loop().create_task(self._send_loop(conn), name="openai-stt-send")
        try:
            await self._read_loop(conn)
        except ModelError as exc:
            self._fail(exc)
        except _NETWORK_ERRORS as exc:
            if self.finished:
                return
            logger.warning("the OpenAI transcription connection was lost: %s", redact(str(exc)))
            self._fail(ModelError(f"the OpenAI transcription connection was lost ({type(exc).__name__})",
                                  recoverable=True, code="connection_lost"))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NETWORK_ERRORS):
                await sender
            self._conn = None
            try:
                await conn.close()
            except Exception:
                logger.debug("closing the transcription socket failed", exc_info=True)
            self._closed()

    def _closed(self) -> None:
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None

    async def _connect(self) -> AsyncRealtimeConnection:
        try:
            client = self._client()
            manager = client.realtime.connect(extra_query={"intent": "transcription"})
            conn = await asyncio.wait_for(manager.enter(), self.connect_timeout)
        except InvalidStatus as exc:
            raise refused(exc.response.status_code, "OpenAISTT",
                          "the OpenAI Realtime API refused the transcription connection") from None
        except TimeoutError:
            raise ModelError("connecting to the OpenAI Realtime API timed out", recoverable=True,
                             code="connect_timeout") from None
        except (OSError, WebSocketException) as exc:
            raise ModelError(f"could not connect to the OpenAI Realtime API ({type(exc).__name__})",
                             recoverable=True, code="connect_failed") from None
        self._conn = conn
        await self._put(conn, {"type": "session.update", "event_id": _SESSION_EVENT,
                               "session": self._session_config()})
        logger.info("transcribing with %s over the OpenAI Realtime API", self.model)
        return conn

    async def _send_loop(self, conn: AsyncRealtimeConnection) -> None:
        while True:
            item = await self._outbox.get()
            if item is _END:
                self._all_sent = True
                self._maybe_end()
                if self.finished:  # nothing was in flight: wake the reader by closing
                    await conn.close()
                return
            assert isinstance(item, dict)
            if item["type"] == "input_audio_buffer.commit":
                self._pending_commits.append(item["event_id"])
            await self._put(conn, item)

    async def _put(self, conn: AsyncRealtimeConnection, event: dict[str, Any]) -> None:
        if self._taps:
            tap_message(self._taps, STT_LINK, self._connection, "sent", json.dumps(event))
        await conn.send(event)  # type: ignore[arg-type]

    async def _read_loop(self, conn: AsyncRealtimeConnection) -> None:
        while not self.finished:
            raw = await conn.recv_bytes()
            if self._taps:
                tap_message(self._taps, STT_LINK, self._connection, "received", raw)
            try:
                data = json.loads(raw)
            except ValueError:
                logger.warning("the transcription service sent a message that is not JSON")
                continue
            if isinstance(data, dict):
                self._on_event(data)

    # ------------------------------------------------------------------ server events

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self._spoken.add(event["item_id"])
            self._emit(SpeechEvent("speech_started", utterance_id=event["item_id"],
                                   position=event["audio_start_ms"] / 1000))
        elif kind == "input_audio_buffer.speech_stopped":
            self._spoken.add(event["item_id"])
            self._vad_stopped.add(event["item_id"])
            self._emit(SpeechEvent("speech_stopped", utterance_id=event["item_id"],
                                   position=event["audio_end_ms"] / 1000))
        elif kind == "input_audio_buffer.committed":
            # the server's VAD commits an item it said speech_stopped for; any other commit answers one of ours
            # (our count of uncommitted audio is left alone: a commit of an empty buffer is merely refused)
            if event["item_id"] in self._vad_stopped:
                self._vad_stopped.discard(event["item_id"])
            elif self._pending_commits:
                self._pending_commits.pop(0)
            self._committed(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.delta":
            item = event["item_id"]
            self._committed(item)
            self._texts[item] = self._texts.get(item, "") + (event.get("delta") or "")
            if item not in self._finals:
                self._emit(SpeechEvent("interim", self._texts[item], item))
        elif kind == "conversation.item.input_audio_transcription.completed":
            item = event["item_id"]
            self._committed(item)
            self._finals[item] = SpeechEvent("final", str(event.get("transcript") or "").strip(), item)
            self._release()
        elif kind == "conversation.item.input_audio_transcription.failed":
            item = event["item_id"]
            self._committed(item)
            message = redact(str((event.get("error") or {}).get("message") or "transcription failed"))
            logger.warning("the transcription of %s failed: %s", item, message)
            self._finals[item] = SpeechEvent("final", "", item, error=message)
            self._release()
        elif kind == "error":
            self._on_error(event.get("error") or {})
        self._maybe_end()

    def _on_error(self, error: dict[str, Any]) -> None:
        event_id, code = error.get("event_id"), error.get("code")
        message = redact(str(error.get("message") or "unknown error"))
        if event_id in self._pending_commits:
            self._pending_commits.remove(event_id)
            logger.debug("commit %s not taken (%s): %s", event_id, code, message)  # e.g. the VAD committed first
            return
        if event_id == _SESSION_EVENT or error.get("type") == "authentication_error":
            raise ModelError(f"OpenAI rejected the transcription session: {message}", recoverable=False, code=code)
        logger.warning("the OpenAI transcription service reported an error (%s): %s", code, message)

    def _committed(self, item: str) -> None:
        if item not in self._order and item not in self._released:
            self._order.append(item)

    def _release(self) -> None:
        while self._order and self._order[0] in self._finals:
            item = self._order.pop(0)
            final = self._finals.pop(item)
            self._released.add(item)
            self._texts.pop(item, None)
            if final.text or final.error or self.turn_detection is None or item in self._spoken:
                self._emit(final)
            # else: a commit of our own (at flush/end_input) that held only silence the server's VAD ignored

    def _maybe_end(self) -> None:
        if self._all_sent and not self._pending_commits and not self._order and not self.finished:
            self._finish()
