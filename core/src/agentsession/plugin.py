"""What a plugin author imports: hook markers, provider base classes, pipeline events, audio, metrics.

Agent writers import from ``agentsession``; test writers from ``agentsession.testing``. A plugin never
imports ``agentsession._*``: everything it may rely on is here.
"""

from __future__ import annotations

from ._audio import SUPPORTED_RATES, AudioConverter, AudioFrame, Reframer, Resampler
from ._cassette import CASSETTE_VERSION, Cassette, CassetteWriter, ConversationLog, TrafficRecord
from ._chat import ChatContext, ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from ._errors import AgentSessionError, ModelError, PluginError
from ._events import EVENT_NAMES, EventName, SessionEvent
from ._fakes import FakeService, example_arguments
from ._link import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AudioBacklog,
    AudioChunk,
    LinkedRealtimeModel,
    LinkProtocol,
    LinkTap,
    Liveness,
    ProviderLink,
    Request,
    abort,
    current_link_taps,
    tap_message,
)
from ._manager import PluginInfo, best_vad, create_manager
from ._manager import discover as discover_plugins
from ._metrics import EOU_PARTS, STAGE_LABELS, STAGE_MEANINGS, STAGES, TurnMetrics
from ._models import LLM, STT, TTS, VAD, EventChannel, EventSink, ModelOptions, PipelineEngine, RealtimeModel, VADEvent
from ._options import Options, active_options
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    PipelineEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._playout import PlayoutBuffer
from ._ports import JobView, SessionView
from ._replay import REPLAY_ENV, Replayer, ReplayScript, WebSocketReplayer, diff_values
from ._secrets import RedactingFilter, env_secret, mask, protect_secret, redact
from ._stt_stream import BufferedSpeechStream, SpeechEvent, SpeechStream
from ._tools import FunctionTool, ToolResult
from ._transport import BufferedTransport, NullTransport, PacedTransport, Transport, TransportMode
from ._tts_stream import SentenceSynthesisStream, SynthesisStream
from ._turn_detection import EndpointDecision, Endpointing, TextTurnDetector, TurnDetector
from ._vad import EnergyVAD, UtteranceCollector
from .hookspecs import hookimpl, hookspec


def installed_vad() -> VAD | None:
    """A new instance of the best VAD the installed plugins offer (``agentsession_vads``); ``None`` if none."""
    vad = best_vad(create_manager())
    return vad if isinstance(vad, VAD) else None


def transport_modes() -> dict[str, TransportMode]:
    """Every transport mode the installed plugins provide, by name (what the command line offers)."""
    from ._modes import transport_modes as modes

    return modes()

__all__ = [
    "CASSETTE_VERSION", "Cassette", "CassetteWriter", "ConversationLog", "Replayer", "ReplayScript", "TrafficRecord",
    "WebSocketReplayer", "REPLAY_ENV", "diff_values",
    "DEFAULT_MAX_MESSAGE_SIZE", "AudioBacklog", "AudioChunk", "LinkedRealtimeModel", "LinkProtocol", "LinkTap", "Liveness",
    "current_link_taps", "tap_message",
    "ProviderLink", "Request", "abort",
    "AgentAudio", "AgentSessionError", "EVENT_NAMES", "EventName", "EventSink", "JobView", "PipelineEngine",
    "SessionEvent", "SessionView", "AgentTranscript", "AudioConverter", "AudioFrame", "BufferedSpeechStream",
    "BufferedTransport", "ChatContext", "ChatItem", "ChatMessage", "ChatRole", "EndpointDecision", "Endpointing",
    "EnergyVAD", "Error", "EventChannel", "FakeService", "FunctionCall", "FunctionCallOutput", "FunctionTool", "LLM", "ModelError",
    "ModelOptions", "NullTransport", "Options", "PacedTransport", "PipelineEvent", "PlayoutBuffer", "PluginError",
    "RealtimeModel", "Reconnected", "Reconnecting", "RedactingFilter", "Reframer", "Resampler", "ResponseDone",
    "STT", "SUPPORTED_RATES", "SentenceSynthesisStream", "SpeechEvent", "SpeechStream", "SynthesisStream", "TTS",
    "TextTurnDetector", "ToolCall",
    "ToolCallCancelled", "ToolResult", "Transport", "TransportMode", "TurnDetector", "TurnMetrics",
    "EOU_PARTS", "STAGES", "STAGE_LABELS", "STAGE_MEANINGS",
    "UserSpeechStarted", "UserSpeechStopped", "UserTranscript", "UtteranceCollector", "VAD", "VADEvent",
    "PluginInfo", "active_options", "discover_plugins", "env_secret", "example_arguments", "hookimpl", "hookspec", "installed_vad", "mask", "protect_secret", "redact", "transport_modes",
]
