"""``OpenAILLM``, ``OpenAISTT`` and ``OpenAITTS``: OpenAI's HTTP APIs as the core's cascade interfaces."""

from __future__ import annotations

import io
import itertools
import wave
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from openai import AsyncOpenAI

from agentsession import (
    LLM,
    STT,
    TTS,
    AudioFrame,
    ChatContext,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    ToolCall,
    mask,
)

from ._client import make_client, refusals
from ._stt_stream import DEFAULT_STT_TURN_DETECTION, OpenAISpeechStream


class _OpenAIHTTP:
    """A lazily built ``AsyncOpenAI`` (the key is checked at first use, and never shown)."""

    _what = "OpenAI"

    def __init__(self, model: str, api_key: str | None, base_url: str | None) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = api_key
        self._client: AsyncOpenAI | None = None

    @property
    def client(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = make_client(self._api_key, self._what, self.base_url)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, api_key={mask(self._api_key)!r}, base_url={self.base_url!r})"


class OpenAILLM(_OpenAIHTTP, LLM):
    """Chat Completions, streamed, with tools. ``base_url`` points it at any compatible server."""

    _what = "OpenAILLM"

    def __init__(self, model: str = "gpt-4o-mini", *, api_key: str | None = None, base_url: str | None = None,
                 temperature: float | None = None, tool_choice: Literal["auto", "required", "none"] | None = None,
                 max_completion_tokens: int | None = None) -> None:
        """``tool_choice`` is sent with requests that offer tools; ``None`` settings are left to the API."""
        super().__init__(model, api_key, base_url)
        self.temperature = temperature
        self.tool_choice = tool_choice
        self.max_completion_tokens = max_completion_tokens

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": chat_messages(ctx), "stream": True}
        if tools:
            kwargs["tools"] = [{"type": "function", "function": tool.schema()} for tool in tools]
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_completion_tokens is not None:
            kwargs["max_completion_tokens"] = self.max_completion_tokens
        with refusals(self._what, "the OpenAI Chat Completions API"):
            stream = await self.client.chat.completions.create(**kwargs)
        calls: dict[int, dict[str, str]] = {}
        completion_id = ""
        async for chunk in stream:
            completion_id = completion_id or chunk.id
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    yield delta.content
                for part in delta.tool_calls or ():
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["name"] += part.function.name or ""
                        call["arguments"] += part.function.arguments or ""
        for _, call in sorted(calls.items()):
            # the completion's id; the cascade re-stamps it with the id of the response it is generating
            yield ToolCall(call["id"], call["name"], call["arguments"] or "{}", response_id=completion_id)


def chat_messages(ctx: ChatContext) -> list[dict[str, Any]]:
    """The history as Chat Completions messages: consecutive function calls become one assistant message
    with ``tool_calls``; calls without an output (and outputs without a call) are left out."""
    called = {i.call_id for i in ctx.items if isinstance(i, FunctionCall)}
    answered = {i.call_id for i in ctx.items if isinstance(i, FunctionCallOutput)}
    messages: list[dict[str, Any]] = []
    for item in ctx.items:
        if isinstance(item, ChatMessage):
            if item.text or item.role != "assistant":
                messages.append({"role": item.role, "content": item.text})
        elif isinstance(item, FunctionCall):
            if item.call_id not in answered:
                continue
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutput) and item.call_id in called:
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


class OpenAISTT(_OpenAIHTTP, STT):
    """Speech to text. ``transcribe`` sends one utterance to ``audio.transcriptions`` as a 16 kHz mono WAV;
    ``stream`` transcribes while the user speaks, over a Realtime transcription session (interim text,
    finals, and the service's own voice detection unless ``turn_detection=None``)."""

    _what = "OpenAISTT"
    sample_rate = 16000
    streaming = True

    def __init__(self, model: str = "gpt-4o-mini-transcribe", *, api_key: str | None = None,
                 base_url: str | None = None, language: str | None = None, prompt: str | None = None,
                 turn_detection: Mapping[str, Any] | None = DEFAULT_STT_TURN_DETECTION,
                 noise_reduction: Literal["near_field", "far_field"] | None = None) -> None:
        super().__init__(model, api_key, base_url)
        self.language = language
        self.prompt = prompt
        self.turn_detection = turn_detection
        self.noise_reduction = noise_reduction
        self._streams: set[OpenAISpeechStream] = set()
        self._stream_count = itertools.count()

    def stream(self, *, language: str | None = None) -> OpenAISpeechStream:
        """A live transcription over its own websocket; ``turn_detection=None`` leaves utterance ends to
        ``flush()`` (your VAD), otherwise the service's VAD commits them (and ``flush()`` still may)."""
        stream = OpenAISpeechStream(
            lambda: self.client, model=self.model, language=language or self.language, prompt=self.prompt,
            turn_detection=self.turn_detection, noise_reduction=self.noise_reduction,
            on_close=self._streams.discard, connection=next(self._stream_count))
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        await super().aclose()

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        kwargs: dict[str, Any] = {"model": self.model, "file": ("speech.wav", wav_bytes(audio), "audio/wav")}
        if language or self.language:
            kwargs["language"] = language or self.language
        if self.prompt:
            kwargs["prompt"] = self.prompt
        with refusals(self._what, "the OpenAI transcription API"):
            result = await self.client.audio.transcriptions.create(**kwargs)
        return str(result.text)


def wav_bytes(audio: AudioFrame) -> bytes:
    """A PCM16 WAV file holding ``audio``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(audio.channels)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(audio.to_bytes())
    return buffer.getvalue()


class OpenAITTS(_OpenAIHTTP, TTS):
    """``audio.speech`` streamed as raw 24 kHz PCM16 (``response_format="pcm"``)."""

    _what = "OpenAITTS"
    sample_rate = 24000

    def __init__(self, model: str = "gpt-4o-mini-tts", voice: str = "alloy", *, api_key: str | None = None,
                 base_url: str | None = None, instructions: str | None = None, speed: float | None = None,
                 response_format: Literal["pcm"] = "pcm") -> None:
        """``response_format`` is accepted as VideoSDK's examples pass it: the audio is streamed as raw PCM, so
        ``"pcm"`` is the only format."""
        if response_format != "pcm":
            raise ValueError(f"OpenAITTS streams raw PCM: response_format must be 'pcm', got {response_format!r}")
        super().__init__(model, api_key, base_url)
        self.voice = voice
        self.instructions = instructions
        self.speed = speed

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        kwargs: dict[str, Any] = {"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"}
        if self.instructions:
            kwargs["instructions"] = self.instructions
        if self.speed is not None:
            kwargs["speed"] = self.speed
        with refusals(self._what, "the OpenAI speech API"):
            async with self.client.audio.speech.with_streaming_response.create(**kwargs) as response:
                carry = b""
                async for chunk in response.iter_bytes():
                    data = carry + chunk
                    usable = len(data) - len(data) % 2
                    carry = data[usable:]
                    if usable:
                        yield AudioFrame.from_bytes(data[:usable], self.sample_rate)
