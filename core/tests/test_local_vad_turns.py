"""One rule for user turns heard by the session's own VAD (a model that reports no user speech, like Gemini Live):
every order of the VAD's start/stop and the model's answer (transcript, audio, turn end) gives one answered turn,
never THINKING once the answer played, no turn left waiting ``UNANSWERED_AFTER`` s, and the wake-up re-armed."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from agentsession import AgentSession, AudioFrame, RealTimePipeline
from agentsession.plugin import VAD, AgentAudio, AgentTranscript, ResponseDone, VADEvent
from agentsession.testing import FakeRealtimeModel, FakeTransport, tone, virtual_clock
from core_helpers import QuietAgent, Recorder, settle

STEP = 0.1  # seconds between two events of a scenario (under the late-VAD grace)
UTTERANCE = 0.8  # the VAD hears the user this long at least (over min_interruption_duration: a barge-in would fire)
ANSWER = 0.6  # seconds of answer audio
WAKE_UP = 3.0
SILENCE = 0.5  # the VAD's silence before it reports the end of speech


class CuedVAD(VAD):
    """A VAD double: reports what the test cues, on the next frame pushed (a start at once, an end ``SILENCE`` s
    after the last voiced audio)."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed = 0.0
        self.cued: list[str] = []

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        self.pushed += frame.duration
        events = [VADEvent("start" if kind == "start" else "end",
                           self.pushed if kind == "start" else max(0.0, self.pushed - SILENCE)) for kind in self.cued]
        self.cued.clear()
        return events

    def reset(self) -> None:
        self.cued.clear()


class ModelWithoutUserSpeech(FakeRealtimeModel):
    reports_user_speech = False


MODEL_EVENTS = ("transcript", "audio", "done")


def _sensible(order: tuple[str, ...]) -> bool:
    """The model ends its turn after its transcript and audio; the VAD starts before it stops; an answer starts
    before the VAD's start only shortly (the VAD reports late: the next event, within the grace)."""
    at = {name: i for i, name in enumerate(order)}
    if not (at["vad_start"] < at["vad_stop"] and at["done"] > max(at["transcript"], at["audio"])):
        return False
    first_model = min(at[e] for e in MODEL_EVENTS)
    return at["vad_start"] <= first_model + 1


ORDERS = [o for o in itertools.permutations(("vad_start", "vad_stop", *MODEL_EVENTS)) if _sensible(o)]


def test_the_orders_cover_every_sensible_case() -> None:
    # 2 orders of the model's events x (the VAD starts first: 4 places for its stop; just after the answer
    # started: 3 places)
    assert len(ORDERS) == 14
    assert ("vad_start", "vad_stop", "transcript", "audio", "done") in ORDERS
    assert ("audio", "vad_start", "transcript", "done", "vad_stop") in ORDERS
    assert ("transcript", "audio", "vad_start", "vad_stop", "done") not in ORDERS  # the answer is older than the grace


async def play(order: tuple[str, ...]) -> tuple[AgentSession, Recorder, list[float], float]:
    vad = CuedVAD()
    model = ModelWithoutUserSpeech()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model), wake_up=WAKE_UP, vad=vad)
    woken: list[float] = []
    session.on_wake_up = lambda: woken.append(asyncio.get_running_loop().time())
    rec = Recorder()
    rec.attach(session, "agent_state_changed", "user_state_changed", "metrics_collected", "false_interruption")
    await session.start(transport=transport)
    await transport.feed(AudioFrame(np.zeros((16000, 1), np.int16), 16000), realtime=False)  # 1 s heard before
    await settle(0.5)
    frame = AudioFrame(np.zeros((320, 1), np.int16), 16000)
    answer = tone(ANSWER)
    for event in order:
        if event in ("vad_start", "vad_stop"):
            vad.cued.append("start" if event == "vad_start" else "end")
            transport.push_audio(frame)
        elif event == "transcript":
            model.channel.emit(AgentTranscript("the answer", final=True, response_id="r1"))
        elif event == "audio":
            model.channel.emit(AgentAudio(answer, response_id="r1"))
        else:
            model.channel.emit(ResponseDone(usage={"output_tokens": 3}, response_id="r1"))
        await settle(UTTERANCE if event == "vad_start" else STEP)
    last_event = asyncio.get_running_loop().time()
    return session, rec, woken, last_event


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
@virtual_clock
async def test_every_order_of_vad_and_answer_gives_one_answered_turn(order: tuple[str, ...]) -> None:
    session, rec, woken, last_event = await play(order)
    await settle(ANSWER + 1.0)  # the answer has played out
    states = rec.agent_states()
    assert "speaking" in states, states
    assert "thinking" not in states[states.index("speaking"):], states  # nothing awaited once it answered
    assert session.agent_state.value == "idle", states  # no turn waits for an answer already given
    assert rec.of("false_interruption") == []  # the answer to the utterance is no barge-in on it
    (metrics,) = rec.of("metrics_collected")
    assert metrics["trigger"] == "user" and not metrics["interrupted"]
    assert metrics["e2e"] is not None and metrics["e2e"] >= 0
    idle_at = max(t for t, n, d in rec.events if n == "agent_state_changed")
    await settle(12.0)  # past UNANSWERED_AFTER: nothing was left waiting
    assert len(rec.of("metrics_collected")) == 1 and rec.agent_states()[-1] == "idle"
    assert woken == [pytest.approx(idle_at + WAKE_UP, abs=0.05)]  # the wake-up re-armed once the turn was over
    assert idle_at <= last_event + ANSWER + 0.5
    await session.close()
