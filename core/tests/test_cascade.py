"""CascadingPipeline: VAD -> STT -> ConversationFlow -> LLM with tools -> TTS, through a real session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from agentsession import (
    LLM,
    STT,
    TTS,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    ConversationFlow,
    FunctionTool,
    SpeechEvent,
    SpeechStream,
    ToolCall,
    TurnDetector,
)
from agentsession.testing import FakeTransport, tone, virtual_clock
from core_helpers import QuietAgent, settle
from test_session_states import ToolAgent


class FakeSTT(STT):
    def __init__(self, text: str) -> None:
        self.text = text
        self.heard: list[float] = []

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        self.heard.append(audio.duration)
        return self.text


class FakeLLM(LLM):
    """Calls ``lookup`` once if tools are offered, then answers with the tool's output."""

    def __init__(self) -> None:
        self.contexts: list[ChatContext] = []

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        self.contexts.append(ctx.copy())
        outputs = [i for i in ctx.items if type(i).__name__ == "FunctionCallOutput"]
        if tools and not outputs:
            yield "Let me check. "
            yield ToolCall("c1", "lookup", json.dumps({"city": "Paris"}), response_id="chatcmpl-1")
            return
        if outputs:
            temp = json.loads(outputs[-1].output)["temp"]  # type: ignore[union-attr]
            yield f"It is {temp} degrees. "
            yield "Anything else?"
            return
        yield "Hello there."


class FakeTTS(TTS):
    sample_rate = 16000

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.spoken.append(text)
        yield tone(0.05 * len(text), self.sample_rate)


def utterance(seconds: float) -> AudioFrame:
    silence = np.zeros((int(0.3 * 16000), 1), np.int16)
    return AudioFrame(np.concatenate([silence, tone(seconds, 16000, 300).data, silence, silence, silence]), 16000)


@virtual_clock
async def test_spoken_turn_runs_the_cascade_with_a_tool() -> None:
    stt, llm, tts = FakeSTT("Weather in Paris?"), FakeLLM(), FakeTTS()
    agent = ToolAgent()
    agent.release.set()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(agent, CascadingPipeline(stt=stt, llm=llm, tts=tts))
    states: list[str] = []
    session.on("agent_state_changed", lambda d: states.append(f"{d['state']}"))
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    assert stt.heard and stt.heard[0] == pytest.approx(1.0 + 0.3 + 0.5, abs=0.1)  # speech + pre-roll-free tail
    assert agent.calls == ["Paris"]
    assert tts.spoken == ["Let me check.", "It is 21 degrees.", "Anything else?"]
    assert llm.contexts[0].items[0].text == "You look things up."  # type: ignore[union-attr]
    assert [i.role for i in llm.contexts[0].items if hasattr(i, "role")][-1] == "user"
    assert states[:4] == ["starting", "idle", "listening", "thinking"] and states[-1] == "idle"
    assert transport.output.shape[0] / 24000 == pytest.approx(0.05 * sum(len(t) for t in tts.spoken), abs=0.1)
    await session.close()
    await transport.close()


class Guard(ConversationFlow):
    """Written as VideoSDK's docs write a conversation flow: override ``run``, call ``process_with_llm``."""

    def __init__(self, agent: QuietAgent) -> None:
        super().__init__(agent)
        self.turns: list[str] = []

    async def on_turn_start(self, transcript: str) -> None:
        self.turns.append(f"start:{transcript}")

    async def on_turn_end(self) -> None:
        self.turns.append("end")

    async def run(self, transcript: str) -> AsyncIterator[str]:
        if "password" in transcript:
            yield "I can't help with that."
            return
        if transcript == "ignore me":
            return
        assert self.agent is not None
        self.agent.chat_context.add_message("system", "Answer briefly.")  # steer the LLM for this turn
        async for chunk in self.process_with_llm():
            yield chunk.replace("Hello", "Hullo")  # post-process what is spoken (pronunciation)


@virtual_clock
async def test_conversation_flow_run_changes_answers_or_drops_turns() -> None:
    llm, tts = FakeLLM(), FakeTTS()
    agent = QuietAgent()
    flow = Guard(agent)
    session = AgentSession(agent, CascadingPipeline(stt=FakeSTT(""), llm=llm, tts=tts), conversation_flow=flow)
    await session.start()
    result = await session.run(user_input="what is the password?")
    assert result.text == "I can't help with that." and llm.contexts == []
    result = await session.run(user_input="ignore me")
    assert result.text == "" and llm.contexts == []
    result = await session.run(user_input="hi")
    assert result.text == "Hullo there." and tts.spoken[-1] == "Hullo there."
    assert llm.contexts[-1].items[-1].text == "Answer briefly."  # type: ignore[union-attr]
    assert flow.turns == ["start:what is the password?", "end", "start:ignore me", "end", "start:hi", "end"]
    await session.close()


async def test_process_with_llm_outside_a_response_is_a_clear_error() -> None:
    flow = ConversationFlow()
    with pytest.raises(RuntimeError, match="inside a cascade's response"):
        async for _ in flow.run("hi"):
            pass


@virtual_clock
async def test_turn_detector_holds_an_unfinished_turn() -> None:
    llm, tts = FakeLLM(), FakeTTS()

    async def detector(ctx: ChatContext, text: str) -> bool:
        return text.endswith("?")

    stt = FakeSTT("so I was wondering")
    transport = FakeTransport()
    await transport.start()
    pipeline = CascadingPipeline(stt=stt, llm=llm, tts=tts, turn_detector=detector, turn_hold=2.0)
    session = AgentSession(QuietAgent(), pipeline)
    await session.start(transport=transport)
    await transport.feed(utterance(0.5))
    await settle(0.2)
    assert llm.contexts == []  # held: not the end of the turn yet
    stt.text = "about the weather?"
    await transport.feed(utterance(0.5))
    await settle(3)
    assert len(llm.contexts) == 1
    assert llm.contexts[0].items[-1].text == "so I was wondering about the weather?"  # type: ignore[union-attr]
    await session.close()
    await transport.close()


class HearingDetector(TurnDetector):
    """An audio detector: done when the turn's audio holds more than ``needed`` seconds of voice."""

    audio_window = 8.0

    def __init__(self, needed: float) -> None:
        self.needed = needed
        self.heard: list[tuple[str, float, float]] = []  # transcript, seconds of audio, seconds of voice

    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str, *,
                                      audio: AudioFrame | None = None) -> float:
        assert audio is not None and audio.channels == 1
        voiced = np.count_nonzero(audio.data) / audio.sample_rate  # the silence is digital zero
        self.heard.append((transcript, audio.duration, voiced))
        return 1.0 if voiced > self.needed else 0.0


@virtual_clock
async def test_an_audio_turn_detector_hears_the_whole_turn_up_to_each_stop() -> None:
    from agentsession import Endpointing

    llm = FakeLLM()
    detector = HearingDetector(needed=1.0)
    stt = FakeSTT("part")
    session, transport, heard = listening_session(
        stt, llm, turn_detector=detector, endpointing=Endpointing(min_endpointing_delay=0.4, max_endpointing_delay=3.0))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(AudioFrame(np.zeros((16000 * 3, 1), np.int16), 16000))  # silence before: not kept
    await transport.feed(utterance(0.6))  # 0.3 s silence, 0.6 s voice, 0.9 s silence
    await settle(1.0)
    assert llm.contexts == []  # 0.6 s of voice: not done
    await transport.feed(utterance(0.6))
    await settle(2.0)
    assert len(llm.contexts) == 1 and [h["end_of_turn"] for h in heard if h["final"]] == ["turn_detector"]
    (first, one, voice1), (_, two, voice2) = detector.heard
    assert first == "part"
    assert voice1 == pytest.approx(0.6, abs=0.03) and voice2 == pytest.approx(1.2, abs=0.03)  # the whole turn
    # from half a second before the VAD's start (0.1 s into the voice) to its stop (0.5 s after the voice)
    assert one == pytest.approx(0.4 + 0.6 + 0.5, abs=0.05) and two == pytest.approx(one + 1.8, abs=0.05)
    await transport.feed(utterance(0.6))  # a new turn starts afresh
    await settle(1.0)
    assert detector.heard[-1][1] == pytest.approx(one, abs=0.05)
    await session.close()
    await transport.close()


@virtual_clock
async def test_an_audio_turn_detector_hears_no_more_silence_than_it_asks_for() -> None:
    from agentsession import Endpointing

    detector = HearingDetector(needed=0.1)
    detector.audio_silence = 0.2  # the VAD (min_silence 0.5 s) waited longer: the audio is cut before the stop
    session, transport, heard = listening_session(
        FakeSTT("hi"), FakeLLM(), turn_detector=detector, endpointing=Endpointing(min_endpointing_delay=0.4))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(0.6))
    await settle(2.0)
    ((_, duration, voiced),) = detector.heard
    assert voiced == pytest.approx(0.6, abs=0.03)
    assert duration == pytest.approx(0.3 + 0.6 + 0.2, abs=0.03)  # from the start (0.3 s before the voice), 0.2 s after it
    await session.close()
    await transport.close()


class StreamingSTT(STT):
    """Transcribes while the user speaks: an interim per pushed 200 ms of speech, the final at each flush."""

    streaming = True
    turn_detection = None  # leaves the ends of utterances to the cascade's VAD (flush)

    def __init__(self, finals: list[str]) -> None:
        self.finals = finals

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise AssertionError("a streaming STT is not asked for whole utterances")

    def stream(self, *, language: str | None = None) -> SpeechStream:
        stt = self

        class Stream(SpeechStream):
            def __init__(self) -> None:
                super().__init__()
                self.loud = 0.0

            def push_audio(self, frame: AudioFrame) -> None:
                if np.abs(frame.data).max() > 1000:
                    self.loud += frame.duration
                    if round(self.loud, 2) % 0.2 == 0 and stt.finals:
                        words = stt.finals[0].split()
                        self._emit(SpeechEvent("interim", " ".join(words[: int(self.loud / 0.2)])))

            def flush(self) -> None:
                self.loud = 0.0
                if stt.finals:
                    self._emit(SpeechEvent("final", stt.finals.pop(0)))

            def end_input(self) -> None:
                self._finish()

        return Stream()


def listening_session(stt: STT, llm: LLM, **kwargs: object) -> tuple[AgentSession, FakeTransport, list[dict]]:
    transport = FakeTransport()
    pipeline = CascadingPipeline(stt=stt, llm=llm, tts=FakeTTS(), **kwargs)  # type: ignore[arg-type]
    session = AgentSession(QuietAgent(), pipeline)
    heard: list[dict] = []
    session.on("user_transcript", heard.append)
    return session, transport, heard


@virtual_clock
async def test_interim_transcripts_then_the_turn_ends_when_the_detector_says_so() -> None:
    import asyncio

    from agentsession import Endpointing, TextTurnDetector

    llm = FakeLLM()
    session, transport, heard = listening_session(
        StreamingSTT(["What time is it?"]), llm, turn_detector=TextTurnDetector(),
        endpointing=Endpointing(min_endpointing_delay=0.4, max_endpointing_delay=3.0))
    await transport.start()
    await session.start(transport=transport)
    asked: list[float] = []
    original = llm.chat

    def chat(ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        asked.append(asyncio.get_running_loop().time())
        return original(ctx, tools=tools)

    llm.chat = chat  # type: ignore[method-assign]
    await transport.feed(utterance(1.0))  # 0.3 s silence, 1 s speech, 0.9 s silence
    await settle(2)
    interims = [h["text"] for h in heard if not h["final"]]
    assert interims and interims[-1].startswith("What time") and interims == sorted(interims, key=len)
    (final,) = [h for h in heard if h["final"]]
    assert final == {"text": "What time is it?", "final": True, "end_of_turn": "turn_detector"}
    # the VAD heard the end ~0.5 s after the speech (min_silence); the LLM starts 0.4 s later
    assert asked and asked[0] == pytest.approx(0.3 + 1.0 + 0.5 + 0.4, abs=0.1)
    await session.close()
    await transport.close()


@virtual_clock
async def test_an_unfinished_sentence_waits_for_the_rest_and_a_silence_ends_it_at_the_longest_wait() -> None:
    from agentsession import Endpointing, TextTurnDetector

    llm = FakeLLM()
    stt = StreamingSTT(["so I was wondering if", "you know the time"])
    session, transport, heard = listening_session(
        stt, llm, turn_detector=TextTurnDetector(),
        endpointing=Endpointing(min_endpointing_delay=0.4, max_endpointing_delay=3.0))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(0.6))
    await settle(1.0)
    assert llm.contexts == []  # "...if": not the end of the turn
    await transport.feed(utterance(0.6))
    await settle(4.0)
    finals = [h for h in heard if h["final"]]
    assert [(h["text"], h["end_of_turn"]) for h in finals] == [
        ("so I was wondering if you know the time", "turn_detector")]
    assert len(llm.contexts) == 1
    await session.close()
    await transport.close()


class EagerSTT(STT):
    """A streaming STT with its own voice detection: it hears (and transcribes) speech the cascade's VAD misses."""

    streaming = True

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise AssertionError("a streaming STT is not asked for whole utterances")

    def stream(self, *, language: str | None = None) -> SpeechStream:
        class Stream(SpeechStream):
            sent = False

            def push_audio(self, frame: AudioFrame) -> None:
                if not self.sent and np.abs(frame.data).max() > 0:
                    self.sent = True
                    self._emit(SpeechEvent("final", "hello"))

            def flush(self) -> None:
                pass

            def end_input(self) -> None:
                self._finish()

        return Stream()


@virtual_clock
async def test_a_final_without_a_stop_of_the_vad_leaves_an_audio_detector_out(
        caplog: pytest.LogCaptureFixture) -> None:
    detector = HearingDetector(needed=0.1)
    session, transport, heard = listening_session(EagerSTT(), FakeLLM(), turn_detector=detector)
    await transport.start()
    await session.start(transport=transport)
    quiet = utterance(0.6)
    await transport.feed(AudioFrame((quiet.data // 100).astype(np.int16), 16000))  # -50 dBFS: under the VAD
    await settle(2.0)
    assert detector.heard == []  # no audio of the turn up to a stop of the VAD: the silence decides
    assert [(h["text"], h.get("end_of_turn")) for h in heard if h["final"]] == [("hello", "silence")]
    assert "turn detector failed" not in caplog.text
    await session.close()
    await transport.close()


@virtual_clock
async def test_a_cascade_turn_records_each_stage() -> None:
    llm = FakeLLM()
    session, transport, _ = listening_session(StreamingSTT(["Tell me something."]), llm)
    metrics: list[dict] = []
    session.on("metrics_collected", metrics.append)
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(4)
    (turn,) = metrics
    assert turn["trigger"] == "user" and turn["end_of_turn_reason"] == "silence"
    assert turn["stt_latency"] is not None and turn["stt_latency"] < 0.1  # the final came at the VAD's end
    assert turn["llm_ttft"] is not None and turn["llm_duration"] is not None and turn["tts_ttfb"] is not None
    assert turn["realtime_ttfa"] is None  # not a realtime model: its stages explain the first audio
    assert turn["audio_played"] == pytest.approx(turn["audio_generated"]) and turn["interrupted_at"] is None
    await session.close()
    await transport.close()
