"""Core runs its own contract suites against its fakes and the parrot, as every plugin must."""

from __future__ import annotations

import re
import shutil
import tempfile
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np

from agentsession import (
    LLM,
    STT,
    TTS,
    VAD,
    AudioFrame,
    ChatContext,
    ChatMessage,
    EnergyVAD,
    FileTransport,
    FunctionCallOutput,
    FunctionTool,
    ParrotModel,
    RealtimeModel,
    ToolCall,
    Transport,
)
from agentsession.testing import (
    FakeRealtimeModel,
    FakeResponse,
    FakeToolCall,
    FakeTransport,
    LLMContract,
    RealtimeModelContract,
    STTContract,
    TransportContract,
    TTSContract,
    VADContract,
    tone,
)


class TestFakeTransport(TransportContract):
    async def create_transport(self) -> Transport:
        transport = FakeTransport()
        await transport.start()
        return transport

    async def send_user_audio(self, transport: Transport, audio: AudioFrame) -> None:
        assert isinstance(transport, FakeTransport)
        await transport.feed(audio, realtime=False)


class TestStereoFakeTransport(TestFakeTransport):
    async def create_transport(self) -> Transport:
        transport = FakeTransport(48000, channels=2)
        await transport.start()
        return transport


class TestFakeRealtimeModel(RealtimeModelContract):
    async def create_model(self) -> RealtimeModel:
        return FakeRealtimeModel(
            [FakeResponse("hi", audio=1.0), FakeResponse("hi again", audio=1.0)],
            default=FakeResponse(audio=0.4, tool_calls=[FakeToolCall("get_time")], then=FakeResponse("noon")),
        )

    async def make_it_call_tool(self, model: RealtimeModel, response_id: str) -> None:
        assert isinstance(model, FakeRealtimeModel)
        model.responses.clear()
        await model.send_text("What time is it?", response_id=response_id)


class TestParrotModel(RealtimeModelContract):
    async def create_model(self) -> RealtimeModel:
        return ParrotModel()

    async def make_it_call_tool(self, model: RealtimeModel, response_id: str) -> None:
        # the parrot has no language model: it cannot decide to call a tool; show the round trip by feeding
        # it the call the way a model would (its tool-result answer is then checked by the suite)
        from agentsession import ResponseDone, ToolCall

        model.channel.emit(ToolCall("call_1", "get_time", "{}", response_id=response_id))
        model.channel.emit(ResponseDone(response_id=response_id))


class EchoLLM(LLM):
    """Calls an offered tool the user names, answers a tool result with it, and echoes anything else."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        last = ctx.items[-1]
        if isinstance(last, FunctionCallOutput):
            words = f"The answer is {last.output}.".split(" ")
        else:
            assert isinstance(last, ChatMessage)
            for tool in tools:
                if re.search(rf"\b{re.escape(tool.name)}\b", last.text):
                    self.calls += 1
                    yield ToolCall(f"call_{self.calls}", tool.name, "{}", response_id=f"echo_{self.calls}")
                    return
            words = f"You said: {last.text}".split(" ")
        for i, word in enumerate(words):
            yield (" " if i else "") + word


class TestEchoLLM(LLMContract):
    async def create_llm(self) -> LLM:
        return EchoLLM()


class CountingSTT(STT):
    """Says how long the utterance was."""

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return f"{audio.duration:.2f} seconds of audio"


class ToneTTS(TTS):
    """A 100 ms tone per word."""

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        for _ in text.split():
            yield tone(0.1, self.sample_rate)


class TestCountingSTT(STTContract):
    async def create_stt(self) -> STT:
        return CountingSTT()


class TestToneTTS(TTSContract):
    async def create_tts(self) -> TTS:
        return ToneTTS()


class TestEnergyVAD(VADContract):
    def create_vad(self) -> VAD:
        return EnergyVAD()


class TestFileTransport(TransportContract):
    """File mode is a transport like the others: its input is the file, its output is paced in real time."""

    async def create_transport(self) -> Transport:
        folder = Path(tempfile.mkdtemp(prefix="agentsession-file-contract-"))
        user = np.concatenate([AudioFrame.silence(0.2, 48000).data, tone(0.6, 48000).data])
        with wave.open(str(folder / "in.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(48000)
            w.writeframes(user.tobytes())
        transport = FileTransport(folder / "in.wav", folder / "out.wav")
        await transport.start()
        return transport

    async def destroy_transport(self, transport: Transport) -> None:
        await transport.close()
        assert isinstance(transport, FileTransport)
        shutil.rmtree(transport.input_path.parent)

    async def send_user_audio(self, transport: Transport, audio: AudioFrame) -> None:
        """The user's audio is the file's: already there."""
