"""Providers written against VideoSDK 1.0's base classes run in our cascade unchanged: the code of
``docs/custom-providers.md`` is run here, in a session, and each adapter is checked on its own."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentsession import (
    LLM,
    TTS,
    AgentSession,
    AudioFrame,
    ChatContext,
    ChatRole,
    LLMResponse,
    ToolCall,
)
from agentsession.testing import FakeTransport, tone, virtual_clock
from core_helpers import settle
from test_session_states import ToolAgent

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-providers.md"


def doc_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def utterance(seconds: float) -> AudioFrame:
    silence = np.zeros((int(0.3 * 16000), 1), np.int16)
    return AudioFrame(np.concatenate([silence, tone(seconds, 16000, 300).data, silence, silence, silence]), 16000)


@virtual_clock
async def test_the_documented_videosdk_style_providers_run_a_spoken_turn_with_a_tool() -> None:
    doc = doc_namespace()
    pipeline = doc["pipeline"]
    tts = pipeline.tts
    agent = ToolAgent()
    agent.release.set()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(agent, pipeline)
    heard: list[tuple[str, bool]] = []
    session.on("user_transcript", lambda d: heard.append((d["text"], d["final"])))
    await session.start(transport=transport)
    try:
        await transport.feed(utterance(1.0))
        await settle(10)
        assert ("What is the weather?", True) in heard and ("What", False) in heard  # STT final and interim
        assert agent.calls == ["Paris"]  # the LLMResponse's function_call ran the agent's tool
        schema = pipeline.llm.schemas[0]
        assert (schema["type"], schema["name"], schema["parameters"]["required"]) == ("function", "lookup", ["city"])
        assert tts.spoken == ["You asked: What is the weather?.", "The lookup said {\"city\": \"Paris\", \"temp\": 21}."]
        assert transport.output.shape[0] / 24000 == pytest.approx(0.01 * sum(len(t) for t in tts.spoken), abs=0.1)
    finally:
        await session.close()
        await transport.close()


async def test_llm_responses_become_text_and_tool_calls() -> None:
    class JSONTextLLM(LLM):
        async def chat(self, messages: ChatContext, tools: Any = None, **kwargs: Any) -> Any:
            assert isinstance(tools, list)
            yield LLMResponse(content="Hi ", role=ChatRole.ASSISTANT)
            yield LLMResponse(content="", role=ChatRole.ASSISTANT, metadata={"usage": {"total_tokens": 3}})
            yield LLMResponse(content="", role=ChatRole.ASSISTANT,
                              metadata={"function_call": {"name": "f", "arguments": '{"a": 1}', "call_id": "c9"}})

    items = [item async for item in JSONTextLLM().chat(ChatContext(), tools=())]
    assert items == ["Hi ", ToolCall("c9", "f", '{"a": 1}', response_id="")]


async def test_a_videosdk_tts_that_schedules_its_writes_loses_nothing_and_is_interrupted() -> None:
    interrupted: list[bool] = []

    class TaskTTS(TTS):
        def __init__(self) -> None:
            super().__init__(sample_rate=16000, num_channels=2)

        async def synthesize(self, text: Any, voice_id: Any = None, **kwargs: Any) -> None:
            for n in range(3):  # VideoSDK's OpenAI TTS schedules each write as a task it never awaits
                asyncio.create_task(self.audio_track.add_new_bytes(bytes([n]) * 8))
            if text == "long":
                await asyncio.Event().wait()

        async def interrupt(self) -> None:
            interrupted.append(True)

    frames = [f async for f in TaskTTS().synthesize("short")]
    assert sum(f.samples_per_channel for f in frames) == 6 and all(f.channels == 2 for f in frames)
    assert frames[0].sample_rate == 16000
    stream = TaskTTS().synthesize("long")
    assert (await anext(stream)).samples_per_channel >= 1
    await stream.aclose()  # the cascade stops a cut-off answer so
    assert interrupted == [True]


async def test_a_videosdk_stt_gets_48khz_stereo_bytes_and_its_failure_ends_the_stream() -> None:
    from agentsession import STT

    class Failing(STT):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []

        async def process_audio(self, audio_frames: bytes, language: str | None = None, **kwargs: Any) -> None:
            self.sizes.append(len(audio_frames))
            if len(self.sizes) == 2:
                raise RuntimeError("provider closed the socket")

    stt = Failing()
    assert stt.streaming and (stt.sample_rate, stt.num_channels) == (48000, 2)  # type: ignore[attr-defined]
    stream = stt.stream()
    stream.push_audio(tone(0.1, 16000))  # two 20 ms frames out whatever the resampler holds back (soxr: ~17 ms)
    with pytest.raises(RuntimeError, match="closed the socket"):
        async for _ in stream:
            pass
    assert stt.sizes == [960 * 2 * 2, 960 * 2 * 2]  # 20 ms at 48 kHz, 2 channels, 2 bytes
    await stream.aclose()


def test_tool_helpers_of_videosdk() -> None:
    from agentsession import function_tool, get_tool_info, is_function_tool

    @function_tool
    async def lookup(city: str) -> str:
        """Look a city up.

        Args:
            city: its name
        """
        return city

    info = get_tool_info(lookup)
    assert (info.name, info.description) == ("lookup", "Look a city up.")
    assert info.parameters_schema is not None and info.parameters_schema["properties"]["city"]["description"] == "its name"
    assert is_function_tool(lookup) and not is_function_tool(print)
    with pytest.raises(ValueError, match="not a function tool"):
        get_tool_info(print)


async def test_a_videosdk_vad_reports_starts_and_ends_and_leaves_no_task_behind(caplog: pytest.LogCaptureFixture) -> None:
    from agentsession import VAD, VADData, VADEventType, VADResponse

    class Threshold(VAD):
        def __init__(self) -> None:
            super().__init__(sample_rate=16000)
            self.speaking = False
            self.frames = 0

        async def process_audio(self, audio_frames: bytes, **kwargs: Any) -> None:
            self.frames += 1
            if self.frames == 3:
                raise RuntimeError("one bad frame")
            loud = bool(np.abs(np.frombuffer(audio_frames, np.int16)).mean() > 500)
            if loud != self.speaking:
                self.speaking = loud
                kind = VADEventType.START_OF_SPEECH if loud else VADEventType.END_OF_SPEECH
                await self._vad_callback(VADResponse(event_type=kind, data=VADData(is_speech=loud)))

    vad = Threshold()
    audio = utterance(0.5)
    events = []
    for start in range(0, audio.data.shape[0], 320):
        events += vad.push(AudioFrame(audio.data[start:start + 320], 16000))
        await asyncio.sleep(0)
    for _ in range(3):  # the last frame's event comes with the next push
        events += vad.push(AudioFrame(np.zeros((320, 1), np.int16), 16000))
        await asyncio.sleep(0)
    assert [e.kind for e in events] == ["start", "end"]
    assert events[0].position == pytest.approx(0.3, abs=0.03) and events[1].position == pytest.approx(0.8, abs=0.03)
    assert "one bad frame" in caplog.text
    worker = vad.__dict__["_agentsession_adapter"]._worker
    await asyncio.sleep(0)
    assert worker.done()  # nothing runs once the VAD has had all the audio


async def test_segment_text_cuts_streamed_text_for_a_tts() -> None:
    from agentsession import FlushMarker, segment_text

    async def chunks(*parts: Any) -> Any:
        for part in parts:
            yield part

    assert [s async for s in segment_text(chunks("Hello the", "re. How", FlushMarker(), "", " are you? Fine"))] == [
        "Hello there.", "How are you?", "Fine"]
    assert [s async for s in segment_text("a, b", keep_delimiter=False)] == ["a", "b"]
    words = [f"w{n} " for n in range(30)]  # no delimiter: cut at a space once 2 * min_words words are waiting
    pieces = [s async for s in segment_text(chunks(*words), min_words=5)]
    assert " ".join(pieces) == "".join(words).strip() and len(pieces) >= 3
    assert all(len(p.split()) <= 10 for p in pieces)
