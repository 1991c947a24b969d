"""agentsession: a minimal, pluggable core for real-time voice AI agents.

Everything a user or plugin author needs is importable from here.
"""

from __future__ import annotations

from . import _builtin  # noqa: F401 - core's own plugin (file mode, replay, ...) registers itself
from ._agent import Agent
from ._audio import SUPPORTED_RATES, AudioConverter, AudioFrame, Reframer, Resampler
from ._background_audio import BackgroundAudioHandlerConfig
from ._cascade import Cascade, ConversationFlow
from ._chat import (
    AgentConfigUpdate,
    AgentHandoff,
    ChatContent,
    ChatContext,
    ChatItem,
    ChatMessage,
    ChatRole,
    FunctionCall,
    FunctionCallOutput,
    ReadOnlyChatContext,
)
from ._clock import VirtualClockEventLoop, run_virtual
from ._context_window import ContextWindow
from ._emitter import EventEmitter
from ._errors import AgentSessionError, ModelError, PluginError
from ._events import EVENT_NAMES, EventName, SessionEvent
from ._fallback import FallbackLLM, FallbackStats, FallbackSTT, FallbackTTS
from ._file_transport import FileMode, FileTransport
from ._job import JobContext, RoomOptions
from ._manager import available_models, create_model
from ._mcp import MCPServer, MCPServerHTTP, MCPServerStdio
from ._metrics import TurnMetrics
from ._models import LLM, STT, TTS, VAD, EventChannel, ModelOptions, PipelineEngine, RealtimeModel, VADEvent
from ._options import Options
from ._parrot import ParrotModel
from ._pipeline import CascadingPipeline, EOUConfig, InterruptConfig, Pipeline, RealTimePipeline
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
from ._pipeline_hooks import PipelineHooks, run_stt, run_tts
from ._playout import PlayoutBuffer
from ._pool import JobResult, JobSpec, PooledProcess, PoolFull, PoolJob, ProcessPool
from ._processes import program_command
from ._provider_compat import (
    FlushMarker,
    FunctionToolInfo,
    LLMResponse,
    SpeechData,
    SpeechEventType,
    STTResponse,
    VADData,
    VADEventType,
    VADResponse,
    build_openai_schema,
    get_tool_info,
    is_function_tool,
    segment_text,
)
from ._secrets import RedactingFilter, env_secret, mask, protect_secret, redact
from ._session import AgentSession, RunResult
from ._speech import SpeechHandle
from ._speech import SpeechHandle as UtteranceHandle
from ._states import AgentState, UserState
from ._stt_stream import BufferedSpeechStream, SpeechEvent, SpeechStream
from ._tools import (
    MAX_OUTPUT,
    FunctionTool,
    RawFunctionTool,
    ToolError,
    ToolResult,
    ToolThreads,
    function_tool,
    tool_threads,
)
from ._transport import BufferedTransport, NullTransport, PacedTransport, Transport, TransportMode
from ._tts_stream import SentenceSynthesisStream, SynthesisStream
from ._turn_detection import EndpointDecision, Endpointing, TextTurnDetector, TurnDetector
from ._vad import EnergyVAD, UtteranceCollector
from ._worker import WorkerJob
from ._worker_http import WorkerHTTPServer
from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = [
    "Agent", "AgentAudio", "BackgroundAudioHandlerConfig", "Cascade", "EOUConfig", "EVENT_NAMES", "EventName", "InterruptConfig", "PipelineEngine",
    "PipelineHooks", "SessionEvent", "UtteranceHandle", "run_stt", "run_tts", "AgentSession", "AgentSessionError", "AgentState", "AgentTranscript", "AudioConverter",
    "AudioFrame", "BufferedSpeechStream", "BufferedTransport", "CascadingPipeline", "ChatContext", "ChatItem",
    "ChatMessage", "ChatRole", "ConversationFlow", "EndpointDecision", "Endpointing", "EnergyVAD", "Error",
    "EventChannel", "EventEmitter", "FallbackLLM", "FallbackSTT", "FallbackStats", "FallbackTTS", "FileMode", "FileTransport", "FunctionCall", "FunctionCallOutput",
    "FunctionTool", "JobContext", "JobResult", "JobSpec", "LLM", "MAX_OUTPUT", "MCPServer", "MCPServerHTTP", "MCPServerStdio", "ModelError", "ModelOptions",
    "NullTransport", "Options", "PacedTransport", "ParrotModel", "Pipeline", "PipelineEvent", "PlayoutBuffer",
    "PluginError", "PoolFull", "PoolJob", "PooledProcess", "ProcessPool", "RawFunctionTool", "RealTimePipeline", "RealtimeModel", "Reconnected", "Reconnecting",
    "RedactingFilter", "Reframer", "Resampler", "ResponseDone", "RoomOptions", "RunResult", "STT", "SUPPORTED_RATES",
    "SentenceSynthesisStream", "SpeechEvent", "SpeechHandle", "SpeechStream", "SynthesisStream", "TTS",
    "TextTurnDetector", "ToolCall", "ToolCallCancelled",
    "ToolError", "ToolResult", "ToolThreads", "Transport", "TransportMode", "TurnDetector", "TurnMetrics",
    "UserSpeechStarted", "UserSpeechStopped", "UserState", "UserTranscript", "UtteranceCollector", "VAD", "VADEvent",
    "VirtualClockEventLoop", "WorkerHTTPServer", "WorkerJob", "available_models", "create_model", "env_secret",
    "function_tool", "hookimpl", "hookspec", "mask", "program_command", "protect_secret", "redact", "run_virtual",
    "tool_threads",
]

# VideoSDK 1.0 names (``videosdk.agents``) that have a meaning here
__all__ += [
    "AgentConfigUpdate", "AgentHandoff", "ChatContent", "ContextWindow", "FlushMarker", "LLMResponse", "ReadOnlyChatContext",
    "STTResponse", "SpeechData", "SpeechEventType", "VADData", "VADEventType", "VADResponse", "FunctionToolInfo",
    "build_openai_schema", "get_tool_info", "is_function_tool", "segment_text",
]
