"""The server events ``OpenAIRealtime`` acts on are parsed as their own class of the SDK's: the same typed event
as the SDK's ``parse_event`` gives, for well-formed events and for malformed ones."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from agentsession_openai._realtime import _HANDLED, _parse_event
from agentsession_openai.fake.samples import MALFORMED, WELL_FORMED


def sdk_parse(data: dict[str, Any]) -> object:
    return AsyncRealtimeConnection.parse_event(cast(Any, None), json.dumps(data))


def test_every_event_acted_on_has_a_well_formed_sample() -> None:
    assert [d["type"] for d in WELL_FORMED] == list(_HANDLED)


@pytest.mark.parametrize("data", WELL_FORMED, ids=lambda d: d["type"])
def test_a_well_formed_event_is_the_sdks_validated_event(data: dict[str, Any]) -> None:
    _HANDLED[data["type"]].model_validate(data)  # the sample is well formed: the validated path is the one taken
    parsed = _parse_event(data["type"], json.loads(json.dumps(data)))
    assert type(parsed) is _HANDLED[data["type"]] and parsed == sdk_parse(data)


@pytest.mark.parametrize("data", MALFORMED, ids=lambda d: d["type"])
def test_a_malformed_event_is_built_leniently_as_the_sdk_builds_it(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _HANDLED[data["type"]].model_validate(data)
    parsed = _parse_event(data["type"], json.loads(json.dumps(data)))
    assert type(parsed) is _HANDLED[data["type"]] and parsed == sdk_parse(data)
