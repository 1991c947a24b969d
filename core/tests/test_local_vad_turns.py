"""One rule for user turns heard by the session's own VAD (a model that reports no user speech, like Gemini Live):
every order of the VAD's start/stop and the model's answer (transcript, audio, turn end) gives one answered turn,
never THINKING once the answer played, no turn left waiting ``UNANSWERED_AFTER`` s, and the wake-up re-armed."""

from __future__ import annotations

import numpy as np
import pytest

from agentsession import AgentSession, AudioFrame, RealTimePipeline
from agentsession.plugin import AgentAudio, AgentTranscript, ResponseDone
from agentsession.testing import (
    LOCAL_VAD_ORDERS,
    CuedVAD,
    FakeRealtimeModel,
    FakeTransport,
    TurnWatch,
    tone,
    virtual_clock,
)
from core_helpers import QuietAgent, settle

STEP = 0.1  # seconds between two events of a scenario (under the session's LATE_VAD_GRACE)
UTTERANCE = 0.8  # the VAD hears the user this long at least (over min_interruption_duration: a barge-in would fire)
ANSWER = 0.6  # seconds of answer audio
WAKE_UP = 3.0


class ModelWithoutUserSpeech(FakeRealtimeModel):
    reports_user_speech = False


def test_the_orders_cover_every_sensible_case() -> None:
    # 2 orders of the model's events x (the VAD starts first: 4 places for its stop; just after the answer
    # started: 3 places)
    assert len(LOCAL_VAD_ORDERS) == 14
    assert ("vad_start", "vad_stop", "transcript", "audio", "done") in LOCAL_VAD_ORDERS
    assert ("audio", "vad_start", "transcript", "done", "vad_stop") in LOCAL_VAD_ORDERS
    assert ("transcript", "audio", "vad_start", "vad_stop", "done") not in LOCAL_VAD_ORDERS  # older than the grace
    assert ("vad_start", "vad_stop", "done", "audio", "transcript") not in LOCAL_VAD_ORDERS


@pytest.mark.parametrize("order", LOCAL_VAD_ORDERS, ids=["-".join(o) for o in LOCAL_VAD_ORDERS])
@virtual_clock
async def test_every_order_of_vad_and_answer_gives_one_answered_turn(order: tuple[str, ...]) -> None:
    vad = CuedVAD()
    model = ModelWithoutUserSpeech()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model), wake_up=WAKE_UP, vad=vad)
    watch = TurnWatch().attach(session)
    await session.start(transport=transport)
    await transport.feed(AudioFrame(np.zeros((16000, 1), np.int16), 16000), realtime=False)  # 1 s heard before
    await settle(0.5)
    frame = AudioFrame(np.zeros((320, 1), np.int16), 16000)
    for event in order:
        if event in ("vad_start", "vad_stop"):
            vad.cue("start" if event == "vad_start" else "end")
            transport.push_audio(frame)
        elif event == "transcript":
            model.channel.emit(AgentTranscript("the answer", final=True, response_id="r1"))
        elif event == "audio":
            model.channel.emit(AgentAudio(tone(ANSWER), response_id="r1"))
        else:
            model.channel.emit(ResponseDone(usage={"output_tokens": 3}, response_id="r1"))
        await settle(UTTERANCE if event == "vad_start" else STEP)
    await settle(ANSWER + 1.0)
    assert session.agent_state.value == "idle", watch.states  # played out: no turn waits for an answer given
    await settle(12.0)  # past UNANSWERED_AFTER
    watch.assert_one_answered_turn(WAKE_UP)
    await session.close()
    await transport.close()


@virtual_clock
async def test_an_answer_older_than_the_grace_is_barged_in_on_and_the_speech_is_a_turn_of_its_own() -> None:
    """The model spoke by itself 0.5 s (> LATE_VAD_GRACE) before the VAD heard the user: the user talks over it
    (a barge-in once min_interruption_duration passed), and their speech awaits an answer of its own."""
    vad = CuedVAD()
    model = ModelWithoutUserSpeech()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model), vad=vad)
    watch = TurnWatch().attach(session)
    await session.start(transport=transport)
    frame = AudioFrame(np.zeros((320, 1), np.int16), 16000)
    model.channel.emit(AgentAudio(tone(3.0), response_id="r1"))
    await settle(0.5)
    vad.cue("start")
    transport.push_audio(frame)
    await settle(UTTERANCE)
    vad.cue("end")
    transport.push_audio(frame)
    await settle(0.1)
    assert [(m["trigger"], m["interrupted"]) for m in watch.metrics] == [("model", True)]
    assert session.agent_state.value == "thinking"  # the user's turn awaits its answer
    await session.close()
    await transport.close()


@virtual_clock
async def test_an_answer_given_before_the_vads_end_of_speech_counts_e2e_from_where_the_user_stopped() -> None:
    """The VAD reports the end 0.5 s after the user's last voiced audio; the model began answering 0.2 s before
    that report and played 0.1 s later: the user waited 0.5 - 0.2 + 0.1 = 0.4 s."""
    vad = CuedVAD(silence=0.5)
    model = ModelWithoutUserSpeech()
    transport = FakeTransport()
    await transport.start()
    session = AgentSession(QuietAgent(), RealTimePipeline(model), vad=vad)
    watch = TurnWatch().attach(session)
    await session.start(transport=transport)
    await transport.feed(AudioFrame(np.zeros((16000, 1), np.int16), 16000), realtime=False)
    frame = AudioFrame(np.zeros((320, 1), np.int16), 16000)
    vad.cue("start")
    transport.push_audio(frame)
    await settle(UTTERANCE)
    model.channel.emit(AgentTranscript("the answer", final=True, response_id="r1"))
    await settle(0.1)
    model.channel.emit(AgentAudio(tone(ANSWER), response_id="r1"))
    await settle(0.1)
    vad.cue("end")
    transport.push_audio(frame)
    await settle(0.1)
    model.channel.emit(ResponseDone(response_id="r1"))
    await settle(ANSWER + 0.5)
    (metrics,) = watch.metrics
    assert metrics["e2e"] == pytest.approx(0.4, abs=0.03)
    assert metrics["ttfa"] == pytest.approx(0.1, abs=0.03)  # the model's own part: its start -> its audio
    await session.close()
    await transport.close()
