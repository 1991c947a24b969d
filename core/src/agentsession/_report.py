"""``agentsession report``: read a session recording (JSON lines), summarise its turns and latencies, plot it.

A recording is what ``agentsession-recorder`` writes: one JSON object per line, each with ``event`` (its
kind), ``t`` (seconds since the session started) and ``time`` (epoch seconds). Kinds: ``session_started``,
``user_state``/``agent_state`` (``state``, ``previous``), ``user_transcript``/``agent_transcript``
(``text``), ``tool_call`` (``name``, ``arguments``, ``result``, ``is_error``, ``duration``), ``metrics``
(the fields of ``TurnMetrics``), ``wake_up``, ``false_interruption``, ``error`` (``message``,
``recoverable``) and ``session_closed`` (``reason``). Lines that are not JSON objects are skipped and
counted, so a file cut short by a crash still reads.
"""

from __future__ import annotations

import importlib
import json
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._metrics import STAGE_LABELS, STAGE_MEANINGS, STAGES, TurnMetrics

#: the latency metrics of ``TurnMetrics``, in report order (the stages of a turn)
LATENCY_METRICS = STAGES
#: short column names of the stages (per-turn tables at 80 columns): each latency's one short name
STAGE_COLUMNS = STAGE_LABELS
#: the stages drawn back to back on the timeline from a turn's end of speech (the rest overlap them)
TIMELINE_STAGES = ("eou_delay", "stt_latency", "llm_ttft", "tts_ttfb", "realtime_ttfa")
STAGE_COLORS = {"eou_delay": "#95a5a6", "stt_latency": "#16a085", "llm_ttft": "#8e44ad", "llm_duration": "#c39bd3",
                "tts_ttfb": "#d35400", "realtime_ttfa": "#f2b134", "ttfa": "#f5cba7", "e2e": "#2e7dd7"}
#: what each stage measures (the legend under the report's tables)
STAGE_HELP = STAGE_MEANINGS
#: the triggers of turns the user started (typed or spoken): the latencies the report summarises
USER_TRIGGERS = ("user", "text")
#: how long after its turn's metrics an agent transcript still belongs to that turn, in seconds
TRANSCRIPT_SLACK = 0.05


@dataclass
class Turn:
    """One agent turn of a recording: its metrics and what was said and called in it."""

    turn: int
    trigger: str
    t: float
    latencies: dict[str, float | None]
    interrupted: bool = False
    user_text: str = ""
    agent_text: str = ""
    tools: list[str] = field(default_factory=list)
    metrics: TurnMetrics | None = None  # the whole record (per-stage fields, audio, tokens)
    started: float | None = None  # seconds since the session started of the turn's t0 (end of speech/request)


@dataclass
class Recording:
    """A parsed session recording."""

    path: Path
    records: list[dict[str, Any]]
    skipped_lines: int = 0

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """Read ``path``; records are returned in time order (ties keep file order, metrics last)."""
        path = Path(path)
        records: list[dict[str, Any]] = []
        skipped = 0
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    skipped += 1
                    continue
                if not isinstance(record, dict) or "event" not in record or not isinstance(record.get("t"), int | float):
                    skipped += 1
                    continue
                records.append(record)
        records.sort(key=lambda r: (float(r["t"]), r["event"] == "metrics"))
        return cls(path, records, skipped)

    @property
    def header(self) -> dict[str, Any]:
        """The ``session_started`` record (empty if missing)."""
        return next((r for r in self.records if r["event"] == "session_started"), {})

    @property
    def complete(self) -> bool:
        """Whether the session's close was recorded (False after a crash)."""
        return any(r["event"] == "session_closed" for r in self.records)

    @property
    def duration(self) -> float:
        return float(self.records[-1]["t"]) if self.records else 0.0

    def of(self, *events: str) -> list[dict[str, Any]]:
        """The records of the given kinds, in time order."""
        return [r for r in self.records if r["event"] in events]

    def turns(self) -> list[Turn]:
        """Each ``metrics`` record as a turn, with the transcripts and tool calls that belong to it.

        A turn's final agent transcript is recorded a moment after its metrics (both end the response), so
        it counts for the turn that ends within ``TRANSCRIPT_SLACK`` of it; a user transcript that comes
        after its turn was answered (speech-to-text can lag) goes back to that turn.
        """
        records = sorted(self.records, key=lambda r: (
            float(r["t"]) - (TRANSCRIPT_SLACK if r["event"] == "agent_transcript" else 0.0), r["event"] == "metrics"
        ))
        turns: list[Turn] = []
        user: list[str] = []
        agent: list[str] = []
        tools: list[str] = []
        spoke = False  # the user started speaking since the last turn ended
        for r in records:
            kind = r["event"]
            if kind == "user_state" and r.get("state") == "speaking":
                spoke = True
            elif kind == "user_transcript" and r.get("text"):
                last = turns[-1] if turns else None
                if not spoke and not user and last is not None and last.trigger == "user" and not last.user_text:
                    last.user_text = str(r["text"])
                else:
                    user.append(str(r["text"]))
            elif kind == "agent_transcript" and r.get("text"):
                agent.append(str(r["text"]) + (" [cut]" if r.get("interrupted") else ""))
            elif kind == "tool_call":
                tools.append(str(r.get("name", "?")) + (" (error)" if r.get("is_error") else ""))
            elif kind == "metrics":
                metrics = TurnMetrics.from_dict(r)
                epoch = _number(r.get("time"))  # the session's start, in epoch seconds, is time - t
                started = metrics.started_at - (epoch - float(r["t"])) \
                    if metrics.started_at is not None and epoch is not None else None
                turns.append(
                    Turn(
                        turn=int(r.get("turn", len(turns) + 1)),
                        trigger=str(r.get("trigger", "?")),
                        t=float(r["t"]),
                        latencies={m: getattr(metrics, m) for m in LATENCY_METRICS},
                        interrupted=metrics.interrupted,
                        user_text=" ".join(user),
                        agent_text=" ".join(agent),
                        tools=tools,
                        metrics=metrics,
                        started=started,
                    )
                )
                user, agent, tools, spoke = [], [], [], False
        return turns

    def latency_stats(self) -> dict[str, dict[str, float]]:
        """``{metric: {"n", "p50", "p95", "max"}}`` in seconds, over the user's turns where it was measured
        (what the user waited for: the agent's own turns, a greeting or an answer after a tool, are left out)."""
        return latency_stats([self])

    def latency_series(self) -> dict[str, list[float]]:
        """Each latency metric's values over the user's turns, and the tool durations, in seconds."""
        turns = [t for t in self.turns() if t.trigger in USER_TRIGGERS]
        series = {m: [v for t in turns if (v := t.latencies[m]) is not None] for m in LATENCY_METRICS}
        series["tool_duration"] = [float(r["duration"]) for r in self.of("tool_call")
                                   if _number(r.get("duration")) is not None]
        return series

    def summary(self) -> dict[str, Any]:
        """Everything the text report shows, as plain data (``--json``)."""
        return {
            "path": str(self.path),
            "session": {k: v for k, v in self.header.items() if k not in ("event", "t")},
            "complete": self.complete,
            "duration": self.duration,
            "skipped_lines": self.skipped_lines,
            "turns": [
                {"turn": t.turn, "trigger": t.trigger, "t": t.t, **t.latencies, "interrupted": t.interrupted,
                 "user": t.user_text, "agent": t.agent_text, "tools": t.tools, **_turn_extras(t)}
                for t in self.turns()
            ],
            "latency": self.latency_stats(),
            "counts": {kind: len(self.of(kind)) for kind in sorted({r["event"] for r in self.records})},
        }


def latency_stats(recordings: list[Recording]) -> dict[str, dict[str, float]]:
    """``Recording.latency_stats`` over the turns of several recordings together."""
    stats: dict[str, dict[str, float]] = {}
    series = [rec.latency_series() for rec in recordings]
    for name in (*LATENCY_METRICS, "tool_duration"):
        values = [v for one in series for v in one[name]]
        if values:
            p50, p95 = np.percentile(values, [50, 95])
            stats[name] = {"n": float(len(values)), "p50": float(p50), "p95": float(p95), "max": max(values)}
    return stats


def render_latency(stats: dict[str, dict[str, float]], width: int = 80) -> list[str]:
    """The p50/p95/max table of ``latency_stats``, with what each stage's column means."""
    lines = table(
        ["latency (user turns)", "n", "p50 ms", "p95 ms", "max ms"],
        [[name, str(int(s["n"])), _ms(s["p50"]), _ms(s["p95"]), _ms(s["max"])] for name, s in stats.items()],
    )
    return lines + ["  " + _clip(f"{STAGE_COLUMNS[name]} = {name}: {STAGE_HELP[name]}", width - 2)
                    for name in stats if name in STAGE_HELP]


def render_text(rec: Recording, *, width: int = 80) -> str:
    """The human report, readable at ``width`` columns: the session, a per-turn table of the stages that
    were measured, what was said in each turn, and p50/p95 of each stage over the user's turns."""
    head = rec.header
    lines = [f"session {head.get('session_id', '?')}  ({rec.path})"]
    info = [f"{k}: {head[k]}" for k in ("agent", "pipeline", "model", "transport") if head.get(k)]
    if info:
        lines += textwrap.wrap(", ".join(info), width, initial_indent="  ", subsequent_indent="    ")
    status = "closed: " + str(rec.of("session_closed")[-1].get("reason")) if rec.complete else "INCOMPLETE (no session_closed record: the process died?)"
    lines.append(f"  {rec.duration:.1f} s recorded, {len(rec.records)} events, {status}")
    if rec.skipped_lines:
        lines.append(f"  {rec.skipped_lines} unreadable line(s) skipped")
    turns = rec.turns()
    lines.append("")
    if not turns:
        lines.append("no turns recorded")
    else:
        lines += turn_table(turns)
        lines.append("")
        for t in turns:
            lines += _conversation(t, width)
    stats = rec.latency_stats()
    if stats:
        lines.append("")
        lines += render_latency(stats, width)
    tokens = [(t.metrics.input_tokens, t.metrics.output_tokens) for t in turns if t.metrics is not None]
    if any(i is not None or o is not None for i, o in tokens):
        total_in = sum(i or 0 for i, _ in tokens)
        total_out = sum(o or 0 for _, o in tokens)
        lines.append(f"  tokens (as the provider reported them): {total_in} in, {total_out} out")
    events = [r for r in rec.records if r["event"] in ("error", "wake_up", "false_interruption")]
    if events:
        lines.append("")
        for r in events:
            detail = r.get("message") or (f"after {r.get('idle_s')} s idle" if r["event"] == "wake_up" else "")
            lines.append(_clip(f"  {float(r['t']):7.2f} s  {r['event']}  {detail}".rstrip(), width))
    return "\n".join(lines)


def turn_table(turns: list[Turn]) -> list[str]:
    """One row per turn: trigger, the stages measured in any turn (ms; '-' not measured) and the audio heard
    of what was generated. Columns nobody measured are left out, so a cascade's and a realtime model's
    tables both fit 80 columns."""
    stages = [m for m in LATENCY_METRICS if any(t.latencies.get(m) is not None for t in turns)]
    heard = any(t.metrics is not None and (t.metrics.audio_played is not None or t.metrics.audio_generated
                                           is not None) for t in turns)
    headers = ["turn", "trigger", *(STAGE_COLUMNS[m] for m in stages)] + (["heard/gen s"] if heard else [])
    rows = []
    for t in turns:
        row = [str(t.turn), t.trigger + (" (interrupted)" if t.interrupted else ""),
               *(_ms(t.latencies[m]) for m in stages)]
        if heard:
            row.append(_heard(t.metrics))
        rows.append(row)
    legend = "  (ms; '-': not measured" + ("; heard/gen: seconds heard / generated)" if heard else ")")
    return [*table(headers, rows), legend]


def _conversation(t: Turn, width: int) -> list[str]:
    head = f"turn {t.turn} ({t.trigger}) done at {t.t:.2f} s"
    m = t.metrics
    if m is not None and m.end_of_turn_reason:
        head += f", ended by {m.end_of_turn_reason}"
    if t.interrupted:
        cut = m.interrupted_at if m is not None and m.interrupted_at is not None else None
        head += ", interrupted" + (f" at {cut:.2f} s" if cut is not None else "")
    tools = [f"{x.name} {_ms(x.duration)} ms" + (" (error)" if x.is_error else "") for x in m.tools] \
        if m is not None and m.tools else t.tools
    out = [_clip(head, width)]
    for label, text in (("tools: ", ", ".join(tools)), ("user:  ", t.user_text), ("agent: ", t.agent_text)):
        if text:
            out.append("  " + label + _clip(text, width - 2 - len(label)))
    return out


def _heard(m: TurnMetrics | None) -> str:
    if m is None:
        return "-"
    played = m.audio_played if m.audio_played is not None else None
    generated = m.audio_generated
    if played is None and generated is None:
        return "-"
    return f"{'-' if played is None else f'{played:.1f}'}/{'-' if generated is None else f'{generated:.1f}'}"


def _turn_extras(t: Turn) -> dict[str, Any]:
    m = t.metrics
    if m is None:
        return {}
    return {"end_of_turn_reason": m.end_of_turn_reason, "interrupted_at": m.interrupted_at,
            "audio_played": m.audio_played, "audio_generated": m.audio_generated,
            "input_tokens": m.input_tokens, "output_tokens": m.output_tokens, "speech_id": m.speech_id,
            "tool_calls": [asdict(x) for x in m.tools]}


def plot_timeline(rec: Recording, output: str | Path) -> None:
    """Draw who spoke when, the agent's states, tool calls, events and per-turn latencies to a PNG.

    Needs matplotlib (``pip install 'agentsession[plot]'``); raises ``ImportError`` without it.
    """
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    patches: Any = importlib.import_module("matplotlib.patches")
    lines: Any = importlib.import_module("matplotlib.lines")

    end = max(rec.duration, 0.1)
    turns = rec.turns()
    width_in = max(10.0, min(26.0, 4 + end * 0.7))
    fig, (ax, lat) = plt.subplots(2, 1, figsize=(width_in, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    chars_per_s = width_in * 72 * 0.85 / 4.4 / end  # how many 7.5 pt characters one second of x-axis holds
    lanes = {"user": 3.0, "agent": 2.0, "latency": 1.45, "tools": 0.8}
    colors = {"speaking": "#2e7dd7", "thinking": "#f2b134", "listening": "#9ccc65", "user": "#43a047",
              "tool": "#8e44ad", "tool_error": "#c0392b", "latency": "#c0392b", "interrupted": "#d62728"}

    def bar(lane: str, start: float, stop: float, color: str) -> None:
        ax.broken_barh([(start, max(stop - start, end / 400))], (lanes[lane] - 0.3, 0.6), facecolors=color)

    def label(text: str, at: float, y: float, room: float, **kwargs: Any) -> None:
        ax.annotate(_clip(text, max(8, int(room * chars_per_s))), (at, y), fontsize=7.5, **kwargs)

    user_speech = [(a, b) for a, b, state in _intervals(rec, "user_state", end) if state == "speaking"]
    agent_speech = [(a, b) for a, b, state in _intervals(rec, "agent_state", end) if state == "speaking"]
    for start, stop in user_speech:
        bar("user", start, stop, colors["user"])
    for start, stop, state in _intervals(rec, "agent_state", end):
        if state in ("speaking", "thinking", "listening"):
            bar("agent", start, stop, colors[state])
    for r in rec.of("tool_call"):
        t, duration = float(r["t"]), _number(r.get("duration")) or 0.0
        bar("tools", t - duration, t, colors["tool_error" if r.get("is_error") else "tool"])
        label(f"{r.get('name', '?')}()", t - duration, lanes["tools"] + 0.33, 4.0, color=colors["tool"])
    # each transcript over the speech it belongs to: the last segment that started before it was recorded
    for kind, speech, lane in (("user_transcript", user_speech, "user"), ("agent_transcript", agent_speech, "agent")):
        for r in rec.of(kind):
            t = float(r["t"])
            start = next((a for a, _ in reversed(speech) if a <= t + TRANSCRIPT_SLACK), t)
            room = next((a for a, _ in speech if a > start), end * 1.02) - start - 0.15  # up to the next speech
            text = str(r.get("text", "")) + (" [cut]" if r.get("interrupted") else "")
            label(f"\u201c{text}\u201d", start, lanes[lane] + 0.34, room, color="#333333")
    for r in rec.of("wake_up"):
        ax.axvline(float(r["t"]), color="#7f8c8d", linestyle=":", linewidth=1.2)
        ax.annotate(f"wake-up ({r.get('idle_s', '?')} s idle)", (float(r["t"]), 3.55), fontsize=8,
                    color="#7f8c8d", ha="center")
    for r in rec.of("false_interruption"):
        ax.plot(float(r["t"]), lanes["user"], marker="|", markersize=14, color="#e67e22")
    for r in rec.of("error"):
        ax.plot(float(r["t"]), lanes["agent"], marker="X", markersize=10, color="#c0392b")
        label(str(r.get("message", "error")), float(r["t"]), lanes["agent"] - 0.45, 6.0, color="#c0392b")
    previous = -1.0
    drawn: set[str] = set()
    for turn in turns:
        e2e = turn.latencies["e2e"]
        heard = next((a for a, _ in agent_speech if previous < a <= turn.t + 1e-6), None)
        if turn.started is not None:
            begin = turn.started
        else:
            begin = heard - e2e if e2e is not None and heard is not None else turn.t
        ax.axvline(begin, color="#bbbbbb", linewidth=0.6, zorder=0)
        ax.annotate(f"turn {turn.turn}: {turn.trigger}" + (" (interrupted)" if turn.interrupted else ""),
                    (begin, 0.3), fontsize=7.5, color="#555555")
        at = begin  # the stages back to back from the end of speech: eou, then stt/llm/tts or the model
        for stage in TIMELINE_STAGES:
            value = turn.latencies.get(stage)
            if value:
                ax.broken_barh([(at, value)], (lanes["latency"] - 0.32, 0.22), facecolors=STAGE_COLORS[stage])
                drawn.add(stage)
                at += value
        if e2e is not None and heard is not None:  # from the end of the request to the first audio heard
            ax.annotate("", (begin, lanes["latency"]), (heard, lanes["latency"]),
                        arrowprops={"arrowstyle": "<->", "color": colors["latency"], "shrinkA": 0, "shrinkB": 0})
            ax.annotate(f"{e2e * 1000:.0f} ms", (heard, lanes["latency"]), xytext=(3, -3),
                        textcoords="offset points", fontsize=7.5, color=colors["latency"])
        if turn.interrupted:  # the turn ends when it is cut: mark where, and how much was heard
            ax.axvline(turn.t, color=colors["interrupted"], linestyle="--", linewidth=1.0, ymin=0.3, ymax=0.75)
            m = turn.metrics
            cut = m.interrupted_at if m is not None and m.interrupted_at is not None else None
            ax.annotate("cut" + (f" at {cut:.1f} s" if cut is not None else ""), (turn.t, lanes["agent"] - 0.42),
                        xytext=(2, 0), textcoords="offset points", fontsize=7.5, color=colors["interrupted"])
        previous = turn.t
    ax.set_xlim(0, end * 1.02)
    ax.set_ylim(0.2, 3.75)
    ax.set_yticks(list(lanes.values()), ["user", "agent", "stages / e2e", "tools"])
    ax.set_xlabel("time since the session started (s)")
    head = rec.header
    title = f"session {head.get('session_id', '?')}"
    if head.get("agent"):
        title += f" \u2014 {head['agent']}" + (f" on {head['model']}" if head.get("model") else "")
    ax.set_title(title + ("" if rec.complete else "  [INCOMPLETE]"))
    legend = [patches.Patch(color=colors["user"], label="user speaking"),
              patches.Patch(color=colors["listening"], label="agent listening"),
              patches.Patch(color=colors["thinking"], label="agent thinking"),
              patches.Patch(color=colors["speaking"], label="agent speaking"),
              patches.Patch(color=colors["tool"], label="tool call"),
              lines.Line2D([], [], color=colors["latency"], marker=r"$\leftrightarrow$", linestyle="None",
                           markersize=12, label="end of request to first audio (e2e)"),
              lines.Line2D([], [], color=colors["interrupted"], linestyle="--", label="interrupted"),
              *(patches.Patch(color=STAGE_COLORS[s], label=STAGE_COLUMNS[s]) for s in TIMELINE_STAGES if s in drawn)]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=7, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)

    stats = rec.latency_stats()
    measured = [m for m in LATENCY_METRICS if any(t.latencies.get(m) is not None for t in turns)]
    if turns and measured:
        x = np.arange(len(turns))
        width = 0.8 / len(measured)
        for i, metric in enumerate(measured):
            values = [(t.latencies[metric] or 0.0) * 1000 for t in turns]
            name = metric
            if metric in stats:
                name += f"  p50 {stats[metric]['p50'] * 1000:.0f}, p95 {stats[metric]['p95'] * 1000:.0f} ms"
            bars = lat.bar(x + (i - (len(measured) - 1) / 2) * width, values, width, color=STAGE_COLORS[metric],
                           label=name)
            lat.bar_label(bars, labels=[_ms(t.latencies[metric]) for t in turns], fontsize=6.5, padding=1)
        lat.set_xticks(x, [f"turn {t.turn}\n{t.trigger}" + (" (cut)" if t.interrupted else "") for t in turns],
                       fontsize=8)
        lat.set_ylabel("latency (ms)")
        lat.margins(y=0.15)
        lat.legend(fontsize=7.5, loc="upper left", ncol=2)
        lat.grid(axis="y", alpha=0.3)
    else:
        lat.text(0.5, 0.5, "no turns recorded", ha="center", va="center", transform=lat.transAxes)
        lat.set_axis_off()
    lat.set_title("latency per turn and stage (user turns' p50/p95 in the legend; '-': not measured)", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(output), dpi=110)
    plt.close(fig)


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned text columns, two spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r).rstrip() for r in rows]
    return out


def _intervals(rec: Recording, kind: str, end: float) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    changes = rec.of(kind)
    for r, nxt in zip(changes, [*changes[1:], None], strict=True):
        stop = float(nxt["t"]) if nxt is not None else end
        out.append((float(r["t"]), stop, str(r.get("state"))))
    return out


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
