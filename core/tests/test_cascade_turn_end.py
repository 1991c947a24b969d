"""The cascade's end of turn: a streaming STT's final that comes before the VAD's end of speech still ends the
turn, and the turn's ``eou_delay`` is measured whole (the VAD's silence + the endpointing's wait)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_cascade import FakeLLM, StreamingSTT, listening_session, utterance

from agentsession import STT, AudioFrame, Endpointing, SpeechEvent, SpeechStream
from agentsession.testing import tone, virtual_clock


class EarlyFinalSTT(STT):
    """A streaming STT with voice detection of its own: its final comes after ``after`` s of speech, while the
    user still speaks for the cascade's VAD (which waits for its silence); the end of speech flushes nothing."""

    streaming = True
    turn_detection = {"type": "server_vad"}

    def __init__(self, text: str, after: float = 0.6) -> None:
        self.text, self.after = text, after

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise AssertionError("a streaming STT is not asked for whole utterances")

    def stream(self, *, language: str | None = None) -> SpeechStream:
        stt = self

        class Stream(SpeechStream):
            loud = 0.0
            sent = False

            def push_audio(self, frame: AudioFrame) -> None:
                if np.abs(frame.data).max() > 1000:
                    self.loud += frame.duration
                if not self.sent and self.loud >= stt.after - 1e-9:
                    self.sent = True
                    self._emit(SpeechEvent("final", stt.text))

            def flush(self) -> None:
                raise AssertionError("an STT with its own turn detection is not flushed")

            def end_input(self) -> None:
                self._finish()

        return Stream()


@virtual_clock
async def test_a_final_before_the_vads_end_of_speech_still_ends_the_turn() -> None:
    llm = FakeLLM()
    session, transport, heard = listening_session(EarlyFinalSTT("What time is it?"), llm,
                                                  endpointing=Endpointing(min_endpointing_delay=0.4))
    asked: list[float] = []
    original = llm.chat

    def chat(*args: object, **kwargs: object) -> object:
        asked.append(asyncio.get_running_loop().time())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    llm.chat = chat  # type: ignore[method-assign]
    await transport.start()
    await session.start(transport=transport)
    t0 = asyncio.get_running_loop().time()
    await transport.feed(utterance(1.0))  # 0.3 s silence, 1 s speech (the final after 0.6 s of it), 0.9 s silence
    await settle(3.0)
    assert [(h["text"], h["end_of_turn"]) for h in heard if h["final"]] == [("What time is it?", "silence")]
    # the VAD reports the end 0.5 s after the speech (its min silence); the endpointing waits 0.4 s more
    assert len(asked) == 1 and asked[0] - t0 == pytest.approx(0.3 + 1.0 + 0.5 + 0.4, abs=0.1)
    await session.close()
    await transport.close()


class SegmentSTT(STT):
    """A streaming STT with voice detection of its own: one final per stretch of speech, ``early`` (after 0.3 s of
    it, while the user still speaks) or ``late`` (``lag`` s after it ended); ``None`` for a stretch it hears no
    words in."""

    streaming = True
    turn_detection = {"type": "server_vad"}

    def __init__(self, finals: list[tuple[str, str] | None], lag: float = 1.1) -> None:
        self.finals, self.lag = finals, lag

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise AssertionError("a streaming STT is not asked for whole utterances")

    def stream(self, *, language: str | None = None) -> SpeechStream:
        stt = self

        class Stream(SpeechStream):
            loud = quiet = 0.0
            pending: tuple[str, str] | None = None

            def push_audio(self, frame: AudioFrame) -> None:
                if np.abs(frame.data).max() > 1000:
                    if self.loud == 0.0 or self.quiet > 0:  # a new stretch of speech
                        if self.pending is not None:
                            self._emit(SpeechEvent("final", self.pending[0]))
                        self.pending = stt.finals.pop(0) if stt.finals else None
                        self.loud = 0.0
                    self.loud += frame.duration
                    self.quiet = 0.0
                    if self.pending is not None and self.pending[1] == "early" and self.loud >= 0.3 - 1e-9:
                        self._emit(SpeechEvent("final", self.pending[0]))
                        self.pending = None
                elif self.loud > 0:
                    self.quiet += frame.duration
                    if self.quiet >= stt.lag - 1e-9:
                        if self.pending is not None:
                            self._emit(SpeechEvent("final", self.pending[0]))
                        self.loud, self.pending = 0.0, None

            def flush(self) -> None:
                raise AssertionError("an STT with its own turn detection is not flushed")

            def end_input(self) -> None:
                self._finish()

        return Stream()


def two_stretches(pause: float) -> AudioFrame:
    def s(seconds: float) -> np.ndarray:
        return np.zeros((int(seconds * 16000), 1), np.int16)

    return AudioFrame(np.concatenate([s(0.3), tone(0.8, 16000, 300).data, s(pause), tone(0.6, 16000, 300).data,
                                      s(3.0)]), 16000)


@virtual_clock
async def test_a_late_final_of_the_next_utterance_joins_the_turn_the_early_one_began() -> None:
    """"A" is final while the user says it; they go on after 0.7 s (the VAD stopped after 0.5 s, the turn was to end
    0.4 s later); "B" is final 0.6 s after the VAD's end of that speech: one turn, "A B"."""
    llm = FakeLLM()
    session, transport, heard = listening_session(SegmentSTT([("A", "early"), ("B", "late")]), llm,
                                                  endpointing=Endpointing(min_endpointing_delay=0.4))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(two_stretches(0.7))
    await settle(3.0)
    assert [(h["text"], h["end_of_turn"]) for h in heard if h["final"]] == [("A B", "silence")]
    assert len(llm.contexts) == 1
    await session.close()
    await transport.close()


@virtual_clock
async def test_held_text_ends_the_turn_at_the_longest_wait_when_the_next_utterance_has_no_words() -> None:
    llm = FakeLLM()
    session, transport, heard = listening_session(SegmentSTT([("A", "early"), None]), llm,
                                                  endpointing=Endpointing(min_endpointing_delay=0.4,
                                                                          max_endpointing_delay=2.0))
    await transport.start()
    await session.start(transport=transport)
    t0 = asyncio.get_running_loop().time()
    asked: list[float] = []
    original = llm.chat

    def chat(*args: object, **kwargs: object) -> object:
        asked.append(asyncio.get_running_loop().time())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    llm.chat = chat  # type: ignore[method-assign]
    await transport.feed(two_stretches(0.7))
    await settle(3.0)
    assert [(h["text"], h["end_of_turn"]) for h in heard if h["final"]] == [("A", "max_delay")]
    # the second stretch ends at 0.3 + 0.8 + 0.7 + 0.6 s; the VAD reports it 0.5 s later; then the longest wait
    assert len(asked) == 1 and asked[0] - t0 == pytest.approx(2.4 + 0.5 + 2.0, abs=0.1)
    await session.close()
    await transport.close()


class ListSTT(STT):
    """Transcribes each utterance as the next of ``texts``."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return self.texts.pop(0)


@virtual_clock
async def test_an_utterance_of_nothing_after_held_text_lets_that_text_end_the_turn() -> None:
    from agentsession import TextTurnDetector

    llm = FakeLLM()
    session, transport, heard = listening_session(
        ListSTT(["so I was wondering if", ""]), llm, turn_detector=TextTurnDetector(),
        endpointing=Endpointing(min_endpointing_delay=0.4, max_endpointing_delay=3.0))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(0.6))  # unfinished: held up to 3 s
    await transport.feed(utterance(0.6))  # a cough: transcribed as nothing, it went on the wait
    await settle(5.0)
    assert [(h["text"], h["end_of_turn"]) for h in heard if h["final"]] == [("so I was wondering if", "max_delay")]
    assert len(llm.contexts) == 1
    await session.close()
    await transport.close()


@pytest.mark.parametrize("stt", [lambda: StreamingSTT(["Tell me something."]), lambda: EarlyFinalSTT("Tell me.")],
                         ids=["final-at-the-vad-stop", "final-before-the-vad-stop"])
@virtual_clock
async def test_eou_delay_is_the_vad_silence_plus_the_endpointing_delay(stt: object) -> None:
    session, transport, _ = listening_session(stt(), FakeLLM(),  # type: ignore[operator]
                                              endpointing=Endpointing(min_endpointing_delay=0.7))
    metrics: list[dict] = []
    session.on("metrics_collected", metrics.append)
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(4)
    (turn,) = metrics
    assert turn["vad_silence"] == pytest.approx(0.5, abs=0.03)  # the energy VAD's min silence
    assert turn["endpointing_delay"] == pytest.approx(0.7, abs=0.03)
    assert turn["eou_delay"] == pytest.approx(turn["vad_silence"] + turn["endpointing_delay"], abs=1e-6)
    assert turn["stt_latency"] is not None and 0 <= turn["stt_latency"] < 0.1  # the final came by the VAD's end
    assert turn["e2e"] is not None and turn["e2e"] >= turn["eou_delay"]
    await session.close()
    await transport.close()


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)
