"""The recorder's hook implementations (entry point ``recorder`` in group ``agentsession``). They record
only when ``AGENTSESSION_RECORD=1``: installing the plugin alone records nothing.

``agentsession_link_tap`` (on the event loop, before the pipeline starts) makes the session's cassette writer
(``<recording>.cassette``: the provider traffic and the user's audio, for ``python agent.py replay``).
``agentsession_session_started`` runs on the event loop: it opens the session's file and subscribes to the
session's events, which arrive on the loop with exact timestamps. ``agentsession_metrics_collected`` and
``agentsession_session_closed`` run on the session's observer thread; ``SessionRecorder`` is thread-safe.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from agentsession import AgentSession, ChatMessage, TurnMetrics, hookimpl
from agentsession.plugin import REPLAY_ENV, CassetteWriter

from ._recorder import DIR_ENV, FORMAT, RECORD_ENV, SessionRecorder, logger, recording_enabled
from ._wav import ConversationWav

#: set to 1 to also record ``<session>.wav``: user left, agent right
WAV_ENV = "AGENTSESSION_RECORDER_WAV"

_lock = threading.Lock()
_recorders: dict[AgentSession, SessionRecorder] = {}
_wavs: dict[AgentSession, ConversationWav] = {}
_cassettes: dict[AgentSession, CassetteWriter] = {}
_hinted = False  # the hint about AGENTSESSION_RECORDER_DIR without AGENTSESSION_RECORD was logged


def recorder_for(session: AgentSession) -> SessionRecorder | None:
    """The recorder of a running ``session`` (None once it closed)."""
    with _lock:
        return _recorders.get(session)


@hookimpl
def agentsession_link_tap(session: AgentSession) -> CassetteWriter | None:
    """The session's cassette: what its provider links send and receive, from their first message."""
    if not recording_enabled() or os.environ.get(REPLAY_ENV):  # a replay's answers are the cassette's, not new
        return None
    writer = CassetteWriter(session)
    with _lock:
        _cassettes[session] = writer
    return writer


@hookimpl
def agentsession_session_started(session: AgentSession) -> None:
    global _hinted
    if not recording_enabled():
        if os.environ.get(DIR_ENV) and not _hinted:  # set up the old way, when the folder alone turned it on
            _hinted = True
            logger.info("%s is set but sessions are not recorded: export %s=1 to record them", DIR_ENV, RECORD_ENV)
        return
    agent = type(session.agent).__name__
    rec = SessionRecorder.create(agent, session.now())
    logger.info("recording the session to %s (%s=1)", rec.path.resolve(), RECORD_ENV)
    with _lock:
        _recorders[session] = rec
    rec.record(
        "session_started", rec.started, format=FORMAT, session_id=rec.session_id, agent=agent,
        pipeline=type(session.pipeline).__name__, model=_models(session.pipeline),
        transport=type(session.transport).__name__, tools=sorted(t.name for t in session.agent.tools),
    )
    _subscribe(session, rec)
    with _lock:
        cassette = _cassettes.get(session)
    if cassette is not None:
        cassette.open(rec.path.with_suffix(".cassette"))
        rec.record("recording_cassette", rec.started, cassette=rec.path.with_suffix(".cassette").name)
    if os.environ.get(WAV_ENV, "").strip().lower() in ("1", "true", "yes"):
        wav = ConversationWav(rec.path.with_suffix(".wav"))
        with _lock:
            _wavs[session] = wav
        session.on("user_audio", lambda d: wav.add("user", d["frame"], d["at"]))
        session.on("agent_audio", lambda d: wav.add("agent", d["frame"], d["at"]))
        rec.record("recording_audio", rec.started, wav=rec.path.with_suffix(".wav").name)


@hookimpl
def agentsession_metrics_collected(session: AgentSession, metrics: TurnMetrics) -> None:
    rec = recorder_for(session)
    if rec is not None:
        data = metrics.as_dict()  # what the metrics_collected event carries
        rec.record("metrics", data.pop("timestamp") or None, **data)


@hookimpl
def agentsession_session_closed(session: AgentSession, reason: str) -> None:
    # the observer thread runs this after every hook queued before it: nothing else comes from there
    with _lock:
        rec = _recorders.pop(session, None)
        wav = _wavs.pop(session, None)
        cassette = _cassettes.pop(session, None)
    if wav is not None:
        wav.close()
        if wav.late_samples and rec is not None:
            rec.record("audio_late", None, dropped_seconds=round(wav.late_samples / 24000, 3))
    if rec is not None:
        rec.close()
    if cassette is not None:
        cassette.close(rec.path if rec is not None else None)


def _subscribe(session: AgentSession, rec: SessionRecorder) -> None:
    def state(kind: str) -> Any:
        return lambda d: rec.record(kind, d["timestamp"], state=d["state"].value, previous=d["previous"].value)

    def transcript(kind: str) -> Any:
        def on(d: dict[str, Any]) -> None:
            if d.get("final"):
                extra = {"typed": True} if d.get("typed") else {}
                rec.record(kind, session.now(), text=d["text"], **extra)

        return on

    def tool(d: dict[str, Any]) -> None:
        rec.record("tool_call", session.now(), call_id=d["call_id"], name=d["name"],
                   arguments=_json_or_text(d["arguments"]), result=_json_or_text(d["result"]),
                   is_error=d["is_error"], duration=d["duration"])

    def cut(d: dict[str, Any]) -> None:  # what the user heard of an interrupted response
        if not d.get("interrupted"):
            return
        for item in reversed(session.history.items):
            if isinstance(item, ChatMessage) and item.role == "assistant":
                if item.interrupted and item.id not in recorded_cuts:
                    recorded_cuts.add(item.id)
                    rec.record("agent_transcript", session.now(), text=item.text, interrupted=True,
                               heard=item.audio_duration)
                return

    recorded_cuts: set[str] = set()
    session.on("metrics_collected", cut)
    session.on("user_state_changed", state("user_state"))
    session.on("agent_state_changed", state("agent_state"))
    session.on("user_transcript", transcript("user_transcript"))
    session.on("agent_transcript", transcript("agent_transcript"))
    session.on("function_tool_called", tool)
    session.on("wake_up", lambda d: rec.record("wake_up", d["timestamp"], idle_s=d["idle_s"]))
    session.on("false_interruption", lambda d: rec.record("false_interruption", d["timestamp"]))
    session.on("error", lambda d: rec.record("error", session.now(), message=d["message"],
                                             recoverable=d["recoverable"], code=d.get("code")))
    session.on("closed", lambda d: rec.record("session_closed", session.now(), reason=d["reason"]))


def _models(pipeline: object) -> str:
    parts = []
    model = getattr(pipeline, "model", None)
    for attr in ("model", "stt", "llm", "tts"):
        component = getattr(pipeline, attr, None)
        if component is not None and not (attr == "llm" and component is model):  # a realtime model, named once
            name = getattr(component, "provider", None) or type(component).__name__
            parts.append(name if attr == "model" else f"{attr}={name}")
    return ", ".join(parts)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
