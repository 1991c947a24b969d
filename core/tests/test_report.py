"""``agentsession report``'s tables and percentiles per stage, and the timeline's stage and interruption marks,
on recordings written the way the recorder writes them (``TurnMetrics.as_dict()`` per ``metrics`` line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentsession._metrics import TurnMetrics
from agentsession._report import Recording, plot_timeline, render_text

START = 1_700_000_000.0


def _record(event: str, t: float, **data: Any) -> dict[str, Any]:
    return {"event": event, "t": t, "time": START + t, **data}


def _metrics(t: float, m: TurnMetrics) -> dict[str, Any]:
    data = m.as_dict()
    data.pop("timestamp")
    return _record("metrics", t, **data)


def _cascade_turn(n: int, t0: float, *, stt: float, ttft: float, interrupted: bool = False) -> TurnMetrics:
    m = TurnMetrics(turn=n, trigger="user", eou_delay=0.5, stt_latency=stt, llm_ttft=ttft, llm_duration=ttft + 0.4,
                    tts_ttfb=0.12, ttfa=stt + ttft + 0.2, e2e=0.5 + stt + ttft + 0.25, interrupted=interrupted,
                    started_at=START + t0, end_of_turn_reason="silence", audio_generated=2.1,
                    audio_played=1.3 if interrupted else 2.1, interrupted_at=1.3 if interrupted else None,
                    speech_id=f"speech_{n}")
    m.add_usage({"prompt_tokens": 100 * n, "completion_tokens": 10 * n})
    return m


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def cascade(tmp_path: Path) -> Path:
    stts = [0.2, 0.3, 0.25, 0.9]
    ttfts = [0.4, 0.35, 0.5, 0.45]
    records = [_record("session_started", 0.0, session_id="abc", agent="Helper", pipeline="CascadingPipeline",
                       model="stt=FakeSTT, llm=FakeLLM, tts=FakeTTS", transport="FakeTransport")]
    greeting = TurnMetrics(turn=1, trigger="say", ttfa=0.3, e2e=0.32, started_at=START + 0.1, audio_generated=1.0,
                           audio_played=1.0)
    records.append(_metrics(1.5, greeting))
    t = 2.0
    for i, (stt, ttft) in enumerate(zip(stts, ttfts, strict=True)):
        records.append(_record("user_state", t, state="speaking", previous="idle"))
        records.append(_record("user_state", t + 1.0, state="idle", previous="speaking"))
        records.append(_record("user_transcript", t + 1.6, text=f"question {i + 1} " * 12))
        interrupted = i == 1
        m = _cascade_turn(i + 2, t + 1.0, stt=stt, ttft=ttft, interrupted=interrupted)
        if i == 0:
            m.add_tool("get_weather", 0.4, call_id="c1")
            records.append(_record("tool_call", t + 2.2, call_id="c1", name="get_weather", arguments={}, result="x",
                                   is_error=False, duration=0.4))
        records.append(_record("agent_state", t + 1.0 + m.e2e, state="speaking", previous="thinking"))  # type: ignore[operator]
        done = t + 1.0 + m.e2e + (1.3 if interrupted else 2.1)  # type: ignore[operator]
        records.append(_record("agent_state", done, state="idle", previous="speaking"))
        records.append(_metrics(done, m))
        records.append(_record("agent_transcript", done + 0.01, text="an answer that is rather long " * 5))
        t = done + 1.0
    records.append(_record("session_closed", t, reason="closed"))
    return _write(tmp_path / "cascade.jsonl", records)


def test_the_report_fits_80_columns_and_shows_only_the_stages_measured(cascade: Path) -> None:
    out = render_text(Recording.load(cascade))
    assert max(len(line) for line in out.splitlines() if not line.startswith("session ")) <= 80, out
    header = next(line for line in out.splitlines() if line.startswith("turn  trigger"))
    assert header.split() == ["turn", "trigger", "eou", "stt", "ttft", "llm", "tts", "ttfa", "e2e", "heard/gen", "s"]
    assert "model" not in header.split()  # nobody measured a realtime model's first audio
    row = next(line for line in out.splitlines() if line.startswith("3 "))
    assert row.split() == ["3", "user", "(interrupted)", "500", "300", "350", "750", "120", "850", "1400",
                           "1.3/2.1"]
    greeting = next(line for line in out.splitlines() if line.startswith("1 "))
    assert greeting.split()[:5] == ["1", "say", "-", "-", "-"]  # not measured: '-', never 0
    assert "turn 3 (user) done at" in out and "interrupted at 1.30 s" in out and "ended by silence" in out
    assert "tools: get_weather 400 ms" in out
    assert "tokens (as the provider reported them): 1400 in, 140 out" in out


def test_percentiles_per_stage_over_the_users_turns(cascade: Path) -> None:
    rec = Recording.load(cascade)
    stats = rec.latency_stats()
    assert list(stats) == ["eou_delay", "stt_latency", "llm_ttft", "llm_duration", "tts_ttfb", "ttfa", "e2e",
                           "tool_duration"]
    stt = [0.2, 0.3, 0.25, 0.9]
    assert stats["stt_latency"]["n"] == 4
    assert stats["stt_latency"]["p50"] == pytest.approx(float(np.percentile(stt, 50)))
    assert stats["stt_latency"]["p95"] == pytest.approx(float(np.percentile(stt, 95)))
    assert stats["stt_latency"]["max"] == pytest.approx(0.9)
    assert stats["ttfa"]["n"] == 4  # the greeting (a "say") is not a user turn
    out = render_text(rec).splitlines()
    line = next(x for x in out if x.split()[:1] == ["stt_latency"])
    assert line.split() == ["stt_latency", "4", f"{np.percentile(stt, 50) * 1000:.0f}",
                            f"{np.percentile(stt, 95) * 1000:.0f}", "900"]
    summary = rec.summary()
    turn = summary["turns"][2]
    assert turn["interrupted_at"] == 1.3 and turn["audio_played"] == 1.3 and turn["audio_generated"] == 2.1
    assert turn["stt_latency"] == 0.3 and turn["input_tokens"] == 300 and turn["end_of_turn_reason"] == "silence"
    assert summary["turns"][1]["tool_calls"] == [{"name": "get_weather", "duration": 0.4, "is_error": False,
                                                  "call_id": "c1"}]


def test_an_old_recording_still_reads(tmp_path: Path) -> None:
    path = _write(tmp_path / "old.jsonl", [
        _record("session_started", 0.0, session_id="x"),
        _record("metrics", 2.0, turn=1, trigger="user", eou_delay=0.4, ttfa=0.5, e2e=1.0, interrupted=False,
                audio_duration=1.0, usage={}),
        _record("session_closed", 3.0, reason="closed"),
    ])
    out = render_text(Recording.load(path))
    header = next(line for line in out.splitlines() if line.startswith("turn  trigger"))
    assert header.split() == ["turn", "trigger", "eou", "ttfa", "e2e"]
    assert "tokens" not in out


def test_the_timeline_marks_stages_and_interruptions(cascade: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plt = pytest.importorskip("matplotlib.pyplot", reason="the plot needs the 'plot' extra")
    figures: list[Any] = []
    monkeypatch.setattr(plt, "close", figures.append)
    png = tmp_path / "timeline.png"
    plot_timeline(Recording.load(cascade), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timeline, chart = figures[0].axes
    legend = [t.get_text() for t in timeline.get_legend().get_texts()]
    assert {"interrupted", "eou", "stt", "ttft", "tts"} <= set(legend) and "model" not in legend
    notes = [t.get_text() for t in timeline.texts]
    assert "cut at 1.3 s" in notes and "turn 3: user (interrupted)" in notes
    dashed = [line for line in timeline.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1  # one interrupted turn
    bars = [t.get_text() for t in chart.get_legend().get_texts()]
    assert any(b.startswith("stt_latency  p50 ") for b in bars) and len(bars) == 7
