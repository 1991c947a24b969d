"""Test kit: fakes for every component, a virtual clock, and contract suites for plugin authors."""

from __future__ import annotations

from .._clock import VirtualClockEventLoop, run_virtual, virtual_clock
from ._contracts import LLMContract, RealtimeModelContract, STTContract, TransportContract, TTSContract, VADContract
from ._fake_model import FakeRealtimeModel, FakeResponse, FakeToolCall, tone
from ._fake_transport import FakeTransport
from ._link_contract import (
    EventRecorder,
    ProviderLinkContract,
    every,
    find_pcm,
    is_event,
    push_in_time,
    quiet_noise,
    slow_loris,
    voice_pcm,
)
from ._replay import ReplayResult, assert_replays, replay_cassette
from ._stt_stream_contract import STTStreamContract, frames_of
from ._turn_orders import LOCAL_VAD_ORDERS, MODEL_EVENTS, CuedVAD, TurnWatch
from ._waiting import read_events, wait_for_state

__all__ = [
    "CuedVAD",
    "LOCAL_VAD_ORDERS",
    "MODEL_EVENTS",
    "TurnWatch",
    "ReplayResult",
    "assert_replays",
    "replay_cassette",
    "EventRecorder",
    "ProviderLinkContract",
    "every",
    "find_pcm",
    "is_event",
    "push_in_time",
    "quiet_noise",
    "slow_loris",
    "voice_pcm",
    "FakeRealtimeModel",
    "FakeResponse",
    "FakeToolCall",
    "FakeTransport",
    "LLMContract",
    "RealtimeModelContract",
    "STTContract",
    "STTStreamContract",
    "TTSContract",
    "TransportContract",
    "VADContract",
    "VirtualClockEventLoop",
    "run_virtual",
    "read_events",
    "tone",
    "frames_of",
    "virtual_clock",
    "wait_for_state",
]
