"""CartesiaTTS against a local server speaking Cartesia's websocket protocol, through the official SDK."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agentsession import TTS, AudioFrame, ModelError
from agentsession.testing import TTSContract
from agentsession_cartesia import CartesiaTTS, GenerationConfig, WordTimestamp
from agentsession_cartesia.fake import API_KEY, FakeCartesiaServer


class TestCartesiaTTSContract(TTSContract):
    @pytest.fixture(autouse=True)
    def _server(self, cartesia: FakeCartesiaServer) -> None:
        self.server = cartesia

    async def create_tts(self) -> TTS:
        return CartesiaTTS()


async def test_audio_starts_before_the_sentence_is_complete(cartesia: FakeCartesiaServer) -> None:
    tts = CartesiaTTS(model="sonic-3", voice_id="voice-1", language="fr", speed=1.2,
                      generation_config=GenerationConfig(emotion="calm"))
    stream = tts.stream()
    for piece in ["Bonjour", " tout", " le"]:
        stream.push_text(piece)
    frames = aiter(stream)
    first = await asyncio.wait_for(anext(frames), 5)  # the rest of the sentence has not even been produced yet
    assert isinstance(first, AudioFrame) and first.sample_rate == 24000
    stream.push_text(" monde.")
    stream.end_input()
    rest = [f async for f in frames]
    await tts.aclose()
    (context,) = cartesia.contexts
    assert [r["transcript"] for r in context.requests] == ["Bonjour ", "tout ", "le ", "monde.", ""]
    assert [r["continue"] for r in context.requests] == [True, True, True, True, False]
    req = context.requests[0]
    assert (req["model_id"], req["voice"], req["language"]) == ("sonic-3", {"mode": "id", "id": "voice-1"}, "fr")
    assert req["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
    assert req["generation_config"] == {"speed": 1.2, "emotion": "calm"}
    assert context.done
    seconds = sum(f.duration for f in [first, *rest])
    assert seconds == pytest.approx(cartesia.seconds_per_char * len("Bonjourtoutlemonde."), abs=0.01)


async def test_word_timestamps(cartesia: FakeCartesiaServer) -> None:
    heard: list[WordTimestamp] = []
    tts = CartesiaTTS(on_word=heard.append)
    [f async for f in tts.synthesize("Hello there friend.")]
    await tts.aclose()
    assert cartesia.contexts[0].requests[0]["add_timestamps"] is True
    assert [w.word for w in heard] == ["Hello", "there", "friend."]
    assert heard[0].start == 0.0 and heard[-1].end == pytest.approx(0.02 * len("Hello there friend."), abs=0.01)


async def test_closing_early_cancels_the_context_and_the_connection_goes_on(cartesia: FakeCartesiaServer) -> None:
    cartesia.hold_after_first_chunk = True
    tts = CartesiaTTS()
    frames = tts.synthesize("A long answer that the user interrupts after its first words.")
    await asyncio.wait_for(anext(frames), 5)
    await frames.aclose()  # barge-in
    (context,) = cartesia.contexts
    await asyncio.wait_for(context.cancelled.wait(), 5)  # Cartesia stops generating there
    assert len(context.chunks) == 1 and not context.done
    cartesia.hold_after_first_chunk = False
    assert [f async for f in tts.synthesize("Next.")]
    await tts.aclose()
    assert len(cartesia.connections) == 1 and tts.connections == 1  # one websocket for both


async def test_two_syntheses_at_once_share_the_connection(cartesia: FakeCartesiaServer) -> None:
    tts = CartesiaTTS()

    async def say(text: str) -> float:
        return sum(f.duration for f in [f async for f in tts.synthesize(text)])

    short, long = await asyncio.gather(say("Hi."), say("A much longer sentence."))
    await tts.aclose()
    assert short == pytest.approx(0.02 * 3, abs=0.01) and long == pytest.approx(0.02 * 23, abs=0.01)
    assert len(cartesia.connections) == 1 and len(cartesia.contexts) == 2


async def test_a_lost_connection_fails_the_synthesis_and_the_next_one_reconnects(cartesia: FakeCartesiaServer) -> None:
    cartesia.hold_after_first_chunk = True
    tts = CartesiaTTS()
    frames = tts.synthesize("Something long enough to be cut.")
    await asyncio.wait_for(anext(frames), 5)
    cartesia.drop_connections()
    with pytest.raises(ModelError) as failure:
        await asyncio.wait_for(anext(frames), 5)
    assert failure.value.recoverable
    await frames.aclose()
    cartesia.hold_after_first_chunk = False
    assert [f async for f in tts.synthesize("Back.")]
    await tts.aclose()
    assert len(cartesia.connections) == 2 and tts.connections == 2


async def test_a_missing_key_is_a_clear_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    tts = CartesiaTTS()
    with pytest.raises(ModelError, match="CARTESIA_API_KEY"):
        [f async for f in tts.synthesize("Hello.")]
    await tts.aclose()


async def test_a_wrong_key_is_refused_and_never_shown(cartesia: FakeCartesiaServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk_car_wrong_0123456789abcdefghij"
    caplog.set_level(logging.DEBUG)
    tts = CartesiaTTS(api_key=secret)
    with pytest.raises(ModelError) as failure:
        [f async for f in tts.synthesize("Hello.")]
    assert failure.value.code == "invalid_api_key" and "CARTESIA_API_KEY" in str(failure.value)
    await tts.aclose()
    assert secret not in caplog.text and secret not in repr(tts)
    assert API_KEY not in repr(CartesiaTTS(api_key=API_KEY))


def test_bad_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        CartesiaTTS(speed="warp")  # type: ignore[arg-type]


async def test_no_text_opens_no_context(cartesia: FakeCartesiaServer) -> None:
    """A response that is only a tool call streams no text: nothing is sent to Cartesia."""
    tts = CartesiaTTS()
    stream = tts.stream()
    stream.push_text("")
    stream.push_text(" ")
    stream.end_input()
    assert [f async for f in stream] == []
    assert [f async for f in tts.synthesize("Then this.")]
    await tts.aclose()
    assert [c.transcript for c in cartesia.contexts] == ["Then this."]



async def test_heard_text_is_the_words_spoken_so_far(cartesia: FakeCartesiaServer) -> None:
    tts = CartesiaTTS(word_timestamps=True)
    stream = tts.stream()
    stream.push_text("One two three four.")
    stream.end_input()
    seconds = sum(f.duration for f in [f async for f in stream])
    await tts.aclose()
    assert stream.heard_text(seconds) == "One two three four."
    assert stream.heard_text(0.0) == "" and stream.heard_text(seconds / 2) in ("One", "One two")
    assert CartesiaTTS(word_timestamps=False).stream().heard_text(1.0) is None


async def test_the_websocket_offers_no_compression(cartesia: FakeCartesiaServer) -> None:
    """websockets (under the SDK) offers permessage-deflate by default and the fake accepts it: inflating base64
    audio costs CPU for little, so the plugin does not offer it."""
    tts = CartesiaTTS()
    stream = tts.stream()
    stream.push_text("Hello.")
    stream.end_input()
    assert [f async for f in stream]
    conn = tts._conn
    assert conn is not None and conn._connection.protocol.extensions == []
    await tts.aclose()
