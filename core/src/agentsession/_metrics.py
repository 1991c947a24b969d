"""Per-turn metrics: one typed record per turn (one ``SpeechHandle``: an answer, including the answers after
its tool calls), emitted as ``metrics_collected`` (``as_dict()``) and to ``agentsession_metrics_collected``.

Every measurement is ``None`` when it was not measured (a realtime model has no STT stage, a ``say`` has no
end of utterance): never 0. Latencies and audio positions are in seconds.

The stages of a user turn, on the session's clock, from ``t0`` = the end of the user's speech (for
``say``/``reply``/typed text: the request)::

    t0 --vad_silence--> the VAD's end of speech --endpointing_delay--> turn over      (eou_delay: the two)
                              +--stt_latency--> final transcript
    turn over --llm_ttft--> first token ... (llm_duration);  first text --tts_ttfb--> first TTS audio
    turn over --ttfa / realtime_ttfa--> first agent audio from the pipeline
    t0 ------------------------------e2e------------------------------> first agent audio handed to the transport
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

EndOfTurnReason = Literal["silence", "turn_detector", "max_delay", "model_vad"]
END_OF_TURN_REASONS: tuple[str, ...] = ("silence", "turn_detector", "max_delay", "model_vad")

#: the per-stage latency fields of ``TurnMetrics``, in the order of a turn (what the views and exporters show)
STAGES: tuple[str, ...] = (
    "eou_delay", "stt_latency", "llm_ttft", "llm_duration", "tts_ttfb", "realtime_ttfa", "ttfa", "e2e",
)
#: the two parts of ``eou_delay`` (recorded beside it; exporters export them with the stages)
EOU_PARTS: tuple[str, ...] = ("vad_silence", "endpointing_delay")

#: each latency's one short name where a view has no room for the field's (the console, the playground page,
#: ``agentsession report``); machine-readable outputs (recordings, OpenTelemetry, Prometheus) use the field's
STAGE_LABELS: dict[str, str] = {
    "eou_delay": "eou", "vad_silence": "silence", "endpointing_delay": "endpointing", "stt_latency": "stt",
    "llm_ttft": "ttft", "llm_duration": "llm", "tts_ttfb": "tts", "realtime_ttfa": "model", "ttfa": "ttfa",
    "e2e": "e2e",
}
#: what each latency measures, in a few words (the views' legends)
STAGE_MEANINGS: dict[str, str] = {
    "eou_delay": "end of speech -> turn over (silence + endpointing)",
    "vad_silence": "end of speech -> the VAD reported it",
    "endpointing_delay": "the VAD's end of speech -> turn over",
    "stt_latency": "last audio -> final transcript",
    "llm_ttft": "LLM request -> first token",
    "llm_duration": "LLM request -> last token",
    "tts_ttfb": "TTS text -> first audio",
    "realtime_ttfa": "realtime model: request -> first audio",
    "ttfa": "turn over -> first audio from the pipeline",
    "e2e": "end of speech -> first audio played",
}

# provider usage keys, by what they count: OpenAI Realtime/Responses, OpenAI Chat Completions, Gemini
# (``usageMetadata`` as JSON, or the SDK's ``usage_metadata.model_dump()``)
_INPUT_KEYS = ("input_tokens", "prompt_tokens", "promptTokenCount", "prompt_token_count")
_OUTPUT_KEYS = ("output_tokens", "completion_tokens", "responseTokenCount", "response_token_count",
                "candidatesTokenCount", "candidates_token_count")
_THOUGHT_KEYS = ("thoughtsTokenCount", "thoughts_token_count")  # Gemini's thinking: billed as output
_NESTED_KEYS = ("usageMetadata", "usage_metadata", "usage")


def normalize_usage(usage: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)`` from a provider's usage dict; ``None`` for a count it does not give.

    Understands OpenAI's ``usage`` (``input_tokens``/``output_tokens``, or ``prompt_tokens``/
    ``completion_tokens``) and Gemini's ``usageMetadata`` (``promptTokenCount``, ``responseTokenCount`` or
    ``candidatesTokenCount``, plus ``thoughtsTokenCount`` as output; camelCase or snake_case), also when
    nested under one of those names.
    """
    for key in _NESTED_KEYS:
        inner = usage.get(key)
        if isinstance(inner, Mapping):
            return normalize_usage(inner)
    return _count(usage, _INPUT_KEYS), _sum(_count(usage, _OUTPUT_KEYS), _count(usage, _THOUGHT_KEYS))


def _count(usage: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def _sum(a: int | None, b: int | None) -> int | None:
    return a if b is None else b if a is None else a + b


@dataclass
class ToolMetrics:
    """One tool call of a turn: how long it ran and whether it failed."""

    name: str
    duration: float | None = None
    is_error: bool = False
    call_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolMetrics:
        return cls(name=str(data.get("name", "?")), duration=_float(data.get("duration")),
                   is_error=bool(data.get("is_error", False)),
                   call_id=str(data["call_id"]) if data.get("call_id") is not None else None)


@dataclass
class TurnMetrics:
    """What one agent turn cost, stage by stage (``None``: not measured).

    Identity: ``turn`` (1, 2, ... in the session), ``trigger`` (``"user"``, ``"text"``, ``"say"``, ``"reply"``,
    ``"model"``), ``speech_id`` (its ``SpeechHandle.id``), ``timestamp`` (epoch seconds when it ended),
    ``started_at`` (epoch seconds of ``t0``: the end of the user's speech, or the request).

    Latencies:

    - ``eou_delay``: the user's last voiced audio -> the turn was declared over, whole: ``vad_silence`` (the
      VAD's silence before it reported the end of speech) plus ``endpointing_delay`` (the wait after that, a
      cascade's turn detection), both recorded; for ``end_of_turn_reason``:
      ``"silence"`` (the VAD's silence timeout), ``"turn_detector"`` (a turn-detector model said so),
      ``"max_delay"`` (the detector said "not yet" and the hold ran out), ``"model_vad"`` (a realtime
      model's own voice detection).
    - ``stt_latency``: the VAD's end of speech (the utterance's last audio handed to the STT) -> its final
      transcript (cascade); 0.0 when a streaming STT's final came before the VAD's end of speech.
    - ``llm_ttft``: LLM request -> first token, of the turn's first LLM call (cascade).
    - ``llm_duration``: LLM request -> end of its stream, summed over the turn's LLM calls (cascade).
    - ``tools``: each tool call of the turn (``ToolMetrics``: name, duration, is_error).
    - ``tts_ttfb``: the first text sent to the TTS -> its first audio (cascade).
    - ``realtime_ttfa``: the request (or the model's end of turn) -> the realtime model's first audio.
    - ``ttfa``: turn over (or ``say``/``reply`` called) -> first agent audio from the pipeline, any pipeline.
    - ``e2e``: ``t0`` -> first agent audio handed to the transport (what the user waited for).

    Audio: ``audio_generated`` (seconds the pipeline produced), ``audio_played`` (seconds the user heard),
    ``interrupted`` and ``interrupted_at`` (seconds into the turn's played audio where it was cut);
    ``audio_duration`` is kept for older readers and equals the audio heard.

    Usage: ``usage`` is the provider's own dict (summed over the turn's responses); ``input_tokens`` and
    ``output_tokens`` are its counts normalised across providers (``add_usage`` keeps them in step).
    """

    turn: int
    trigger: str  # "user", "say", "reply", "text", "model"
    eou_delay: float | None = None
    ttfa: float | None = None
    e2e: float | None = None
    interrupted: bool = False
    audio_duration: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0
    speech_id: str | None = None
    started_at: float | None = None
    end_of_turn_reason: EndOfTurnReason | None = None
    vad_silence: float | None = None
    endpointing_delay: float | None = None
    stt_latency: float | None = None
    llm_ttft: float | None = None
    llm_duration: float | None = None
    tools: list[ToolMetrics] = field(default_factory=list)
    tts_ttfb: float | None = None
    realtime_ttfa: float | None = None
    audio_generated: float | None = None
    audio_played: float | None = None
    interrupted_at: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (what the ``metrics_collected`` event carries and the recorder writes). Seconds are
        rounded to the microsecond, so what is printed reads ``0.5``, not ``0.5000000000000004``."""
        return {key: _rounded(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnMetrics:
        """The record back from ``as_dict()`` output (a recording's ``metrics`` line, say). Unknown keys are
        ignored and missing ones are "not measured", so records of older and newer versions both read."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        values["turn"] = int(data.get("turn") or 0)
        values["trigger"] = str(data.get("trigger") or "?")
        for name in (*STAGES, "audio_generated", "audio_played", "interrupted_at", "started_at", "vad_silence",
                     "endpointing_delay"):
            values[name] = _float(data.get(name))
        for name in ("input_tokens", "output_tokens"):
            count = _float(data.get(name))
            values[name] = None if count is None else int(count)
        values["interrupted"] = bool(data.get("interrupted", False))
        values["audio_duration"] = _float(data.get("audio_duration")) or 0.0
        values["timestamp"] = _float(data.get("timestamp")) or 0.0
        values["usage"] = dict(data["usage"]) if isinstance(data.get("usage"), Mapping) else {}
        reason = data.get("end_of_turn_reason")
        values["end_of_turn_reason"] = reason if reason in END_OF_TURN_REASONS else None
        tools = data.get("tools")
        values["tools"] = [ToolMetrics.from_dict(t) for t in tools if isinstance(t, Mapping)] \
            if isinstance(tools, list) else []
        return cls(**values)

    def add_usage(self, usage: Mapping[str, Any]) -> None:
        """Add one response's provider usage: numbers are summed into ``usage``, other values replace, and
        ``input_tokens``/``output_tokens`` follow (they stay ``None`` if the provider gives no such count)."""
        for key, value in usage.items():
            current = self.usage.get(key, 0)
            if isinstance(value, int | float) and isinstance(current, int | float):
                self.usage[key] = current + value
            else:
                self.usage[key] = value
        input_tokens, output_tokens = normalize_usage(usage)
        self.input_tokens = _sum(self.input_tokens, input_tokens)
        self.output_tokens = _sum(self.output_tokens, output_tokens)

    def add_tool(self, name: str, duration: float | None, *, is_error: bool = False,
                 call_id: str | None = None) -> None:
        """Record one tool call of the turn."""
        self.tools.append(ToolMetrics(name, duration, is_error, call_id))

    def stages(self) -> dict[str, float]:
        """The measured latencies, ``{field: seconds}``, in the order of ``STAGES``."""
        return {name: value for name in STAGES if (value := getattr(self, name)) is not None}

    def latencies(self) -> dict[str, float]:
        """``stages()`` and the parts of ``eou_delay`` measured (what exporters export, by field name)."""
        return {name: value for name in (*STAGES, *EOU_PARTS) if (value := getattr(self, name)) is not None}


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rounded(value: Any) -> Any:
    """``value`` with every float rounded to 6 decimals (lists and dicts walked)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
