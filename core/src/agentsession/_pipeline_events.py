"""The typed vocabulary a pipeline speaks to the session (DESIGN.md section 4).

A pipeline turns input audio into a stream of these events; the session reacts to them and to nothing
else, so it never knows which provider is behind them.

Every event that belongs to a response (``AgentAudio``, ``AgentTranscript``, ``ToolCall``,
``ResponseDone``) carries that response's id: the id the session gave when it asked for the response
(``say``/``reply``/``send_text``/``send_tool_results``), or the provider's own for a response the model
started by itself (an answer to the user's speech). The session drops the events of responses it cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._audio import AudioFrame


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    """The model (or VAD) detected the user's voice."""


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    """The user's turn ended.

    ``audio_end`` is the position, in seconds of input audio pushed to the pipeline, where the speech
    ended, when the model reports it; the session uses it to measure the end-of-utterance delay.
    """

    audio_end: float | None = None


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """Transcript of the user's speech; ``final`` once the turn's text is complete. A pipeline that decides the
    end of the turn itself (a cascade) says why in ``end_of_turn``: ``"silence"``, ``"turn_detector"`` or
    ``"max_delay"``."""

    text: str
    final: bool = True
    end_of_turn: str | None = None
    stt_latency: float | None = None  # the user stopped -> this final transcript (a cascade's STT)
    #: the user stopped (the VAD's end of speech) -> this end of the turn: the endpointing's wait (a cascade)
    endpointing_delay: float | None = None


@dataclass(frozen=True, slots=True)
class AgentAudio:
    """A chunk of the agent's speech (any length; the session re-frames it)."""

    frame: AudioFrame
    response_id: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    """Text of the agent's speech: deltas with ``final=False``, the whole response's text with ``final=True``."""

    text: str
    final: bool = True
    response_id: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a tool; ``arguments`` is JSON text as the model produced it."""

    id: str
    name: str
    arguments: str
    response_id: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class ToolCallCancelled:
    """The model withdrew tool calls it had made (their results are no longer wanted)."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """The model finished a response (or cut it short itself: ``interrupted``); ``usage`` is provider token
    usage. A response's tool calls come before its ``ResponseDone``."""

    interrupted: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    response_id: str = field(kw_only=True)
    #: stage latencies the pipeline measured for this response, in seconds (a cascade: ``llm_ttft``,
    #: ``llm_duration``, ``tts_ttfb``), merged into the turn's ``TurnMetrics``
    stages: dict[str, float] = field(default_factory=dict, kw_only=True)


@dataclass(frozen=True, slots=True)
class Error:
    """A provider error; a non-recoverable one closes the session. ``component`` says which part failed, when
    the pipeline knows (``"stt"``, ``"llm"``, ``"tts"``, ``"mcp"``)."""

    message: str
    recoverable: bool = True
    code: str | None = None
    #: what failed: ``"stt"``, ``"llm"``, ``"tts"``, ``"realtime"``, ``"turn_detector"``, ``"tool"``, ...
    component: str | None = None


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The link to the provider dropped or stalled; the pipeline is reconnecting (``attempt`` 1, 2, ...).
    What the user says meanwhile is buffered (bounded) by the pipeline, or reported lost in ``Reconnected``."""

    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The link is back after ``downtime`` seconds; ``audio_lost`` seconds of the user's audio could not be
    delivered (0 when the buffer held all of it)."""

    downtime: float
    audio_lost: float = 0.0


PipelineEvent = (
    UserSpeechStarted
    | UserSpeechStopped
    | UserTranscript
    | AgentAudio
    | AgentTranscript
    | ToolCall
    | ToolCallCancelled
    | ResponseDone
    | Error
    | Reconnecting
    | Reconnected
)
