"""Cassettes: a session's provider traffic and user audio, recorded once and played back offline (``replay``).

A cassette is a folder ``<recording name>.cassette/``:

- ``cassette.json``: ``{"version": 1, "links": [...], "user_audio_start": s, "sample_rate": hz, "log": [...]}``;
  ``log`` is the conversation as the session saw it (:class:`ConversationLog`), which a replay is compared with.
- ``traffic.jsonl``: one line per message a provider link sent or received: ``{"t": s, "link": name, "conn": n,
  "dir": "sent"|"received", "msg": <the JSON message>}`` (``"text"`` instead of ``"msg"`` for a message that is
  not JSON; ``"binary": true`` when it came as a binary frame). Long base64 strings (audio) are moved to
  ``audio.bin`` and stand as ``{"$audio": [offset, size]}``; the other strings have their secrets masked.
- ``user.wav``: the user's audio as it reached the session (``user_audio``), 16-bit mono, from its start.
- ``recording.jsonl``: a copy of the recorder's recording (``agentsession report`` reads a cassette through it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import shutil
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._chat import ChatMessage
from ._ports import SessionView
from ._secrets import redact

#: the cassette format's version (``cassette.json``'s ``version``)
CASSETTE_VERSION = 1
SUFFIX = ".cassette"
#: strings at least this long that are base64 are audio (or other binary): kept in ``audio.bin``
_BINARY_MIN = 256
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _compact(value: Any, blob: bytearray, base: int) -> Any:
    """``value`` with long base64 strings moved into ``blob`` (``audio.bin`` from offset ``base``) and the other
    strings' secrets masked."""
    if isinstance(value, str):
        if len(value) >= _BINARY_MIN and len(value) % 4 == 0 and _BASE64.fullmatch(value):
            data = binascii.a2b_base64(value)
            offset = base + len(blob)
            blob += data
            return {"$audio": [offset, len(data)]}
        return redact(value)
    if isinstance(value, dict):
        return {k: _compact(v, blob, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v, blob, base) for v in value]
    return value


def _expand(value: Any, blob: bytes) -> Any:
    """The inverse of :func:`_compact` (the audio back as base64)."""
    if isinstance(value, dict):
        ref = value.get("$audio")
        if ref is not None and len(value) == 1:
            offset, size = ref
            return base64.b64encode(blob[offset:offset + size]).decode("ascii")
        return {k: _expand(v, blob) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, blob) for v in value]
    return value


@dataclass
class TrafficRecord:
    """One message of a provider link: when (seconds since the session started), which link and connection, which
    way, and the message (a JSON value, or text)."""

    t: float
    link: str
    conn: int
    dir: Literal["sent", "received"]
    msg: Any
    binary: bool = False  # it came as a binary frame
    is_json: bool = True  # ``msg`` is a JSON value (else the message's text)


class ConversationLog:
    """What a session did, as a replay compares it: transcripts, tool calls, agent states, interruptions.

    ``attach(session)`` subscribes to its events; ``entries`` are ``{"t": s, "kind": ..., ...}`` in order.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._t0: float | None = None
        self._cuts: set[str] = set()

    def _now(self) -> float:
        now = asyncio.get_running_loop().time()
        if self._t0 is None:
            self._t0 = now
        return round(now - self._t0, 3)

    def add(self, kind: str, **data: Any) -> None:
        self.entries.append({"t": self._now(), "kind": kind, **data})

    def attach(self, session: SessionView) -> None:
        self._now()

        def transcript(kind: str) -> Any:
            return lambda d: self.add(kind, text=d["text"]) if d.get("final") else None

        def tool(d: Any) -> None:
            self.add("tool_call", name=d["name"], arguments=_json_or_text(d["arguments"]),
                     result=_json_or_text(redact(d["result"])), is_error=d["is_error"])

        def cut(d: Any) -> None:
            if not d.get("interrupted"):
                return
            for item in reversed(session.history.items):
                if isinstance(item, ChatMessage) and item.role == "assistant":
                    if item.interrupted and item.id not in self._cuts:
                        self._cuts.add(item.id)
                        self.add("interrupted", text=item.text, heard=round(item.audio_duration or 0.0, 3))
                    return

        session.on("user_transcript", transcript("user_transcript"))
        session.on("agent_transcript", transcript("agent_transcript"))
        session.on("function_tool_called", tool)
        session.on("agent_state_changed", lambda d: self.add("agent_state", state=d["state"].value))
        session.on("metrics_collected", cut)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class CassetteWriter:
    """Records a session's cassette (see the module's docstring); a ``LinkTap`` for its provider links.

    Made before the session's pipeline starts (what the links send while connecting is kept in memory), it
    writes to ``path`` from :meth:`open` on, as the session goes; :meth:`close` (thread-safe, idempotent) writes
    ``cassette.json``, so a session that never closed (a killed process) leaves no cassette that loads.
    """

    def __init__(self, session: SessionView) -> None:
        self.session = session
        self.path: Path | None = None
        self.log = ConversationLog()
        self._t0 = asyncio.get_running_loop().time()
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._traffic: Any = None
        self._blob: Any = None  # audio.bin, once open
        self._pending_blob = bytearray()  # audio.bin's bytes from before open
        self._blob_size = 0
        self._audio: Any = None
        self._rate: int | None = None
        self._audio_start: float | None = None
        self._links: list[str] = []
        self._closed = False

    def link_message(self, link: str, connection: int, direction: Literal["sent", "received"],
                     message: str | bytes) -> None:
        t = round(asyncio.get_running_loop().time() - self._t0, 6)
        binary = isinstance(message, bytes)
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        record: dict[str, Any] = {"t": t, "link": link, "conn": connection, "dir": direction}
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = record["text"] = redact(text)
            is_json = False
        else:
            is_json = True
        if binary:
            record["binary"] = True
        with self._lock:
            if self._closed:
                return
            if link not in self._links:
                self._links.append(link)
            if is_json:
                data = bytearray()
                record["msg"] = _compact(value, data, self._blob_size)
                self._blob_size += len(data)
                if self._blob is None:
                    self._pending_blob += data
                else:
                    self._blob.write(data)
            line = json.dumps(record, ensure_ascii=False) + "\n"
            if self._traffic is None:
                self._pending.append(line)
            else:
                self._traffic.write(line)

    def open(self, path: str | Path) -> None:
        """Start writing the cassette to the folder ``path`` (made, or emptied), and follow the session."""
        folder = Path(path)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with self._lock:
            self.path = folder
            self._traffic = (folder / "traffic.jsonl").open("w", encoding="utf-8")
            self._traffic.writelines(self._pending)
            self._pending.clear()
            self._blob = (folder / "audio.bin").open("wb")
            self._blob.write(self._pending_blob)
            self._pending_blob = bytearray()
        self.log.attach(self.session)
        self.session.on("user_audio", self._on_user_audio)

    def _on_user_audio(self, data: Any) -> None:
        frame = data["frame"]
        with self._lock:
            if self._closed or self.path is None:
                return
            if self._audio is None:
                self._rate, self._audio_start = frame.sample_rate, float(data["at"])
                self._audio = wave.open(str(self.path / "user.wav"), "wb")
                self._audio.setnchannels(1)
                self._audio.setsampwidth(2)
                self._audio.setframerate(frame.sample_rate)
            self._audio.writeframes(frame.to_mono().to_bytes())

    def close(self, recording: str | Path | None = None) -> None:
        """Finish the cassette (``recording``: the recorder's file, copied in). Idempotent, thread-safe."""
        with self._lock:
            if self._closed or self.path is None:
                self._closed = True
                return
            self._closed = True
            self._traffic.close()
            self._blob.close()
            if self._audio is not None:
                self._audio.close()
            meta = {"version": CASSETTE_VERSION, "links": self._links, "user_audio_start": self._audio_start or 0.0,
                    "sample_rate": self._rate, "log": self.log.entries}
            (self.path / "cassette.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")
        if recording is not None and Path(recording).exists():
            shutil.copyfile(recording, self.path / "recording.jsonl")


@dataclass
class Cassette:
    """A cassette read back: its traffic by link and connection, the user's audio and the conversation log."""

    path: Path
    links: list[str]
    traffic: list[TrafficRecord]
    log: list[dict[str, Any]]
    user_audio_start: float = 0.0
    sample_rate: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read the cassette at ``path`` (its folder, or its ``cassette.json``); a ``ValueError`` saying what is
        wrong otherwise."""
        folder = Path(path)
        if folder.is_file() and folder.name == "cassette.json":
            folder = folder.parent
        meta_path = folder / "cassette.json"
        if not meta_path.is_file():
            raise ValueError(f"{path} is not a cassette (no {meta_path.name} in it): record one with "
                             "AGENTSESSION_RECORD=1 and agentsession-recorder installed")
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except ValueError as exc:
            raise ValueError(f"{meta_path} is damaged: {exc}") from None
        version = meta.get("version")
        if version != CASSETTE_VERSION:
            raise ValueError(f"{path} is a version {version} cassette; this agentsession reads version "
                             f"{CASSETTE_VERSION}: record it again")
        blob_path = folder / "audio.bin"
        blob = blob_path.read_bytes() if blob_path.exists() else b""
        traffic: list[TrafficRecord] = []
        for n, line in enumerate((folder / "traffic.jsonl").read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                is_json = "msg" in raw
                record = TrafficRecord(float(raw["t"]), raw["link"], int(raw["conn"]), raw["dir"],
                                       _expand(raw["msg"], blob) if is_json else raw["text"],
                                       bool(raw.get("binary")), is_json)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{folder / 'traffic.jsonl'} line {n} is damaged: {exc}") from None
            traffic.append(record)
        return cls(folder, list(meta.get("links") or []), traffic, list(meta.get("log") or []),
                   float(meta.get("user_audio_start") or 0.0), meta.get("sample_rate"), meta)

    def connections(self, link: str) -> list[list[TrafficRecord]]:
        """``link``'s traffic, one list per connection, in order."""
        by_conn: dict[int, list[TrafficRecord]] = {}
        for record in self.traffic:
            if record.link == link:
                by_conn.setdefault(record.conn, []).append(record)
        return [by_conn[k] for k in sorted(by_conn)]

    def write_user_audio(self, path: str | Path) -> Path:
        """The user's audio as a WAV file at ``path``, from the session's start (silence before it began)."""
        source = self.path / "user.wav"
        out = Path(path)
        if not source.exists():
            raise ValueError(f"{self.path} holds no user audio (user.wav): the session heard nothing to replay")
        with wave.open(str(source), "rb") as r:
            rate = r.getframerate()
            pcm = r.readframes(r.getnframes())
        lead = np.zeros(int(round(self.user_audio_start * rate)), "<i2").tobytes()
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(lead + pcm)
        return out
