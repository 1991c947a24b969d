"""The model's audio read straight from a Gemini Live server message, for the messages that hold nothing else."""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

_MARK = "inlineData"
_MARK_BYTES = _MARK.encode()
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_CONTENT = frozenset({"modelTurn", "outputTranscription"})


@dataclass(frozen=True, slots=True)
class ServerAudio:
    """A message of the model's audio: the PCM and MIME type of each part, and the transcript of it that came
    in the same message (Gemini 3 models send both at once; ``""`` if none)."""

    chunks: list[tuple[bytes, str]]
    transcript: str


def server_audio(message: str | bytes) -> ServerAudio | None:
    """``message`` read if it is a ``serverContent`` whose ``modelTurn`` holds audio parts, with at most an
    ``outputTranscription`` beside it (what the server sends while the model speaks); ``None`` for any other
    message, and for one whose JSON or base64 is not strictly well formed: those are left to the SDK's read.

    The SDK reads the same message through its converter and pydantic models (~5x the cost, per message, of
    this); ``tests/test_server_audio.py`` holds the two to the same result."""
    if _MARK_BYTES not in message if isinstance(message, bytes) else _MARK not in message:
        return None
    try:
        body: Any = json.loads(message)
    except ValueError:
        return None
    if type(body) is not dict or body.keys() != {"serverContent"}:
        return None
    content = body["serverContent"]
    if type(content) is not dict or "modelTurn" not in content or not content.keys() <= _CONTENT:
        return None
    transcript = ""
    if "outputTranscription" in content:
        said = content["outputTranscription"]
        if type(said) is not dict or not said.keys() <= {"text", "finished"} or type(said.get("text", "")) is not str:
            return None
        transcript = said.get("text", "")
    turn = content["modelTurn"]
    if type(turn) is not dict or not turn.keys() <= {"parts", "role"}:
        return None
    parts = turn.get("parts")
    if type(parts) is not list or not parts:
        return None
    chunks: list[tuple[bytes, str]] = []
    for part in parts:
        if type(part) is not dict or part.keys() != {"inlineData"}:
            return None
        blob = part["inlineData"]
        if type(blob) is not dict or blob.keys() != {"mimeType", "data"}:
            return None
        mime, data = blob["mimeType"], blob["data"]
        if type(mime) is not str or not mime.startswith("audio/pcm") or type(data) is not str or not data:
            return None
        try:  # the API's base64, or the URL-safe alphabet (pydantic's, which the SDK also reads)
            raw = data.encode("ascii")
            pcm = binascii.a2b_base64(raw.translate(_URLSAFE) if b"-" in raw or b"_" in raw else raw,
                                      strict_mode=True)
        except (UnicodeEncodeError, binascii.Error):
            return None
        chunks.append((pcm, mime))
    return ServerAudio(chunks, transcript)
