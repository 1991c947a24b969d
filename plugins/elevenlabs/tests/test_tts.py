"""ElevenLabsTTS over the multi-context websocket, against a local server speaking ElevenLabs' protocol."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from agentsession import ModelError
from agentsession.testing import TTSContract
from agentsession_elevenlabs import ElevenLabsTTS, TimedWord, VoiceSettings
from agentsession_elevenlabs.fake import API_KEY, FakeElevenLabs
from agentsession_elevenlabs.plugin import agentsession_models

SENTENCE = "Hello there, my friend. The weather in Paris is sunny and warm today, with a light breeze."


class TestTTSContract(TTSContract):
    @pytest.fixture(autouse=True)
    def _server(self, elevenlabs_server: FakeElevenLabs) -> None:
        self.server = elevenlabs_server

    async def create_tts(self) -> ElevenLabsTTS:
        return ElevenLabsTTS(api_key=API_KEY)  # the server from $ELEVENLABS_BASE_URL


async def test_audio_starts_before_the_sentence_is_complete(elevenlabs_server: FakeElevenLabs) -> None:
    tts = ElevenLabsTTS(api_key=API_KEY)
    stream = tts.stream()
    frames = aiter(stream)
    tokens = re.findall(r"\S+\s*", SENTENCE)
    sent = 0
    while len("".join(tokens[:sent])) < 60:  # as the LLM streams it, a token at a time: past the first 50 chars
        stream.push_text(tokens[sent])
        sent += 1
    first = await asyncio.wait_for(anext(frames), 5)  # while the rest of the sentence is still to come
    assert first.sample_rate == 24000 and first.channels == 1
    pushed = "".join(tokens[:sent])  # every token pushed so far goes out without waiting for the rest
    await asyncio.wait_for(elevenlabs_server.until(
        lambda: elevenlabs_server.contexts[stream.context_id].received == pushed), 5)
    for token in tokens[sent:]:
        stream.push_text(token)
    stream.end_input()
    rest = [f async for f in frames]
    context = elevenlabs_server.contexts[stream.context_id]
    assert context.received == SENTENCE + " "  # every word sent whole, once
    assert " ".join(context.generated) == SENTENCE
    audio = first.duration + sum(f.duration for f in rest)
    assert audio == pytest.approx(0.02 * len(SENTENCE), abs=0.05)
    assert [w.text for w in stream.words] == SENTENCE.split(" ")
    assert stream.words[0] == TimedWord("Hello", 0.0, pytest.approx(0.1))  # type: ignore[arg-type]
    assert stream.words[-1].end == pytest.approx(audio, abs=0.05)
    assert stream.heard_text(stream.words[3].end) == "Hello there, my friend."
    assert stream.heard_text(stream.words[3].end - 0.01) == "Hello there, my"  # a word half heard is not heard
    await stream.aclose()
    await tts.aclose()


async def test_closing_a_stream_early_closes_its_context_and_the_rest_is_never_generated(
    elevenlabs_server: FakeElevenLabs,
) -> None:
    tts = ElevenLabsTTS(api_key=API_KEY)
    stream = tts.stream()
    stream.push_text(SENTENCE + " ")  # generated at once: past the first 50 characters
    await asyncio.wait_for(anext(aiter(stream)), 5)
    more = "And there is much more to say, which nobody will hear. "
    stream.push_text(more)  # buffered by the service: short of the next 120
    await asyncio.wait_for(elevenlabs_server.until(
        lambda: elevenlabs_server.contexts[stream.context_id].received.endswith(more)), 5)
    await stream.aclose()  # a barge-in
    again = tts.stream()  # the same socket goes on with a new context
    again.push_text("Next.")
    again.end_input()
    assert [f async for f in again]
    (first, second) = elevenlabs_server.contexts.values()
    assert first.closed and first.dropped == more  # closed before it was generated: not billed
    assert first.generated == [SENTENCE]
    assert second.generated == ["Next."] and second.closed
    assert len(elevenlabs_server.connections) == 1
    await tts.aclose()


async def test_options_go_on_the_wire(elevenlabs_server: FakeElevenLabs) -> None:
    tts = ElevenLabsTTS(api_key=API_KEY, model="eleven_turbo_v2_5", voice="voice-123", speed=1.1,
                        response_format="pcm_16000", language="fr", auto_mode=True,
                        voice_settings=VoiceSettings(stability=0.3, similarity_boost=0.8, style=0.1,
                                                     use_speaker_boost=False))
    assert tts.sample_rate == 16000
    frames = [f async for f in tts.synthesize("Bonjour à tous.")]
    assert frames and {f.sample_rate for f in frames} == {16000}
    (connection,) = elevenlabs_server.connections
    assert connection.voice_id == "voice-123"
    assert connection.query["model_id"] == "eleven_turbo_v2_5"
    assert connection.query["output_format"] == "pcm_16000"
    assert (connection.query["language_code"], connection.query["auto_mode"]) == ("fr", "true")
    (context,) = elevenlabs_server.contexts.values()
    assert context.voice_settings == {"stability": 0.3, "similarity_boost": 0.8, "style": 0.1,
                                      "use_speaker_boost": False, "speed": 1.1}
    assert context.schedule == [50.0, 120.0, 160.0, 250.0]  # ours (a short text, flushed: none used up)
    await tts.aclose()


async def test_a_missing_key_names_the_variable_and_a_key_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, elevenlabs_server: FakeElevenLabs, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(ModelError, match="ELEVENLABS_API_KEY") as caught:
        [f async for f in ElevenLabsTTS().synthesize("Hi.")]
    assert caught.value.code == "missing_api_key"
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ELEVENLABS_API_KEY", API_KEY)
    tts = ElevenLabsTTS()
    assert [f async for f in tts.synthesize("Hi there.")]
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(tts) and API_KEY not in tts.url()
    await tts.aclose()
    with pytest.raises(ModelError, match="could not connect.*401.*check ELEVENLABS_API_KEY") as refused:
        [f async for f in ElevenLabsTTS(api_key="wrong-key").synthesize("Hi.")]
    assert not refused.value.recoverable


async def test_the_server_going_away_fails_the_synthesis_and_the_next_one_reconnects(
    elevenlabs_server: FakeElevenLabs,
) -> None:
    tts = ElevenLabsTTS(api_key=API_KEY)
    assert [f async for f in tts.synthesize("One.")]
    socket = tts._socket
    assert socket is not None
    stream = tts.stream()
    stream.push_text("Two words ")
    await asyncio.wait_for(elevenlabs_server.until(
        lambda: stream.context_id in elevenlabs_server.contexts
        and elevenlabs_server.contexts[stream.context_id].received == "Two words "), 5)
    await socket.close()  # the connection drops mid-synthesis
    with pytest.raises(ModelError, match="closed"):
        [f async for f in stream]
    await stream.aclose()
    assert [f async for f in tts.synthesize("Three.")]
    assert len(elevenlabs_server.connections) == 2
    await tts.aclose()


def test_bad_options_say_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="pcm_24000"):
        ElevenLabsTTS(api_key=API_KEY, response_format="mp3_44100_128")
    with pytest.raises(ValueError, match="0.7 and 1.2"):
        ElevenLabsTTS(api_key=API_KEY, speed=2.0)


def test_the_entry_point_builds_it_by_name() -> None:
    tts = agentsession_models()["elevenlabs-tts"](api_key=API_KEY, voice="v1")
    assert isinstance(tts, ElevenLabsTTS) and tts.voice == "v1" and tts.streaming


async def test_videosdk_switches_for_streaming_and_timestamps(elevenlabs_server: FakeElevenLabs) -> None:
    assert ElevenLabsTTS(api_key=API_KEY, enable_streaming=False).streaming is False  # the cascade sends sentences
    tts = ElevenLabsTTS(api_key=API_KEY, word_timestamps=False)
    stream = tts.stream()
    stream.push_text("No timings here.")
    stream.end_input()
    assert [f async for f in stream]
    assert stream.words == [] and stream.heard_text(10.0) is None  # the history is then cut in proportion
    assert elevenlabs_server.connections[0].query["sync_alignment"] == "false"
    await stream.aclose()
    await tts.aclose()


async def test_the_websocket_offers_no_compression(elevenlabs_server: FakeElevenLabs) -> None:
    """websockets offers permessage-deflate by default and the fake accepts it: inflating base64 audio costs CPU
    for little, so the plugin does not offer it."""
    tts = ElevenLabsTTS(api_key=API_KEY)
    stream = tts.stream()
    stream.push_text("Hello.")
    stream.end_input()
    assert [f async for f in stream]
    socket = tts._socket
    assert socket is not None and socket.protocol.extensions == []
    await tts.aclose()
