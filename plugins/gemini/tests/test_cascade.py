"""GoogleLLM, GoogleSTT and GoogleTTS against a local server that speaks the Gemini REST API, through the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from google.genai import types

from agentsession import AudioFrame, ChatContext, ModelError, ToolCall
from agentsession.testing import LLMContract, STTContract, TTSContract, tone
from agentsession_gemini import (
    GeminiLLM,
    GoogleLLM,
    GoogleSTT,
    GoogleTTS,
    GoogleVoiceConfig,
    VertexAIConfig,
    plugin,
)
from agentsession_gemini.fake_http import FakeGeminiHTTP

KEY = "google-cascade-key-0123456789"
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@pytest.fixture
async def http_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGeminiHTTP]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    async with FakeGeminiHTTP(KEY) as server:
        yield server
        assert server.protocol_errors == []


class OnFakeServer:
    server: FakeGeminiHTTP

    @pytest.fixture(autouse=True)
    def _server(self, http_server: FakeGeminiHTTP) -> None:
        self.server = http_server


class TestLLMContract(OnFakeServer, LLMContract):
    async def create_llm(self) -> GoogleLLM:
        return GoogleLLM(api_key=KEY, http_options=self.server.http_options())


class TestSTTContract(OnFakeServer, STTContract):
    async def create_stt(self) -> GoogleSTT:
        return GoogleSTT(api_key=KEY, http_options=self.server.http_options())


class TestTTSContract(OnFakeServer, TTSContract):
    async def create_tts(self) -> GoogleTTS:
        return GoogleTTS(api_key=KEY, http_options=self.server.http_options())


async def test_google_llm_is_gemini_llm_with_videosdk_defaults(http_server: FakeGeminiHTTP) -> None:
    llm = GoogleLLM(api_key=KEY, max_output_tokens=200, top_p=0.9, top_k=20, seed=7,
                    safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                    http_options=http_server.http_options())
    assert isinstance(llm, GeminiLLM) and KEY not in repr(llm)
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("user", "What time is it?")
    parts = [p async for p in llm.chat(ctx, tools=LLMContract.tools())]
    (call,) = parts
    assert isinstance(call, ToolCall) and call.name == "get_time"
    (req,) = http_server.requests
    assert req.model == "gemini-2.5-flash-lite" and req.method == "streamGenerateContent"
    gen = req.generation
    assert gen is not None and (gen.temperature, gen.max_output_tokens, gen.top_p, gen.top_k, gen.seed) == (
        0.7, 200, 0.9, 20, 7)
    assert gen.thinking_config is not None and gen.thinking_config.thinking_budget == 0
    assert req.tool_config is not None and req.tool_config.function_calling_config is not None
    assert req.tool_config.function_calling_config.mode == types.FunctionCallingConfigMode.AUTO
    assert [(s.category, s.threshold) for s in req.safety] == [
        (types.HarmCategory.HARM_CATEGORY_HARASSMENT, types.HarmBlockThreshold.BLOCK_NONE)]
    await llm.aclose()


async def test_gemini_3_thinks_at_a_level_and_tool_choice_maps(http_server: FakeGeminiHTTP) -> None:
    llm = GoogleLLM(api_key=KEY, model="gemini-3-flash-preview", tool_choice="required",
                    http_options=http_server.http_options())
    ctx = ChatContext()
    ctx.add_message("user", "Hello")
    assert "".join([str(p) async for p in llm.chat(ctx, tools=LLMContract.tools())]) == "You said: Hello"
    gen, config = http_server.requests[0].generation, http_server.requests[0].tool_config
    assert gen is not None and gen.thinking_config is not None
    assert gen.thinking_config.thinking_budget is None and gen.thinking_config.thinking_level is not None
    assert gen.thinking_config.thinking_level.value.lower() == "low"
    assert config is not None and config.function_calling_config is not None
    assert config.function_calling_config.mode == types.FunctionCallingConfigMode.ANY
    await llm.aclose()
    with pytest.raises(ValueError, match="tool_choice"):
        GoogleLLM(api_key=KEY, tool_choice="sometimes")  # type: ignore[arg-type]


async def test_stt_sends_the_utterance_as_wav_with_an_instruction(http_server: FakeGeminiHTTP) -> None:
    stt = GoogleSTT(api_key=KEY, languages=["en-US", "fr-FR"], profanity_filter=True,
                    http_options=http_server.http_options())
    assert await stt.transcribe(tone(0.5, 16000)) == "what is the weather in paris"
    assert await stt.transcribe(AudioFrame.silence(0.5, 16000)) == ""  # no voice, no words
    req = http_server.requests[0]
    assert req.method == "generateContent" and req.model == "gemini-2.5-flash-lite"
    assert req.headers["x-goog-api-key"] == KEY
    instruction = (req.contents[0].parts or [])[0].text or ""
    assert "en-US, fr-FR" in instruction and "asterisks" in instruction and "Punctuate" in instruction
    assert len(req.audio) == 2 * 8000  # 0.5 s of 16 kHz PCM16
    await stt.aclose()


def test_stt_refuses_cloud_speech_models_and_bad_rates() -> None:
    with pytest.raises(ValueError, match="Cloud Speech-to-Text"):
        GoogleSTT(api_key=KEY, model="latest_long")
    with pytest.raises(ValueError, match="sample_rate"):
        GoogleSTT(api_key=KEY, sample_rate=11025)


async def test_tts_uses_the_gemini_voice_and_style_prompt(http_server: FakeGeminiHTTP) -> None:
    tts = GoogleTTS(api_key=KEY, voice_config=GoogleVoiceConfig(name="en-US-Chirp3-HD-Aoede"),
                    prompt="Say cheerfully", http_options=http_server.http_options())
    frames = [f async for f in tts.synthesize("Have a wonderful day!")]
    said = "Say cheerfully: Have a wonderful day!"
    assert sum(f.duration for f in frames) == pytest.approx(0.02 * len(said), abs=0.021)
    (req,) = http_server.requests
    assert req.method == "streamGenerateContent" and req.model == "gemini-2.5-flash-preview-tts"
    assert [p.text for p in req.contents[0].parts or []] == [said]
    gen = req.generation
    assert gen is not None and gen.speech_config is not None and gen.speech_config.voice_config is not None
    voice = gen.speech_config.voice_config.prebuilt_voice_config
    assert voice is not None and voice.voice_name == "Aoede"
    assert "Aoede" in repr(tts) and KEY not in repr(tts)
    await tts.aclose()


async def test_tts_resamples_speech_at_another_rate(http_server: FakeGeminiHTTP) -> None:
    http_server.speech_rate = 16000
    tts = GoogleTTS(api_key=KEY, http_options=http_server.http_options())
    frames = [f async for f in tts.synthesize("Hello there.")]
    assert {f.sample_rate for f in frames} == {24000}
    assert sum(f.duration for f in frames) == pytest.approx(0.02 * len("Hello there."), abs=0.021)
    await tts.aclose()


async def test_tts_errors_are_model_errors_without_the_key(http_server: FakeGeminiHTTP) -> None:
    tts = GoogleTTS(api_key=KEY, model="gemini-2.5-flash", http_options=http_server.http_options())
    with pytest.raises(ModelError) as info:
        [f async for f in tts.synthesize("hi")]
    assert info.value.code == "400" and "modalities" in str(info.value) and KEY not in str(info.value)
    await tts.aclose()
    with pytest.raises(ValueError, match="prompt="):
        GoogleTTS(api_key=KEY, speed=1.2)


async def test_wrong_key_is_a_clear_error(http_server: FakeGeminiHTTP) -> None:
    stt = GoogleSTT(api_key="wrong-key-123456789", http_options=http_server.http_options())
    with pytest.raises(ModelError, match="API key not valid") as info:
        await stt.transcribe(tone(0.3, 16000))
    assert "wrong-key-123456789" not in str(info.value)
    await stt.aclose()


def test_missing_key_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for cls in (GoogleLLM, GoogleSTT, GoogleTTS):
        with pytest.raises(ModelError, match="GOOGLE_API_KEY"):
            cls()
    vertex = GoogleTTS(vertexai=True, vertexai_config=VertexAIConfig(project_id="p", location="europe-west4"))
    assert "vertex" in repr(vertex)


def test_models_hook_builds_the_cascade_classes() -> None:
    models = plugin.agentsession_models()
    assert isinstance(models["google-llm"](api_key=KEY), GoogleLLM)
    assert isinstance(models["google-stt"](api_key=KEY), GoogleSTT)
    assert isinstance(models["google-tts"](api_key=KEY), GoogleTTS)

