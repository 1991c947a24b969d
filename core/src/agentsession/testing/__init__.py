"""Test kit: fakes for every component, a virtual clock, and contract suites for plugin authors.

The fakes, the clock and the helpers import without pytest (``agentsession fakes`` serves the fake providers
in a plain install); the contract suites are pytest classes, loaded on first use (``agentsession[testing]``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._clock import VirtualClockEventLoop, run_virtual, virtual_clock
from ._fake_model import FakeRealtimeModel, FakeResponse, FakeToolCall, tone
from ._fake_transport import FakeTransport
from ._faults import every, slow_loris
from ._replay import ReplayResult, assert_replays, replay_cassette
from ._turn_orders import LOCAL_VAD_ORDERS, MODEL_EVENTS, CuedVAD, TurnWatch
from ._waiting import read_events, wait_for_state

if TYPE_CHECKING:
    from ._contracts import (
        LLMContract,
        RealtimeModelContract,
        STTContract,
        TransportContract,
        TTSContract,
        VADContract,
    )
    from ._link_contract import (
        EventRecorder,
        ProviderLinkContract,
        find_pcm,
        is_event,
        push_in_time,
        quiet_noise,
        voice_pcm,
    )
    from ._stt_stream_contract import STTStreamContract, frames_of

# the names whose modules need pytest, and those modules
_WITH_PYTEST = {
    **dict.fromkeys(("LLMContract", "RealtimeModelContract", "STTContract", "TransportContract", "TTSContract",
                     "VADContract"), "_contracts"),
    **dict.fromkeys(("EventRecorder", "ProviderLinkContract", "find_pcm", "is_event", "push_in_time", "quiet_noise",
                     "voice_pcm"), "_link_contract"),
    **dict.fromkeys(("STTStreamContract", "frames_of"), "_stt_stream_contract"),
}


def __getattr__(name: str) -> Any:
    module = _WITH_PYTEST.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    except ModuleNotFoundError as exc:
        if exc.name != "pytest":
            raise
        raise ModuleNotFoundError(f"agentsession.testing.{name} is a pytest suite: pip install "
                                  "'agentsession[testing]'", name="pytest") from None
    globals()[name] = value
    return value


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
