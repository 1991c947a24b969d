"""The pipeline's "stt" hook gets the user's audio as VideoSDK's hooks do: bytes (mono PCM16), one utterance an
item; ``run_stt`` transcribes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from test_cascade import FakeLLM, FakeSTT, FakeTTS, utterance

from agentsession import AgentSession, Pipeline, run_stt
from agentsession.testing import FakeTransport, virtual_clock
from core_helpers import QuietAgent, settle


@virtual_clock
async def test_the_stt_hook_gets_bytes_and_run_stt_transcribes_them() -> None:
    stt, llm, tts = FakeSTT("working hours"), FakeLLM(), FakeTTS()
    pipeline = Pipeline(stt=stt, llm=llm, tts=tts)
    seen: list[tuple[type, int]] = []

    @pipeline.on("stt")
    async def stt_hook(audio_stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async def audio_phase() -> AsyncIterator[Any]:
            async for audio in audio_stream:
                seen.append((type(audio), len(audio)))
                if len(audio) < 300:  # VideoSDK's example: bytes, so a byte count
                    continue
                yield audio

        async for event in run_stt(audio_phase()):
            event.data.text = event.data.text.replace("working hours", "office hours")
            yield event

    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), pipeline)
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    ((kind, size),) = seen
    assert kind is bytes and size == 2 * round(stt.heard[0] * 16000)  # the utterance, mono 16-bit, at its rate
    assert stt.heard[0] > 1.0  # run_stt read the bytes at that rate: the whole utterance was transcribed
    user = [i for i in session.history.items if getattr(i, "role", None) == "user"]
    assert [u.text for u in user] == ["office hours"]  # type: ignore[attr-defined]
    await session.close()
    await transport.close()
