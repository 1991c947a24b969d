"""``GoogleLLM``, ``GoogleSTT`` and ``GoogleTTS``: the Gemini API as a cascade's providers, under VideoSDK's names
and constructor arguments (where they apply to the Gemini API)."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from google.genai import errors, types

from agentsession import STT, TTS, AudioFrame, ModelError
from agentsession.plugin import SUPPORTED_RATES, AudioConverter

from ._llm import GeminiLLM, ToolChoice
from ._shared import Credentials, api_error

DEFAULT_GOOGLE_LLM_MODEL = "gemini-2.5-flash-lite"
DEFAULT_STT_MODEL = "gemini-2.5-flash-lite"
DEFAULT_TTS_MODEL = "gemini-2.5-flash-preview-tts"
# Cloud Speech-to-Text models VideoSDK's GoogleSTT takes: not Gemini models
_CLOUD_STT_MODELS = {"latest_long", "latest_short", "long", "short", "telephony", "telephony_short",
                     "chirp", "chirp_2", "chirp_3", "medical_dictation", "medical_conversation"}
_RATE = re.compile(r"rate=(\d+)")


@dataclass
class VertexAIConfig:
    """VideoSDK's Vertex AI settings: ``None`` leaves them to ``GOOGLE_CLOUD_PROJECT``/``GOOGLE_CLOUD_LOCATION``."""

    project_id: str | None = None
    location: str | None = None


@dataclass
class GoogleVoiceConfig:
    """VideoSDK's voice settings. ``name`` is a Gemini voice (``"Kore"``, ``"Charon"``, ...); a Chirp 3 HD name
    (``"en-US-Chirp3-HD-Charon"``) means its Gemini voice (``"Charon"``). Gemini speech generation picks the
    language from the text and has no gender setting: ``languageCode`` and ``ssmlGender`` are not sent."""

    languageCode: str = "en-US"
    name: str = "en-US-Chirp3-HD-Charon"
    ssmlGender: str = "MALE"

    @property
    def gemini_voice(self) -> str:
        return self.name.rsplit("-", 1)[-1] if "chirp3-hd-" in self.name.lower() else self.name


def _credentials(owner: str, api_key: str | None, vertexai: bool, vertexai_config: VertexAIConfig | None,
                 http_options: types.HttpOptions | None, location: str | None = None) -> Credentials:
    config = vertexai_config or VertexAIConfig()
    return Credentials(owner, api_key=api_key, vertexai=vertexai, project=config.project_id,
                       location=config.location or location, http_options=http_options)


class GoogleLLM(GeminiLLM):
    """``GeminiLLM`` under VideoSDK's name, defaults (``gemini-2.5-flash-lite``, temperature 0.7, no thinking
    budget, ``tool_choice="auto"``) and ``vertexai_config``. A ``gemini-3`` model thinks at ``thinking_level``
    (default ``"low"``), as VideoSDK's does, and ignores ``thinking_budget``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_GOOGLE_LLM_MODEL,
        temperature: float | None = 0.7,
        tool_choice: ToolChoice | None = "auto",
        max_output_tokens: int | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        vertexai: bool = False,
        vertexai_config: VertexAIConfig | None = None,
        thinking_budget: int | None = 0,
        seed: int | None = None,
        safety_settings: Sequence[types.SafetySetting | dict[str, Any]] | None = None,
        http_options: types.HttpOptions | None = None,
        thinking_level: str | None = None,
        include_thoughts: bool | None = None,
    ) -> None:
        if "gemini-3" in model:
            thinking_budget, thinking_level = None, thinking_level or "low"
        config = vertexai_config or VertexAIConfig()
        super().__init__(
            model=model, api_key=api_key, vertexai=vertexai, project=config.project_id, location=config.location,
            temperature=temperature, http_options=http_options, tool_choice=tool_choice,
            max_output_tokens=max_output_tokens, top_p=top_p, top_k=top_k, presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty, seed=seed, safety_settings=safety_settings,
            thinking_budget=thinking_budget, thinking_level=thinking_level, include_thoughts=include_thoughts,
        )
        self.vertexai_config = config


class GoogleSTT(STT):
    """Speech to text with a Gemini model: each utterance goes to ``generateContent`` as a mono WAV at
    ``sample_rate`` with an instruction to transcribe it verbatim (in ``languages``; with punctuation unless
    ``punctuate=False``; profanity masked if ``profanity_filter``). ``prompt`` replaces the instruction.
    Not streaming: the cascade buffers each utterance its VAD cuts and sends it whole."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        languages: str | list[str] = "en-US",
        model: str = DEFAULT_STT_MODEL,
        sample_rate: int = 16000,
        punctuate: bool = True,
        profanity_filter: bool = False,
        location: str | None = None,
        vertexai: bool = False,
        vertexai_config: VertexAIConfig | None = None,
        prompt: str | None = None,
        http_options: types.HttpOptions | None = None,
    ) -> None:
        if model in _CLOUD_STT_MODELS:
            raise ValueError(f"GoogleSTT transcribes with a Gemini model (e.g. {DEFAULT_STT_MODEL!r}); {model!r} is a "
                             "Cloud Speech-to-Text model, which this plugin does not use")
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"sample_rate must be one of {sorted(SUPPORTED_RATES)}, got {sample_rate!r}")
        self.model = model
        self.languages = [languages] if isinstance(languages, str) else list(languages)
        self.sample_rate = sample_rate
        self.punctuate = punctuate
        self.profanity_filter = profanity_filter
        self.prompt = prompt or self._instruction()
        self._credentials = _credentials("GoogleSTT", api_key, vertexai, vertexai_config, http_options, location)

    def __repr__(self) -> str:
        return f"<GoogleSTT model={self.model!r} key={self._credentials!r}>"

    def _instruction(self) -> str:
        parts = [
            f"Transcribe the speech in this audio verbatim (language: {', '.join(self.languages)}).",
            "Reply with the transcript only, without comments, quotes or timestamps; reply with nothing if "
            "there is no speech.",
            "Punctuate it." if self.punctuate else "Do not add punctuation.",
        ]
        if self.profanity_filter:
            parts.append("Replace each profane word with its first letter followed by asterisks.")
        return " ".join(parts)

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        prompt = self.prompt if language is None else f"{self.prompt} The speech is in {language}."
        contents = [types.Content(role="user", parts=[
            types.Part(text=prompt), types.Part.from_bytes(data=_wav(audio.to_mono()), mime_type="audio/wav"),
        ])]
        config = types.GenerateContentConfig(temperature=0.0)
        try:
            response = await self._credentials.client().aio.models.generate_content(
                model=self.model, contents=contents, config=config)
        except errors.APIError as exc:
            raise api_error(exc) from None
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"Gemini transcription failed: {self._credentials.describe(exc)}",
                             recoverable=True) from None
        return (response.text or "").strip()

    async def aclose(self) -> None:
        await self._credentials.aclose()


def _wav(audio: AudioFrame) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(audio.to_bytes())
    return buffer.getvalue()


class GoogleTTS(TTS):
    """Gemini speech generation (``streamGenerateContent`` with the ``AUDIO`` modality): 24 kHz PCM16 as it
    arrives. ``voice_config.name`` is the voice; ``prompt`` is a style instruction said before the text
    (``"Say cheerfully"`` speaks ``"Say cheerfully: <text>"``). Speed and pitch are described in ``prompt``:
    Gemini speech generation has no numeric setting for them."""

    sample_rate = 24000

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_TTS_MODEL,
        voice_config: GoogleVoiceConfig | None = None,
        prompt: str | None = None,
        speed: float = 1.0,
        pitch: float = 0.0,
        response_format: Literal["pcm"] = "pcm",
        vertexai: bool = False,
        vertexai_config: VertexAIConfig | None = None,
        http_options: types.HttpOptions | None = None,
    ) -> None:
        if response_format != "pcm":
            raise ValueError(f"GoogleTTS streams raw PCM: response_format must be 'pcm', got {response_format!r}")
        if speed != 1.0 or pitch != 0.0:
            raise ValueError("Gemini speech generation has no speed or pitch setting: describe the delivery in "
                             "prompt= instead (e.g. prompt='Say quickly, in a low voice')")
        self.model = model
        self.voice_config = voice_config or GoogleVoiceConfig()
        self.prompt = prompt
        self._credentials = _credentials("GoogleTTS", api_key, vertexai, vertexai_config, http_options)

    def __repr__(self) -> str:
        return f"<GoogleTTS model={self.model!r} voice={self.voice_config.gemini_voice!r} key={self._credentials!r}>"

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        config = types.GenerateContentConfig(
            response_modalities=[types.Modality.AUDIO],
            speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice_config.gemini_voice))),
        )
        said = f"{self.prompt}: {text}" if self.prompt else text
        converter = AudioConverter(self.sample_rate)
        try:
            stream = await self._credentials.client().aio.models.generate_content_stream(
                model=self.model, contents=said, config=config)
            try:
                carry = b""
                async for chunk in stream:
                    for data, rate in _audio_parts(chunk):
                        data, carry = carry + data, b""
                        if len(data) % 2:
                            data, carry = data[:-1], data[-1:]
                        samples = np.frombuffer(data, "<i2").astype(np.int16).reshape(-1, 1)
                        for frame in converter.push_samples(samples, rate):
                            yield frame
                for frame in converter.flush():
                    yield frame
            finally:
                if isinstance(stream, AsyncGenerator):
                    await stream.aclose()
        except errors.APIError as exc:
            raise api_error(exc) from None
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"Gemini speech generation failed: {self._credentials.describe(exc)}",
                             recoverable=True) from None

    async def aclose(self) -> None:
        await self._credentials.aclose()


def _audio_parts(chunk: types.GenerateContentResponse) -> list[tuple[bytes, int]]:
    """The PCM16 bytes of ``chunk`` with their rate (``audio/L16;codec=pcm;rate=24000``)."""
    out: list[tuple[bytes, int]] = []
    for candidate in chunk.candidates or []:
        for part in (candidate.content.parts or []) if candidate.content else []:
            blob = part.inline_data
            if blob is None or not blob.data:
                continue
            mime = (blob.mime_type or "").lower()
            if not (mime.startswith("audio/l16") or "pcm" in mime):
                raise ModelError(f"Gemini sent audio as {blob.mime_type!r}, not PCM16", code="unexpected_audio")
            rate = _RATE.search(mime)
            out.append((blob.data, int(rate.group(1)) if rate else GoogleTTS.sample_rate))
        finish = candidate.finish_reason.value if candidate.finish_reason else ""
        if not out and finish not in ("", "STOP", "FINISH_REASON_UNSPECIFIED"):
            raise ModelError(f"Gemini stopped the speech ({finish})", recoverable=True, code=finish.lower())
    return out
