"""``server_audio`` (the model's audio read straight from a server message) against the SDK's own read of the
same message, and the link taking such messages before the SDK does."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from google import genai
from google.genai import types
from google.genai.live import AsyncSession

from agentsession import AgentAudio, AgentTranscript, ChatContext, ModelOptions, PipelineEvent, ResponseDone
from agentsession.testing import read_events
from agentsession_gemini import GeminiRealtime
from agentsession_gemini._server_audio import server_audio
from agentsession_gemini.fake import FakeLiveServer

PCM = (np.arange(960, dtype=np.int16) * 37).tobytes()  # 20 ms at 24 kHz, bytes base64 turns into "+/" or "-_"
STD = base64.b64encode(PCM).decode()
URL = base64.urlsafe_b64encode(PCM).decode()
MIME = "audio/pcm;rate=24000"


def audio(*datas: str, role: bool = True, mime: str = MIME, said: dict[str, Any] | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {"parts": [{"inlineData": {"mimeType": mime, "data": d}} for d in datas]}
    if role:
        turn["role"] = "model"
    content: dict[str, Any] = {"modelTurn": turn}
    if said is not None:
        content["outputTranscription"] = said
    return {"serverContent": content}


def fake_server_audio() -> dict[str, Any]:
    """The message as the fake server sends it (pydantic's dump of the SDK's own type: URL-safe base64)."""
    blob = types.Blob(data=PCM, mime_type=MIME)
    message = types.LiveServerMessage(server_content=types.LiveServerContent(
        model_turn=types.Content(role="model", parts=[types.Part(inline_data=blob)]),
        output_transcription=types.Transcription(text="word0 ")))
    dumped: dict[str, Any] = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


AUDIO = {
    "standard base64": audio(STD),
    "URL-safe base64": audio(URL),
    "no role": audio(STD, role=False),
    "two parts": audio(STD, URL),
    "another rate": audio(STD, mime="audio/pcm;rate=16000"),
    "with its transcript (Gemini 3)": audio(STD, said={"text": "Hello"}),
    "with the transcript's end": audio(URL, said={"text": " there.", "finished": True}),
    "with an empty transcript": audio(STD, said={"text": ""}),
    "with a transcript without text": audio(STD, said={}),
    "as the fake sends it": fake_server_audio(),
}

NOT_AUDIO = {  # left to the SDK: anything else in the message, or anything not strictly well formed
    "with the user's transcript": {"serverContent": {**audio(STD)["serverContent"],
                                                     "inputTranscription": {"text": "hi"}}},
    "with the turn's end": {"serverContent": {**audio(STD)["serverContent"], "turnComplete": True}},
    "a transcript of another shape": audio(STD, said={"text": "hi", "language": "en"}),
    "a transcript not a string": audio(STD, said={"text": 3}),
    "with usage": {**audio(STD), "usageMetadata": {"totalTokenCount": 3}},
    "a text part": {"serverContent": {"modelTurn": {"parts": [{"text": "hi"}]}}},
    "audio and text": {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": MIME, "data": STD}},
                                                                  {"text": "hi"}]}}},
    "not audio": audio(STD, mime="image/png"),
    "no parts": {"serverContent": {"modelTurn": {"parts": []}}},
    "empty data": audio(""),
    "unpadded base64": audio(STD.rstrip("=") + "A"),
    "base64 with a newline": audio(STD[:40] + "\n" + STD[40:]),
    "data not a string": {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": MIME, "data": 7}}]}}},
    "turn complete": {"serverContent": {"turnComplete": True}},
    "inlineData in a transcript": {"serverContent": {"outputTranscription": {"text": "inlineData"}}},
    "not JSON": "inlineData {",
}


class Socket:
    """What ``AsyncSession`` reads from: one message."""

    def __init__(self, message: str | bytes) -> None:
        self.message = message

    async def recv(self, decode: bool | None = None) -> str | bytes:
        return self.message


async def sdk_read(message: str | bytes) -> types.LiveServerMessage:
    client = genai.Client(api_key="test-key-0123456789")
    session = AsyncSession(api_client=client._api_client, websocket=Socket(message))  # type: ignore[arg-type]
    async for read in session.receive():
        return read
    raise AssertionError("the SDK read nothing")


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
@pytest.mark.parametrize("name", list(AUDIO))
async def test_audio_messages_read_as_the_sdk_reads_them(name: str, as_bytes: bool) -> None:
    text = json.dumps(AUDIO[name])
    message: str | bytes = text.encode() if as_bytes else text
    ours = server_audio(message)
    read = await sdk_read(message)
    content = read.server_content
    assert content is not None and content.model_turn is not None
    parts = content.model_turn.parts or []
    theirs = [(p.inline_data.data, p.inline_data.mime_type) for p in parts if p.inline_data is not None]
    assert ours is not None and ours.chunks == theirs and all(pcm == PCM for pcm, _ in ours.chunks)
    said = content.output_transcription
    assert ours.transcript == (said.text or "" if said is not None else "")
    assert content.model_dump(exclude_none=True).keys() <= {"model_turn", "output_transcription"}


@pytest.mark.parametrize("name", list(NOT_AUDIO))
def test_other_messages_are_left_to_the_sdk(name: str) -> None:
    sample = NOT_AUDIO[name]
    message = sample if isinstance(sample, str) else json.dumps(sample)
    assert server_audio(message) is None
    assert server_audio(message.encode()) is None


async def one_answer() -> list[PipelineEvent]:
    """The events of one answer (``r1``), from a model over a fresh fake server, up to its ``ResponseDone``."""
    async with FakeLiveServer() as server:
        model = GeminiRealtime(api_key="test-key-0123456789abcdef", http_options=server.http_options())
        await model.start(ModelOptions("You are a test agent.", [], ChatContext()))
        try:
            await model.reply(response_id="r1")
            return await read_events(model, lambda e: isinstance(e, ResponseDone))
        finally:
            await model.close()


async def test_the_link_takes_the_model_audio_before_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the fake server: every audio message is taken by the link, none reaches the SDK's read, and the
    answer is the same (order, bytes) as the test through the SDK expects (``test_realtime.py``)."""
    taken: list[bool] = []
    sdk_saw_audio: list[types.LiveServerMessage] = []
    inline, on_message = GeminiRealtime._inline_audio, GeminiRealtime._on_message

    def counting(self: GeminiRealtime, message: str | bytes) -> bool:
        took = inline(self, message)
        taken.append(took)
        return took

    def watching(self: GeminiRealtime, conn: Any, message: types.LiveServerMessage) -> None:
        content = message.server_content
        if content is not None and content.model_turn is not None:
            sdk_saw_audio.append(message)
        on_message(self, conn, message)

    monkeypatch.setattr(GeminiRealtime, "_inline_audio", counting)
    monkeypatch.setattr(GeminiRealtime, "_on_message", watching)
    events = await one_answer()
    frames = [e.frame for e in events if isinstance(e, AgentAudio)]
    assert len(frames) == 5 and sum(taken) == 5 and sdk_saw_audio == []
    assert all(e.response_id == "r1" for e in events if isinstance(e, AgentAudio))
    assert sum(f.duration for f in frames) == pytest.approx(5 * 0.04)
    said = [(e.text, e.final) for e in events if isinstance(e, AgentTranscript)]
    assert said == [(f"word{i} ", False) for i in range(5)] + [("word0 word1 word2 word3 word4 ", True)]
    kinds = [type(e).__name__ for e in events]  # each chunk's audio, then its transcript, as the SDK's read gives
    assert kinds[:10] == ["AgentAudio", "AgentTranscript"] * 5


async def test_a_failure_handling_an_audio_message_is_logged_and_the_link_reads_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    on_audio, failed = GeminiRealtime._on_audio, list[bool]()

    def failing_once(self: GeminiRealtime, data: bytes, mime: str) -> None:
        if not failed:
            failed.append(True)
            raise RuntimeError("a bug handling the first chunk")
        on_audio(self, data, mime)

    monkeypatch.setattr(GeminiRealtime, "_on_audio", failing_once)
    events = await one_answer()
    assert failed and "handling the model's audio failed" in caplog.text
    assert len([e for e in events if isinstance(e, AgentAudio)]) == 4  # the other four chunks, in the same answer
    assert not any(type(e).__name__ == "Reconnecting" for e in events)
