"""FallbackSTT/LLM/TTS: the contract suites, failover with scripted failing providers, and a cascade through a
session whose first TTS fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from test_cascade import FakeLLM, FakeSTT, FakeTTS, utterance
from test_contracts import CountingSTT, EchoLLM, ToneTTS

from agentsession import (
    LLM,
    STT,
    TTS,
    AgentSession,
    AudioFrame,
    CascadingPipeline,
    ChatContext,
    Error,
    FallbackLLM,
    FallbackSTT,
    FallbackTTS,
    FunctionTool,
    ModelError,
    ToolCall,
)
from agentsession.testing import FakeTransport, LLMContract, STTContract, TTSContract, tone, virtual_clock
from core_helpers import QuietAgent, settle


class Down(Exception):
    """A provider's outage."""


class ScriptedLLM(LLM):
    """Each call takes the next behaviour: ``"ok"``, ``"fail"`` (before any token), ``"mid"`` (one token, then
    fails), ``"hang"`` (never answers), ``"slow"`` (answers after 1 s)."""

    def __init__(self, name: str, *behaviours: str) -> None:
        self.provider = name
        self.behaviours = list(behaviours)
        self.calls = 0

    async def chat(self, ctx: ChatContext, *, tools: Sequence[FunctionTool] = ()) -> AsyncIterator[str | ToolCall]:
        self.calls += 1
        behaviour = self.behaviours.pop(0) if self.behaviours else "ok"
        if behaviour == "fail":
            raise Down(f"{self.provider} is down")
        if behaviour == "hang":
            await asyncio.Event().wait()
        if behaviour == "slow":
            await asyncio.sleep(1.0)
        yield f"{self.provider} says "
        if behaviour == "mid":
            raise Down("connection reset")
        yield "hello."


async def chat(llm: LLM) -> str:
    return "".join(str(p) for p in [p async for p in llm.chat(ChatContext())])


def reports(provider: FallbackLLM | FallbackSTT | FallbackTTS) -> list[Error]:
    out: list[Error] = []
    provider.report_to(out.append)
    return out


@virtual_clock
async def test_a_failure_before_the_first_token_moves_the_same_call_to_the_next_provider() -> None:
    primary, backup = ScriptedLLM("primary", "fail"), ScriptedLLM("backup")
    llm = FallbackLLM([primary, backup])
    errors = reports(llm)
    assert await chat(llm) == "backup says hello."
    (error,) = errors
    assert (error.code, error.component, error.recoverable) == ("fallback_switch", "llm", True)
    assert "primary failed (Down: primary is down); switched to backup" in error.message
    assert llm.stats.switches == 1 and llm.stats.failures == {"primary": 1} and llm.stats.successes == {"backup": 1}
    assert await chat(llm) == "backup says hello."  # the primary is disabled for temporary_disable_sec
    assert primary.calls == 1


@virtual_clock
async def test_a_failure_mid_stream_keeps_what_was_said_and_the_next_call_moves_on() -> None:
    primary, backup = ScriptedLLM("primary", "mid"), ScriptedLLM("backup")
    llm = FallbackLLM([primary, backup])
    errors = reports(llm)
    assert await chat(llm) == "primary says "
    assert [e.code for e in errors] == ["fallback_mid_stream"]
    assert await chat(llm) == "backup says hello."
    assert backup.calls == 1


@virtual_clock
async def test_when_every_provider_fails_the_call_raises_and_it_is_reported() -> None:
    llm = FallbackLLM([ScriptedLLM("a", "fail"), ScriptedLLM("b", "fail")])
    errors = reports(llm)
    with pytest.raises(ModelError, match="every LLM provider failed"):
        await chat(llm)
    assert [e.code for e in errors] == ["fallback_switch", "fallback_exhausted"]
    assert "a: Down: a is down; b: Down: b is down" in errors[-1].message
    assert llm.stats.exhausted == 1


@virtual_clock
async def test_a_provider_that_does_not_answer_in_time_counts_as_failed() -> None:
    llm = FallbackLLM([ScriptedLLM("hung", "hang"), ScriptedLLM("backup")], attempt_timeout=2.0)
    errors = reports(llm)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await chat(llm) == "backup says hello."
    assert loop.time() - start == pytest.approx(2.0, abs=0.01)
    assert "no result within 2 s" in errors[0].message


@virtual_clock
async def test_a_disabled_provider_is_tried_again_after_its_cooldown() -> None:
    primary, backup = ScriptedLLM("primary", "fail"), ScriptedLLM("backup")
    llm = FallbackLLM([primary, backup], temporary_disable_sec=30.0)
    await chat(llm)
    await asyncio.sleep(29.0)
    assert await chat(llm) == "backup says hello."
    await asyncio.sleep(2.0)
    assert llm.active_provider is primary
    assert await chat(llm) == "primary says hello."
    assert llm.stats.recoveries == 1 and primary.calls == 2


@virtual_clock
async def test_a_provider_failing_n_times_in_a_row_is_disabled_for_good() -> None:
    primary, backup = ScriptedLLM("primary", "fail", "fail"), ScriptedLLM("backup")
    llm = FallbackLLM([primary, backup], temporary_disable_sec=1.0, permanent_disable_after_attempts=2)
    await chat(llm)
    await asyncio.sleep(2.0)
    await chat(llm)  # recovered, fails again: the second failure in a row
    await asyncio.sleep(100.0)
    assert await chat(llm) == "backup says hello."
    assert primary.calls == 2 and llm.active_provider is backup


@virtual_clock
async def test_a_success_resets_the_failures_in_a_row() -> None:
    primary = ScriptedLLM("primary", "fail", "ok", "fail")
    llm = FallbackLLM([primary, ScriptedLLM("backup")], temporary_disable_sec=1.0, permanent_disable_after_attempts=2)
    for _ in range(3):
        await chat(llm)
        await asyncio.sleep(2.0)
    assert await chat(llm) == "primary says hello."  # two failures, not in a row: still in use


@virtual_clock
async def test_a_provider_slow_for_consecutive_calls_is_switched_away_from() -> None:
    primary = ScriptedLLM("primary", "slow", "slow")
    llm = FallbackLLM([primary, ScriptedLLM("backup")], latency_threshold_ms=500, consecutive_latency_hits=2)
    errors = reports(llm)
    assert await chat(llm) == "primary says hello."
    assert errors == []
    assert await chat(llm) == "primary says hello."
    assert [e.code for e in errors] == ["fallback_switch"] and "slow for 2 calls in a row" in errors[0].message
    assert await chat(llm) == "backup says hello."


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least one provider"):
        FallbackLLM([])
    with pytest.raises(TypeError, match="takes TTS providers; got EchoLLM"):
        FallbackTTS([EchoLLM()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="permanent_disable_after_attempts"):
        FallbackSTT([CountingSTT()], permanent_disable_after_attempts=0)


class BrokenSTT(STT):
    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        raise Down("no STT today")


class Rate24kSTT(CountingSTT):
    sample_rate = 24000

    def __init__(self) -> None:
        self.rates: list[int] = []

    async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
        self.rates.append(audio.sample_rate)
        return await super().transcribe(audio, language=language)


@virtual_clock
async def test_stt_fails_over_and_gives_each_provider_audio_at_its_rate() -> None:
    backup = Rate24kSTT()
    stt = FallbackSTT([BrokenSTT(), backup])
    assert stt.sample_rate == 16000  # the first provider's
    text = await stt.transcribe(tone(1.0, 16000))
    assert text.endswith("seconds of audio") and backup.rates == [24000]
    assert stt.stats.switches == 1


class BrokenTTS(TTS):
    def __init__(self, *, after_first: bool = False) -> None:
        self.after_first = after_first
        self.calls = 0

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        self.calls += 1
        if self.after_first:
            yield tone(0.1, self.sample_rate)
        raise Down("synthesis failed")


class Tone16kTTS(ToneTTS):
    sample_rate = 16000


@virtual_clock
async def test_tts_fails_over_and_resamples_the_backup_to_its_rate() -> None:
    tts = FallbackTTS([BrokenTTS(), Tone16kTTS()])
    frames = [f async for f in tts.synthesize("two words")]
    assert frames and all(f.sample_rate == 24000 and f.channels == 1 for f in frames)
    assert sum(f.duration for f in frames) == pytest.approx(0.2, abs=0.03)


class TestFallbackLLMContract(LLMContract):
    async def create_llm(self) -> LLM:
        return FallbackLLM([ScriptedLLM("down", *["fail"] * 10), EchoLLM()])


class TestFallbackSTTContract(STTContract):
    async def create_stt(self) -> STT:
        return FallbackSTT([BrokenSTT(), CountingSTT()])


class TestFallbackTTSContract(TTSContract):
    async def create_tts(self) -> TTS:
        return FallbackTTS([BrokenTTS(), ToneTTS()])


def cascade_session(tts: TTS, stt: STT | None = None, llm: LLM | None = None
                    ) -> tuple[AgentSession, FakeTransport, dict[str, list[dict[str, object]]]]:
    transport = FakeTransport()
    session = AgentSession(QuietAgent(), CascadingPipeline(stt=stt or FakeSTT("Hello?"), llm=llm or FakeLLM(),
                                                           tts=tts))
    seen: dict[str, list[dict[str, object]]] = {"error": [], "metrics_collected": [], "agent_transcript": []}
    for name, events in seen.items():
        session.on(name, events.append)
    return session, transport, seen


@virtual_clock
async def test_a_cascade_whose_first_tts_fails_still_speaks_the_answer() -> None:
    spoken = FakeTTS()
    spoken.sample_rate = 24000
    session, transport, seen = cascade_session(FallbackTTS([BrokenTTS(), spoken]))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    assert spoken.spoken == ["Hello there."]
    assert transport.output.shape[0] / 24000 == pytest.approx(0.05 * len("Hello there."), abs=0.05)
    (error,) = seen["error"]
    assert (error["code"], error["component"], error["recoverable"]) == ("fallback_switch", "tts", True)
    (metrics,) = seen["metrics_collected"]
    assert metrics["audio_played"] == pytest.approx(0.6, abs=0.05) and not metrics["interrupted"]
    await session.close()
    await transport.close()


@virtual_clock
async def test_a_cascade_whose_every_tts_fails_reports_it_and_ends_the_turn() -> None:
    first, second = BrokenTTS(), BrokenTTS()
    session, transport, seen = cascade_session(FallbackTTS([first, second]))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    codes = [e["code"] for e in seen["error"]]
    assert codes[:2] == ["fallback_switch", "fallback_exhausted"]
    assert all(e["recoverable"] for e in seen["error"]) and not session.closed
    (metrics,) = seen["metrics_collected"]  # the turn ended (no audio), it did not hang
    assert not metrics["audio_played"]
    assert f"{session.agent_state}" == "idle"
    assert first.calls == second.calls == 1
    await session.close()
    await transport.close()


@virtual_clock
async def test_a_providers_own_timeout_error_is_its_error_not_the_attempt_timeout() -> None:
    class TimingOutSTT(STT):
        async def transcribe(self, audio: AudioFrame, *, language: str | None = None) -> str:
            raise TimeoutError("upstream read timed out")

    stt = FallbackSTT([TimingOutSTT(), CountingSTT()])
    errors = reports(stt)
    assert (await stt.transcribe(tone(0.5, 16000))).endswith("seconds of audio")
    assert "TimeoutError: upstream read timed out" in errors[0].message


def test_the_fallback_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "examples" / "fallback.py"), "file", "--input",
                           str(root / "examples" / "hello.wav"), "--speed", "max"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("fallback_switch (llm): LLM provider primary-llm failed") for line in lines), lines
    assert any(line.startswith("fallback_switch (tts): TTS provider primary-tts failed") for line in lines), lines
    assert "agent: It is sunny and 21 degrees. Anything else?" in [line.rstrip() for line in lines]
    assert any(line.startswith("turn 1: ") and not line.startswith("turn 1: 0.00") for line in lines), lines


@virtual_clock
async def test_a_cascade_whose_first_stt_and_llm_fail_still_answers() -> None:
    tts = FakeTTS()
    stt = FallbackSTT([BrokenSTT(), FakeSTT("Hello?")])
    llm = FallbackLLM([ScriptedLLM("primary", "fail"), FakeLLM()])
    session, transport, seen = cascade_session(tts, stt, llm)
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    assert tts.spoken == ["Hello there."]
    assert [(e["code"], e["component"]) for e in seen["error"]] == [("fallback_switch", "stt"),
                                                                     ("fallback_switch", "llm")]
    await session.close()
    await transport.close()


@virtual_clock
async def test_a_cascade_whose_every_stt_fails_reports_it_and_ends_the_turn() -> None:
    tts = FakeTTS()
    session, transport, seen = cascade_session(tts, FallbackSTT([BrokenSTT(), BrokenSTT()]))
    await transport.start()
    await session.start(transport=transport)
    await transport.feed(utterance(1.0))
    await settle(10)
    assert [e["code"] for e in seen["error"]][:2] == ["fallback_switch", "fallback_exhausted"]
    assert tts.spoken == [] and f"{session.agent_state}" == "idle" and not session.closed
    await session.close()
    await transport.close()
