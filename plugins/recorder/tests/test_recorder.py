"""The recorder's parts: redaction, thread-safe whole-line writes, and a session recorded in-process."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from agentsession import Agent, AgentSession, RealTimePipeline, function_tool, mask, protect_secret
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, FakeTransport, run_virtual
from agentsession_recorder import DIR_ENV, Redactor, SessionRecorder, is_secret_field
from agentsession_recorder._redact import env_secrets


@pytest.mark.parametrize("name", ["api_key", "apiKey", "OPENAI_API_KEY", "auth_token", "authToken", "password",
                                  "Authorization", "client_secret", "x-api-key", "token", "accessKeyId"])
def test_secret_fields(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize("name", ["city", "output_tokens", "input_tokens", "max_tokens", "author", "keyboard",
                                  "turn", "usage", "monkey"])
def test_ordinary_fields(name: str) -> None:
    assert not is_secret_field(name)


def test_redactor_masks_secret_fields_known_values_and_key_shapes() -> None:
    secret = "vsdk-token-0123456789abcdef"
    redact = Redactor([secret])
    data = {
        "arguments": {"city": "Paris", "api_key": "abc123456789xyz", "nested": [{"password": 1234}]},
        "text": f"the token is {secret}, and sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ leaked",
        "usage": {"output_tokens": 10},
        "ok": True,
    }
    out = redact(data)
    assert out["arguments"]["city"] == "Paris"
    assert out["arguments"]["api_key"] == mask("abc123456789xyz")
    assert out["arguments"]["nested"] == [{"password": mask("1234")}]
    assert secret not in out["text"] and mask(secret) in out["text"]
    assert "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ" not in out["text"]
    assert out["usage"] == {"output_tokens": 10} and out["ok"] is True
    assert data["arguments"]["api_key"] == "abc123456789xyz", "the input is not modified"


def test_a_secret_a_plugin_was_given_in_code_is_masked_too() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.room-token-given-in-code"
    protect_secret(token)  # what a plugin does with the key or token it was handed
    out = Redactor()({"error": f"joining with {token} failed"})
    assert token not in out["error"] and mask(token) in out["error"]


def test_env_secrets_are_the_values_of_secret_named_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-aaaaaaaaaaaa", "VIDEOSDK_AUTH_TOKEN": "eyJhbGciOi.x.y", "HOME": "/root",
           "SHORT_TOKEN": "abc", "MY_SECRET": "hunter2hunter2"}
    assert set(env_secrets(env)) == {"sk-aaaaaaaaaaaa", "eyJhbGciOi.x.y", "hunter2hunter2"}


def test_concurrent_records_are_whole_lines(tmp_path: Path) -> None:
    rec = SessionRecorder(tmp_path / "s.jsonl", started=1000.0, redactor=Redactor())
    threads = [
        threading.Thread(target=lambda i=i: [rec.record("tick", 1000.0 + n, thread=i, n=n, pad="x" * 5000)
                                             for n in range(200)])
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.close()
    rec.record("late", 2000.0)  # after close: appended all the same
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(lines) == 8 * 200 + 1
    assert sorted((r["thread"], r["n"]) for r in lines[:-1]) == [(i, n) for i in range(8) for n in range(200)]
    assert lines[-1] == {"event": "late", "t": 1000.0, "time": 2000.0}


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Weather.")

    @function_tool
    async def get_weather(self, city: str) -> str:
        """The weather.

        Args:
            city: the city
        """
        return f"sunny in {city}"


async def _converse() -> None:
    model = FakeRealtimeModel([FakeResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"})],
                                            then=FakeResponse(text="Sunny in Oslo."))])
    session = AgentSession(Weather(), RealTimePipeline(model))
    transport = FakeTransport()
    await transport.start()
    await session.start(transport=transport)
    result = await session.run(user_input="Weather in Oslo?")
    assert "Sunny" in result.text
    await session.close("done")
    await transport.close()


def test_a_session_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    monkeypatch.setenv("AGENTSESSION_RECORD", "1")
    monkeypatch.delenv("AGENTSESSION_DISABLE_PLUGINS", raising=False)
    run_virtual(_converse())
    [path] = tmp_path.glob("*-Weather-*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "session_started" and records[0]["tools"] == ["get_weather"]
    assert {"user_transcript", "agent_transcript", "tool_call", "metrics", "agent_state",
            "session_closed"} <= set(kinds)
    assert next(r for r in records if r["event"] == "user_transcript") | {"t": 0, "time": 0} == {
        "event": "user_transcript", "t": 0, "time": 0, "text": "Weather in Oslo?", "typed": True}
    tool = next(r for r in records if r["event"] == "tool_call")
    assert tool["arguments"] == {"city": "Oslo"} and tool["result"] == "sunny in Oslo"
    assert next(r for r in records if r["event"] == "session_closed")["reason"] == "done"
    assert [r["trigger"] for r in records if r["event"] == "metrics"] == ["text"]  # the tool's answer included


def test_recording_is_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Installed, the recorder records nothing until AGENTSESSION_RECORD=1; then it says where it writes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DIR_ENV, raising=False)
    monkeypatch.delenv("AGENTSESSION_RECORD", raising=False)
    monkeypatch.delenv("AGENTSESSION_DISABLE_PLUGINS", raising=False)
    caplog.set_level(logging.INFO, "agentsession.recorder")
    from agentsession_recorder import plugin

    monkeypatch.setattr(plugin, "_hinted", False)
    run_virtual(_converse())
    assert list(tmp_path.iterdir()) == [] and not caplog.records
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "kept"))  # the folder alone, as before: a hint, no recording
    run_virtual(_converse())
    assert not (tmp_path / "kept").exists()
    assert caplog.messages == [f"{DIR_ENV} is set but sessions are not recorded: export AGENTSESSION_RECORD=1 "
                               "to record them"]
    caplog.clear()
    monkeypatch.delenv(DIR_ENV)
    monkeypatch.setenv("AGENTSESSION_RECORD", "1")
    run_virtual(_converse())
    [path] = (tmp_path / "recordings").glob("*.jsonl")  # the default folder
    assert caplog.messages == [f"recording the session to {path.resolve()} (AGENTSESSION_RECORD=1)"]
