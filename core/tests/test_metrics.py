"""``TurnMetrics``: the per-turn record, its dict round trip and usage normalisation across providers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentsession._metrics import STAGES, ToolMetrics, TurnMetrics, normalize_usage


def _full() -> TurnMetrics:
    m = TurnMetrics(turn=3, trigger="user", eou_delay=0.42, ttfa=0.9, e2e=1.35, interrupted=True,
                    audio_duration=1.3, timestamp=1_700_000_010.5, speech_id="speech_ab12cd34",
                    started_at=1_700_000_005.0, end_of_turn_reason="turn_detector", stt_latency=0.18,
                    llm_ttft=0.35, llm_duration=0.9, tts_ttfb=0.12, audio_generated=2.1, audio_played=1.3,
                    interrupted_at=1.3)
    m.add_tool("get_weather", 0.4, call_id="call_1")
    m.add_tool("lookup", 0.05, is_error=True)
    m.add_usage({"input_tokens": 120, "output_tokens": 30, "input_token_details": {"cached_tokens": 0}})
    return m


def test_unmeasured_is_none_never_zero() -> None:
    m = TurnMetrics(turn=1, trigger="say")
    assert all(getattr(m, stage) is None for stage in STAGES)
    for name in ("end_of_turn_reason", "audio_generated", "audio_played", "interrupted_at", "input_tokens",
                 "output_tokens", "speech_id", "started_at"):
        assert getattr(m, name) is None, name
    assert m.tools == [] and m.stages() == {}


def test_as_dict_is_json_and_round_trips_through_from_dict() -> None:
    m = _full()
    data = json.loads(json.dumps(m.as_dict()))  # what a recording holds
    assert data["tools"] == [
        {"name": "get_weather", "duration": 0.4, "is_error": False, "call_id": "call_1"},
        {"name": "lookup", "duration": 0.05, "is_error": True, "call_id": None},
    ]
    back = TurnMetrics.from_dict(data)
    assert back == m
    assert back.tools[0] == ToolMetrics("get_weather", 0.4, False, "call_1")
    assert back.stages() == {"eou_delay": 0.42, "stt_latency": 0.18, "llm_ttft": 0.35, "llm_duration": 0.9,
                             "tts_ttfb": 0.12, "ttfa": 0.9, "e2e": 1.35}


def test_from_dict_reads_old_records_and_ignores_unknown_or_bad_values() -> None:
    old = {"turn": 2, "trigger": "user", "eou_delay": 0.3, "ttfa": None, "e2e": 1.1, "interrupted": False,
           "audio_duration": 2.0, "usage": {"output_tokens": 10}, "timestamp": 5.0, "event": "metrics", "t": 1.0}
    m = TurnMetrics.from_dict(old)
    assert (m.turn, m.trigger, m.eou_delay, m.ttfa, m.e2e, m.audio_duration) == (2, "user", 0.3, None, 1.1, 2.0)
    assert m.stt_latency is None and m.tools == [] and m.input_tokens is None
    odd = TurnMetrics.from_dict({"turn": 1, "trigger": "say", "e2e": "fast", "end_of_turn_reason": "magic",
                                 "tools": [{"name": "x", "duration": True}, "junk"], "input_tokens": 7.0})
    assert odd.e2e is None and odd.end_of_turn_reason is None
    assert odd.tools == [ToolMetrics("x", None)] and odd.input_tokens == 7


@pytest.mark.parametrize(("usage", "expected"), [
    # OpenAI Realtime / Responses (response.usage.model_dump())
    ({"total_tokens": 150, "input_tokens": 120, "output_tokens": 30,
      "input_token_details": {"audio_tokens": 100, "cached_tokens": 0}}, (120, 30)),
    # OpenAI Chat Completions
    ({"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}, (50, 12)),
    # Gemini Live usageMetadata as JSON (camelCase), thinking billed as output
    ({"promptTokenCount": 80, "responseTokenCount": 20, "thoughtsTokenCount": 5, "totalTokenCount": 105},
     (80, 25)),
    # the google-genai SDK's usage_metadata.model_dump() (snake_case), generateContent's candidates
    ({"prompt_token_count": 40, "candidates_token_count": 9, "total_token_count": 49}, (40, 9)),
    # nested under the provider's own name
    ({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}}, (3, 4)),
    # a provider that reports nothing countable
    ({"total_tokens": 10}, (None, None)),
    ({}, (None, None)),
])
def test_usage_is_normalised_across_providers(usage: dict[str, Any], expected: tuple[int | None, ...]) -> None:
    assert normalize_usage(usage) == expected


def test_add_usage_sums_over_the_responses_of_a_turn() -> None:
    m = TurnMetrics(turn=1, trigger="user")
    m.add_usage({"input_tokens": 100, "output_tokens": 20, "input_token_details": {"cached_tokens": 0}})
    m.add_usage({"input_tokens": 140, "output_tokens": 15, "input_token_details": {"cached_tokens": 64}})
    assert (m.input_tokens, m.output_tokens) == (240, 35)
    assert m.usage == {"input_tokens": 240, "output_tokens": 35, "input_token_details": {"cached_tokens": 64}}
    only_output = TurnMetrics(turn=2, trigger="say")
    only_output.add_usage({"output_tokens": 10})
    assert (only_output.input_tokens, only_output.output_tokens) == (None, 10)
