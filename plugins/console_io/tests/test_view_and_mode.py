"""The live view (terminal and plain), the ``console`` command-line mode and the plugin's entry point."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import io
import logging
import re
import time
from typing import Any

import pytest
from rich.console import Console

from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, WorkerJob, function_tool
from agentsession.plugin import TurnMetrics
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall
from agentsession_console_io import (
    ConsoleMode,
    ConsoleTransport,
    ConsoleView,
    LatencyBudgets,
    _mode,
    _transport,
    plugin,
)

TIMEOUT = 10.0


class ClockAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Tell the time.")

    @function_tool
    async def get_time(self, zone: str = "UTC") -> str:
        """The current time.

        Args:
            zone: a time zone
        """
        return "12:00"


def terminal(width: int = 110) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, color_system="truecolor"), out


async def test_live_view_shows_a_whole_conversation_on_a_terminal(fake_sd: Any) -> None:
    console, out = terminal()
    view = ConsoleView(console, refresh_hz=20, history=30)
    assert view.live
    transport = ConsoleTransport(backend=fake_sd, view=view)
    await transport.start()
    model = FakeRealtimeModel([FakeResponse(text="let me look", audio=0.2, delay=0.02,
                                            tool_calls=[FakeToolCall("get_time", {"zone": "CET"})],
                                            then=FakeResponse(text="it is noon", audio=0.2, delay=0.02))])
    session = AgentSession(ClockAgent(), RealTimePipeline(model))
    await session.start(transport=transport)
    try:
        result = await session.run(user_input="what time is it?", timeout=TIMEOUT)
        assert "it is noon" in result.text
        await asyncio.sleep(0.1)  # one more redraw at 20 Hz
        assert "agentsession console" in out.getvalue() and "Fake Mic" in out.getvalue()
        assert view.redraws > 0
    finally:
        await session.close()
        await transport.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    for expected in ("you typed: what time is it?", "agent: let me look", 'tool get_time({"zone": "CET"}) -> 12:00',
                     "agent: it is noon", "turn 1 (text)", "first audio", "session summary"):
        assert expected in text, expected
    assert "\x1b[" in out.getvalue()  # styled for a terminal


def test_view_renders_state_meter_partials_and_colours_latency_by_budget() -> None:
    console, _ = terminal()
    view = ConsoleView(console, live=True, budgets=LatencyBudgets(eou_delay=0.5, ttfa=0.5, e2e=1.0))
    view._on_user_state({"state": "speaking"})
    view._on_agent_state({"state": "thinking"})
    view.input_level(-12.0, muted=True)
    view._on_user_transcript({"text": "hello ", "final": False})
    view._on_user_transcript({"text": "there", "final": False})
    view._on_agent_transcript({"text": "Hi, ", "final": False})
    view._on_metrics({"turn": 3, "trigger": "user", "eou_delay": 0.2, "ttfa": 0.45, "e2e": 1.4, "interrupted": True})
    record = Console(record=True, width=110, file=io.StringIO())
    record.print(view._render())
    shown = record.export_text()
    assert "speaking" in shown and "thinking" in shown
    assert "-12.0 dB" in shown and "muted (agent speaking)" in shown
    assert "you: hello there" in shown and "agent: Hi," in shown
    assert "turn 3 (user)  eou 200  ttfa 450  e2e 1400 ms  cut" in shown
    assert [view._latency(k, v).style for k, v in (("eou_delay", 0.2), ("ttfa", 0.45), ("e2e", 1.4))] == \
        ["green", "yellow", "red"]
    assert view.meter().plain.count("#") == round(24 * (1 - 12 / 60))
    view.input_level(float("-inf"), muted=False)
    assert "-inf dB" in view.meter().plain and "#" not in view.meter().plain


def test_without_a_terminal_the_view_writes_plain_lines() -> None:
    out = io.StringIO()
    view = ConsoleView(Console(file=out))
    assert not view.live
    view._on_agent_state({"state": "speaking"})
    view._on_agent_transcript({"text": "partial", "final": False})
    view._on_agent_transcript({"text": "Hello there.", "final": True})
    view._on_tool({"name": "lookup", "arguments": "{}", "result": "x" * 200, "duration": 0.0123, "is_error": False})
    view._on_metrics({"turn": 1, "trigger": "say", "eou_delay": None, "ttfa": 0.3, "e2e": 0.31})
    view.error("boom")
    view.stop({"played_s": 1.5})
    lines = out.getvalue().splitlines()
    assert lines[:5] == [
        "agent speaking",
        "agent: Hello there.",
        f"tool lookup({{}}) -> {'x' * 77}... (12 ms)",
        "turn 1 (say)  ttfa 300  e2e 310 ms",
        "error: boom",
    ]
    assert "\x1b[" not in out.getvalue()
    assert "session summary" in out.getvalue() and "played_s 1.5" in out.getvalue()


async def test_redraws_are_throttled_and_logging_goes_through_the_view(fake_sd: Any) -> None:
    console, out = terminal()
    handler = logging.StreamHandler(__import__("sys").stderr)
    logging.getLogger().addHandler(handler)
    view = ConsoleView(console, refresh_hz=10)
    transport = ConsoleTransport(backend=fake_sd, view=view)
    try:
        await transport.start()
        started = time.monotonic()
        assert handler.stream is not __import__("sys").__stderr__
        logging.getLogger("somewhere").warning("a log line while the panel is up")
        await asyncio.sleep(0.5)  # the microphone delivers 25 blocks meanwhile
        elapsed = time.monotonic() - started
        assert transport.stats()["input_blocks"] >= 5  # (25 on an idle machine)
        assert 1 <= view.redraws <= elapsed * 10 + 1  # at most refresh_hz, however many blocks came
        render_start = time.perf_counter()
        for _ in range(20):
            Console(file=io.StringIO(), force_terminal=True, width=110).print(view._render())
        per_redraw = (time.perf_counter() - render_start) / 20
        # a sanity bound, not a benchmark: ~2 ms here; a redraw near a block's 20 ms would starve audio
        assert per_redraw < 0.1, f"a redraw takes {per_redraw * 1000:.1f} ms"
    finally:
        await transport.close()
        logging.getLogger().removeHandler(handler)
    assert handler.stream is __import__("sys").stderr
    assert "a log line while the panel is up" in out.getvalue()


def test_options_build_the_transport() -> None:
    parser = argparse.ArgumentParser()
    ConsoleMode().add_arguments(parser)
    options = parser.parse_args(["--input-device", "3", "--output-device", "USB", "--sample-rate", "16000",
                                 "--half-duplex", "--no-playback"])
    transport = ConsoleMode.transport_for(options)
    assert (transport.input_device, transport.output_device, transport.requested_rate) == ("3", "USB", 16000)
    assert transport.half_duplex and not transport.playback and not transport.text
    assert isinstance(transport.view, ConsoleView)
    text = ConsoleMode.transport_for(parser.parse_args(["--text"]))
    assert text.text and text.playback and text.view is not None and not text.view.live
    with pytest.raises(SystemExit):
        parser.parse_args(["--sample-rate", "12345"])


def test_the_plugin_provides_the_console_mode_through_its_entry_point() -> None:
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="agentsession")}
    assert points.get("console_io") == "agentsession_console_io.plugin"
    modes = plugin.agentsession_transports()
    assert isinstance(modes["console"], ConsoleMode) and modes["console"].help


def test_list_devices_prints_them_and_exits(monkeypatch: pytest.MonkeyPatch, fake_sd: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_mode, "load_sounddevice", lambda: fake_sd)
    with pytest.raises(SystemExit) as exit_info:
        WorkerJob(entrypoint=_never).run(["console", "--list-devices"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert "<     0   1    0   48000  Fake Mic, Fake API" in shown
    assert " >    1   0    2   48000  Fake Speakers, Fake API" in shown


def test_a_device_problem_is_one_clear_line_and_exit_status_2(monkeypatch: pytest.MonkeyPatch, make_fake_sd: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_transport, "load_sounddevice", lambda: make_fake_sd(devices=[]))
    with pytest.raises(SystemExit) as exit_info:
        WorkerJob(entrypoint=_never).run(["console"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: no input device (microphone) found on this machine (--text types instead of speaking)"


def test_the_mode_runs_a_job_on_the_opened_devices(monkeypatch: pytest.MonkeyPatch, fake_sd: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_transport, "load_sounddevice", lambda: fake_sd)
    seen: dict[str, Any] = {}

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        seen["transport"] = ctx.transport
        session = AgentSession(ClockAgent(), RealTimePipeline(FakeRealtimeModel()))
        await session.start()
        await session.say("Hello from the console", wait_for_playback=True)
        seen["played"] = ctx.transport.played if ctx.transport else 0.0
        await session.close()
        await ctx.shutdown()

    assert WorkerJob(entrypoint=entrypoint).run(["console", "--half-duplex"]) == 0
    transport = seen["transport"]
    assert isinstance(transport, ConsoleTransport) and transport.half_duplex
    assert seen["played"] > 1.0
    assert all(s in fake_sd.closed for s in fake_sd.streams)
    assert "agent: Hello from the console" in capsys.readouterr().out


async def _never(ctx: JobContext) -> None:
    raise AssertionError("the job must not run")


REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def test_without_a_terminal_each_event_is_printed_once() -> None:
    """The parrot example prints its events itself; piped, the console view used to print each one again."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPO / "examples" / "parrot.py"), "console", "--text", "--no-playback"],
                          input="hello agent\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("agent said: You typed: hello agent") == 1  # the example's own line
    assert not any(line.startswith(("agent: You typed", "you typed:", "agent idle", "turn 2 (text) ")) for line in lines)
    assert any(line.startswith("(your agent prints agent_state_changed, agent_transcript") for line in lines)
    assert "session summary" in done.stdout  # the view's summary is still there


def test_the_plain_view_shows_what_the_app_does_not_print() -> None:
    out = io.StringIO()
    view = ConsoleView(Console(file=out), live=False)
    session = AgentSession(ClockAgent(), RealTimePipeline(FakeRealtimeModel()))
    session.on("agent_transcript", print)
    view.attach(session)
    session._emitter.emit("agent_transcript", {"text": "Hello there.", "final": True})
    session._emitter.emit("user_transcript", {"text": "Hi.", "final": True})
    assert out.getvalue().splitlines()[1:] == ["you: Hi."]


def test_a_device_that_stops_working_fails_the_job(monkeypatch: pytest.MonkeyPatch, fake_sd: Any,
                                                   capsys: pytest.CaptureFixture[str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_transport, "load_sounddevice", lambda: fake_sd)

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        session = AgentSession(ClockAgent(), RealTimePipeline(FakeRealtimeModel()))
        await session.start()
        fake_sd.stream("output").lose()
        print("ended:", await ctx.wait_for_shutdown())
        await session.close()
        await ctx.shutdown()

    assert WorkerJob(entrypoint=entrypoint).run(["console"]) == 1
    captured = capsys.readouterr()
    assert "ended: the output device 'Fake Speakers' stopped working" in captured.out
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["the job failed: the output device 'Fake Speakers' stopped working: its stream stopped "
                      "(device unplugged or lost?)"]


def test_the_doctor_checks_the_console_s_devices(monkeypatch: pytest.MonkeyPatch, make_fake_sd: Any) -> None:
    monkeypatch.setattr(_mode, "load_sounddevice", lambda: make_fake_sd())
    assert ConsoleMode().problems() == []
    monkeypatch.setattr(_mode, "load_sounddevice", lambda: make_fake_sd(devices=[]))
    assert [problem for problem, _ in ConsoleMode().problems()] == ["no microphone (input device) found",
                                                                   "no speakers (output device) found"]

    def missing() -> Any:
        raise _mode.ConsoleDeviceError("no PortAudio")

    monkeypatch.setattr(_mode, "load_sounddevice", missing)
    ((problem, fix),) = ConsoleMode().problems()
    assert problem == "the PortAudio library was not found" and "apt-get install libportaudio2" in fix


def _cascade_turn(turn: int, *, interrupted: bool = False) -> dict[str, Any]:
    metrics = TurnMetrics(turn=turn, trigger="user", eou_delay=0.5, stt_latency=0.21, llm_ttft=0.38,
                          llm_duration=1.24, tts_ttfb=0.14, ttfa=0.79, e2e=1.35, interrupted=interrupted,
                          audio_generated=2.1, audio_played=1.3 if interrupted else 2.1,
                          interrupted_at=1.3 if interrupted else None, end_of_turn_reason="silence")
    metrics.add_tool("get_weather", 0.412)
    return metrics.as_dict()


def test_the_turn_line_shows_each_stage_measured_and_where_a_turn_was_cut() -> None:
    view = ConsoleView(Console(file=io.StringIO()), live=True)
    cascade = view.turn_line(_cascade_turn(2, interrupted=True)).plain
    assert cascade == "turn 2 (user)  eou 500  stt 210  ttft 380  llm 1240  tools 1x 412  tts 140  e2e 1350 ms  cut at 1.3/2.1 s"
    realtime = TurnMetrics(turn=3, trigger="user", eou_delay=0.42, realtime_ttfa=0.38, ttfa=0.38, e2e=0.9)
    line = view.turn_line(realtime.as_dict()).plain
    assert line == "turn 3 (user)  eou 420  model 380  e2e 900 ms"  # ttfa is the model's: shown once
    assert len(line) <= 76  # inside the live panel at 80 columns
    styles = {span.style for span in view.turn_line(_cascade_turn(4)).spans}
    assert "green" in styles and "yellow" in styles  # stt 210 of 500 is green, e2e 1350 of 1500 yellow


def test_the_exit_summary_fits_80_columns_with_every_stage() -> None:
    console = Console(record=True, width=80, file=io.StringIO())
    view = ConsoleView(console, live=False)
    view.turns = [TurnMetrics(turn=1, trigger="say", ttfa=0.3, e2e=0.32, audio_generated=1.0,
                              audio_played=1.0).as_dict(),
                  _cascade_turn(2), _cascade_turn(3, interrupted=True),
                  TurnMetrics(turn=4, trigger="model", eou_delay=0.4, realtime_ttfa=0.61, ttfa=0.61, e2e=1.02,
                              audio_duration=0.8).as_dict()]
    console.print(view.summary({"played_s": 4.2}))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("turn"))
    # ttfa is left out: the stages say where the time went
    assert header.split() == ["turn", "trigger", "eou", "stt", "ttft", "llm", "tts", "model", "e2e", "tools",
                              "heard", "cut"]
    rows = {line.split()[0]: line.split() for line in lines if line.strip()[:1].isdigit()}
    assert rows["1"] == ["1", "say", "-", "-", "-", "-", "-", "-", "320", "1.0/1.0"]
    assert rows["3"] == ["3", "user", "500", "210", "380", "1240", "140", "-", "1350", "412", "1.3/2.1", "1.3"]
    assert rows["4"][-1] == "0.8"  # an older record: audio_duration is what was heard
    assert "e2e  end of speech -> first audio played" in text


@pytest.mark.parametrize("width", [44, 50, 57])
def test_the_exit_summary_on_a_narrow_terminal_explains_only_its_columns(width: int) -> None:
    console = Console(record=True, width=width, file=io.StringIO())
    view = ConsoleView(console, live=False)
    view.turns = [TurnMetrics(turn=1, trigger="user", eou_delay=0.5, realtime_ttfa=0.3, e2e=0.1 + 0.4,
                              audio_generated=1.0, audio_played=1.0).as_dict()]
    console.print(view.summary({"played_s": 1.38, "max_input_gap_ms": 0.1 + 0.2}))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    legend = [line.split()[0] for line in lines if re.match(r"^ *([a-z0-9]+|-)  [a-z]", line) and "trigger" not in line
              and not line.split()[0].isdigit()]
    assert legend == ["eou", "model", "e2e", "heard", "cut", "-"]  # the columns shown, one a line; no stt, llm, ...
    assert "0.5000000000000004" not in text and "0.30000000000000004" not in text and "max_input_gap_ms 0.3" in text


def test_metrics_read_as_people_write_them() -> None:
    record = TurnMetrics(turn=1, trigger="user", e2e=0.1 + 0.4, eou_delay=0.1 + 0.2).as_dict()
    assert (record["e2e"], record["eou_delay"]) == (0.5, 0.3)
    assert repr(record["e2e"]) == "0.5"


async def test_console_mode_keeps_library_request_logs_off_the_panel(monkeypatch: pytest.MonkeyPatch, fake_sd: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """httpx and friends log every request at INFO: in the console only their warnings show, unless DEBUG."""
    monkeypatch.setattr(_transport, "load_sounddevice", lambda: fake_sd)
    for name in ("httpx", "openai"):
        logging.getLogger(name).setLevel(logging.NOTSET)  # (conftest puts every level back after the test)
    caplog.set_level(logging.INFO)

    async def job(transport: Any) -> None:
        logging.getLogger("httpx").info('HTTP Request: POST https://api.openai.com/v1/audio/speech "200 OK"')
        logging.getLogger("httpx").warning("a retry")
        logging.getLogger("agentsession.test").info("ours")
        await transport.close()

    mode = ConsoleMode()
    parser = argparse.ArgumentParser()
    mode.add_arguments(parser)
    options = parser.parse_args(["--text", "--no-playback"])
    options.log_level = "INFO"
    mode.loop_factory(options)
    await mode.run(job)
    messages = [r.getMessage() for r in caplog.records]
    assert "a retry" in messages and "ours" in messages
    assert not any(m.startswith("HTTP Request") for m in messages)

