"""The live terminal view: states, input level, streaming transcripts, tool calls, per-turn latency."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentsession import AgentState, UserState
from agentsession.plugin import STAGE_LABELS, STAGE_MEANINGS, STAGES

if TYPE_CHECKING:
    from agentsession.plugin import SessionView

    from ._transport import ConsoleTransport

_STATE_STYLE = {
    "idle": "dim",
    "starting": "dim",
    "listening": "cyan",
    "speaking": "bold green",
    "thinking": "yellow",
    "closing": "dim",
}
#: the events the plain view writes a line for
_PLAIN_EVENTS = ("agent_state_changed", "user_transcript", "agent_transcript", "function_tool_called",
                 "metrics_collected", "error")
_METER_CELLS = 24
_METER_FLOOR_DB = -60.0


#: the stages of a turn as the view shows them: (``TurnMetrics`` field, short label), in turn order
STAGE_COLUMNS = tuple((key, STAGE_LABELS[key]) for key in STAGES)  # core's names: the same in every view
#: what the short labels stand for (the summary's legend: the columns shown, one a line)
LEGEND = {
    **{STAGE_LABELS[key]: STAGE_MEANINGS[key] for key in STAGES},
    "tools": "time in tools", "heard": "seconds heard/generated", "cut": "interrupted at (s)",
}


@dataclass(frozen=True)
class LatencyBudgets:
    """Per-turn latency budgets in seconds; figures over budget are shown red, close to it yellow (stages
    without a budget, such as the LLM's total, are not coloured)."""

    eou_delay: float = 0.8
    ttfa: float = 0.8
    e2e: float = 1.5
    stt_latency: float = 0.5
    llm_ttft: float = 0.6
    tts_ttfb: float = 0.3
    realtime_ttfa: float = 0.8


class ConsoleView:
    """Shows a session on the terminal; fed by ``session.on(...)`` events and the transport's input level.

    On a terminal (``live=None`` detects it) a panel is redrawn at most ``refresh_hz`` times a second by
    a task on the loop, so the audio path only ever stores numbers; elsewhere (CI, a pipe, ``--text``)
    each event becomes one plain line. ``stop`` prints a summary table of every turn.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        live: bool | None = None,
        budgets: LatencyBudgets | None = None,
        refresh_hz: float = 10.0,
        history: int = 8,
    ) -> None:
        self.console = console if console is not None else Console()
        self.live = self.console.is_terminal if live is None else live
        self.budgets = budgets or LatencyBudgets()
        self.refresh_hz = refresh_hz
        self.user_state = UserState.IDLE.value
        self.agent_state = AgentState.STARTING.value
        self.level_db = -math.inf
        self.muted = False
        self.user_partial = ""
        self.agent_partial = ""
        self.lines: deque[Text] = deque(maxlen=history)
        self.turns: list[dict[str, Any]] = []
        self.redraws = 0
        self._transport: ConsoleTransport | None = None
        self._live: Live | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._log_streams: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._stopped = False
        self._app_shows: set[str] = set()  # the events the application prints itself (plain view)

    # ------------------------------------------------------------------ lifecycle

    def start(self, transport: ConsoleTransport) -> None:
        """Begin showing ``transport``'s conversation (called by the transport once its devices are open)."""
        self._transport = transport
        if not self.live:
            self._line(Text.assemble(("console: ", "bold"), self._devices()))
        if transport.input_config is not None and transport.output_config is not None:
            self._line(Text(
                "no echo cancellation: use headphones, or --half-duplex to mute the microphone while the agent speaks"
                if not transport.half_duplex else "half duplex: the microphone is muted while the agent speaks",
                style="dim",
            ))
        if transport.text:
            self._line(Text("type a message and press Enter (Ctrl-D ends)", style="dim"))
        if not self.live:
            return
        stderr = sys.stderr
        self._live = Live(console=self.console, auto_refresh=False, get_renderable=self._render,
                          redirect_stdout=True, redirect_stderr=True)
        self._live.start()
        # log lines would tear the panel: send the root handlers writing to the terminal through Live
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream is stderr:
                self._log_streams.append((handler, handler.setStream(sys.stderr)))
        self._refresher = asyncio.get_running_loop().create_task(self._refresh(), name="console-view")

    def attach(self, session: SessionView) -> None:
        """Subscribe to the session's events.

        Without the live panel, the events the application already listens to (it prints them, as the examples
        do) are not written again: each is shown once, by the application.
        """
        if not self.live:
            self._app_shows = {event for event in _PLAIN_EVENTS if session.has_listeners(event)}
            if self._app_shows:
                self._line(Text(f"(your agent prints {', '.join(sorted(self._app_shows))} itself: not repeated here)",
                                style="dim"))
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_transcript", self._on_user_transcript)
        session.on("agent_transcript", self._on_agent_transcript)
        session.on("function_tool_called", self._on_tool)
        session.on("metrics_collected", self._on_metrics)
        session.on("error", self._on_error)

    def stop(self, stats: dict[str, float | int]) -> None:
        """Stop redrawing and print the summary table; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
        if self._live is not None:
            self._live.stop()
            for handler, stream in self._log_streams:
                handler.setStream(stream)
        self.console.print(self.summary(stats))

    async def _refresh(self) -> None:
        assert self._live is not None
        while True:
            await asyncio.sleep(1 / self.refresh_hz)
            self._live.refresh()
            self.redraws += 1

    # ------------------------------------------------------------------ inputs

    def input_level(self, level_db: float, muted: bool) -> None:
        """The transport's latest input block level (called every 20 ms: only stores)."""
        self.level_db, self.muted = level_db, muted

    def error(self, message: str) -> None:
        self._line(Text(f"error: {message}", style="bold red"))

    def _on_error(self, data: dict[str, Any]) -> None:
        if "error" not in self._app_shows:
            self.error(str(data.get("message", data)))

    def _on_user_state(self, data: dict[str, Any]) -> None:
        self.user_state = _value(data["state"])

    def _on_agent_state(self, data: dict[str, Any]) -> None:
        self.agent_state = _value(data["state"])
        if not self.live and "agent_state_changed" not in self._app_shows:
            self._line(Text(f"agent {self.agent_state}", style=_STATE_STYLE.get(self.agent_state, "")))

    def _on_user_transcript(self, data: dict[str, Any]) -> None:
        if data.get("final", True):
            self.user_partial = ""
            said = " typed: " if data.get("typed") else ": "
            self._line_for("user_transcript", Text.assemble(("you", "bold cyan"), said, data["text"]))
        else:
            self.user_partial += data["text"]

    def _on_agent_transcript(self, data: dict[str, Any]) -> None:
        if data.get("final", True):
            self.agent_partial = ""
            self._line_for("agent_transcript", Text.assemble(("agent", "bold green"), ": ", data["text"]))
        else:
            self.agent_partial += data["text"]

    def _on_tool(self, data: dict[str, Any]) -> None:
        result = str(data.get("result", ""))
        if len(result) > 80:
            result = result[:77] + "..."
        duration = data.get("duration")
        took = f" ({duration * 1000:.0f} ms)" if isinstance(duration, (int, float)) else ""
        style = "red" if data.get("is_error") else "magenta"
        call = f"tool {data['name']}({data.get('arguments', '')}) -> {result}{took}"
        self._line_for("function_tool_called", Text(call, style=style))

    def _on_metrics(self, metrics: dict[str, Any]) -> None:
        self.turns.append(metrics)
        self._line_for("metrics_collected", self.turn_line(metrics))

    def turn_line(self, m: dict[str, Any]) -> Text:
        """One turn in a line, in ms: ``turn 2 (user)  eou 500  stt 200  ttft 400  llm 800  tts 120  e2e 1350 ms``.

        The stages measured, in order, by core's short names (``STAGE_LABELS``); ``ttfa`` only where no stage
        explains it; tool time; where an interrupted answer was cut (heard/generated).
        """
        parts: list[Text | str] = [Text(f"turn {m.get('turn', '?')} ({m.get('trigger', '?')})", style="bold")]
        staged = any(m.get(k) is not None for k in ("stt_latency", "llm_ttft", "llm_duration", "tts_ttfb",
                                                    "realtime_ttfa"))
        for key, label in STAGE_COLUMNS:
            if key == "tts_ttfb":
                parts += self._tools(m)
            if m.get(key) is not None and not (key == "ttfa" and staged):
                parts += [f"  {label} ", self._latency(key, m[key], unit="")]
        parts.append(" ms")
        if m.get("interrupted"):
            parts.append(Text("  cut" + _cut(m), style="yellow"))
        return Text.assemble(*parts)

    @staticmethod
    def _tools(m: dict[str, Any]) -> list[Text | str]:
        tools = [t for t in m.get("tools") or () if isinstance(t, dict)]
        if not tools:
            return []
        took = sum(t.get("duration") or 0.0 for t in tools)
        errors = sum(1 for t in tools if t.get("is_error"))
        return [Text(f"  tools {len(tools)}x {took * 1000:.0f}" + (f" ({errors} failed)" if errors else ""),
                     style="red" if errors else "magenta")]

    # ------------------------------------------------------------------ rendering

    def _line_for(self, event: str, text: Text) -> None:
        """A line about ``event``, unless the application prints that event itself (plain view)."""
        if self.live or event not in self._app_shows:
            self._line(text)

    def _line(self, text: Text) -> None:
        if self.live:
            self.lines.append(text)
        else:
            self.console.print(text, soft_wrap=True, highlight=False)

    def _latency(self, key: str, seconds: float | None, *, unit: str = " ms") -> Text:
        if seconds is None:
            return Text("-", style="dim")
        budget: float | None = getattr(self.budgets, key, None)
        if budget is None:
            style = ""
        else:
            style = "red" if seconds > budget else "yellow" if seconds > 0.75 * budget else "green"
        return Text(f"{seconds * 1000:.0f}{unit}", style=style)

    def _devices(self) -> str:
        t = self._transport
        if t is None:
            return ""
        mic = t.input_config.describe() if t.input_config is not None else "keyboard" if t.text else "none"
        out = t.output_config.describe() if t.output_config is not None else "none (no playback)"
        return f"mic {mic} -> speakers {out}"

    def meter(self) -> Text:
        """The input level as a bar, its dBFS, and whether the microphone is muted."""
        db = self.level_db
        fill = 0 if not math.isfinite(db) else round(_METER_CELLS * min(1.0, max(0.0, 1 - db / _METER_FLOOR_DB)))
        style = "red" if db > -6 else "yellow" if db > -20 else "green"
        label = "  -inf dB" if not math.isfinite(db) else f"{db:6.1f} dB"
        bar = Text.assemble(("#" * fill, style), ("." * (_METER_CELLS - fill), "dim"), label)
        if self.muted:
            bar.append("  muted (agent speaking)", style="yellow")
        return bar

    def _render(self) -> Panel:
        rows: list[Text] = [
            Text.assemble(("user  ", "bold"), (f"{self.user_state:<10}", _STATE_STYLE.get(self.user_state, "")),
                          "  mic ", self.meter()),
            Text.assemble(("agent ", "bold"), (f"{self.agent_state:<10}", _STATE_STYLE.get(self.agent_state, ""))),
            Text(self._devices(), style="dim"),
            Text(""),
            *self.lines,
        ]
        if self.user_partial:
            rows.append(Text.assemble(("you: ", "bold cyan"), (self.user_partial, "italic")))
        if self.agent_partial:
            rows.append(Text.assemble(("agent: ", "bold green"), (self.agent_partial, "italic")))
        return Panel(Group(*rows), title="agentsession console", subtitle="Ctrl-C to quit", border_style="blue")

    def summary(self, stats: dict[str, float | int]) -> Group:
        """One row per turn with the stages measured in any turn (ms, coloured against the budgets), tool
        time, audio heard/generated and where an interruption cut it; the transport's figures below. Columns
        nobody measured are left out, so it fits 80 columns for a cascade and for a realtime model."""
        stages = [(k, label) for k, label in STAGE_COLUMNS if any(m.get(k) is not None for m in self.turns)]
        if any(k in ("stt_latency", "llm_ttft", "tts_ttfb", "realtime_ttfa") for k, _ in stages):
            stages = [(k, label) for k, label in stages if k != "ttfa"]  # the stages say where it went
        with_tools = any(m.get("tools") for m in self.turns)
        table = Table(title="session summary (ms)", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                      pad_edge=False, padding=(0, 1, 0, 0))
        columns = ["turn", "trigger", *(label for _, label in stages), *(["tools"] if with_tools else []),
                   "heard", "cut"]
        for column in columns:
            table.add_column(column, justify="left" if column == "trigger" else "right", no_wrap=True)
        for m in self.turns:
            cells: list[Text | str] = [str(m.get("turn", "?")), str(m.get("trigger", "?"))]
            cells += [self._latency(key, m.get(key), unit="") for key, _ in stages]
            if with_tools:
                tools = [t for t in m.get("tools") or () if isinstance(t, dict)]
                cells.append(f"{sum(t.get('duration') or 0.0 for t in tools) * 1000:.0f}" if tools else "")
            cut = m.get("interrupted_at")
            cells += [_heard(m), Text("yes" if cut is None else f"{cut:.1f}", style="yellow")
                      if m.get("interrupted") else ""]
            table.add_row(*cells)
        # the legend explains the columns shown, one a line: short lines that a narrow terminal does not wrap
        legend = [Text(f"{c:>5}  {LEGEND[c]}", style="dim") for c in columns if c in LEGEND]
        legend.append(Text("    -  not measured", style="dim"))
        audio = Text("audio: " + ", ".join(f"{k} {_shown(v)}" for k, v in stats.items()), style="dim")
        return Group(table, *legend, audio)


def _shown(value: float | int) -> str:
    """A figure as people read it: ``0.5``, not ``0.5000000000000004``."""
    return f"{value:.3g}" if isinstance(value, float) and not value.is_integer() else str(value)


def _heard(m: dict[str, Any]) -> str:
    """Seconds heard/generated (``audio_duration`` for records without ``audio_played``)."""
    played = m.get("audio_played")
    if played is None:
        played = m.get("audio_duration")
    generated = m.get("audio_generated")
    if generated is None:
        return "-" if played is None else f"{played:.1f}"
    return f"{'-' if played is None else f'{played:.1f}'}/{generated:.1f}"


def _cut(m: dict[str, Any]) -> str:
    """`` at 1.3/2.1 s``: where an interrupted answer was cut, of what was generated ('' if not measured)."""
    at = m.get("interrupted_at")
    if at is None:
        return ""
    generated = m.get("audio_generated")
    return f" at {at:.1f}" + (f"/{generated:.1f}" if generated is not None else "") + " s"


def _value(state: Any) -> str:
    return str(getattr(state, "value", state))
