"""agentsession: a minimal, pluggable core for real-time voice AI agents.

Everything a user or plugin author needs is importable from here.
"""

from __future__ import annotations

from ._agent import Agent
from ._audio import SUPPORTED_RATES, AudioConverter, AudioFrame, Reframer, Resampler
from ._chat import ChatContext, ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from ._clock import VirtualClockEventLoop, run_virtual
from ._emitter import EventEmitter
from ._errors import AgentSessionError, ModelError, PluginError
from ._file_transport import FileMode, FileTransport
from ._manager import available_models, create_model
from ._metrics import TurnMetrics
from ._models import LLM, STT, TTS, VAD, EventChannel, ModelOptions, RealtimeModel, VADEvent
from ._parrot import ParrotModel
from ._pipeline_events import (
    AgentAudio,
    AgentTranscript,
    Error,
    PipelineEvent,
    ResponseDone,
    ToolCall,
    ToolCallCancelled,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._pipelines import CascadingPipeline, ConversationFlow, Pipeline, RealTimePipeline
from ._playout import PlayoutBuffer
from ._processes import program_command
from ._secrets import RedactingFilter, env_secret, mask, protect_secret, redact
from ._session import AgentSession, RunResult
from ._speech import SpeechHandle
from ._states import AgentState, UserState
from ._tools import FunctionTool, ToolError, ToolResult, function_tool
from ._transport import BufferedTransport, NullTransport, PacedTransport, Transport, TransportMode
from ._vad import EnergyVAD
from ._worker import JobContext, RoomOptions, WorkerJob
from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = [
    "LLM", "STT", "SUPPORTED_RATES", "TTS", "VAD",
    "Agent", "AgentAudio", "AgentSession", "AgentSessionError", "AgentState", "AgentTranscript",
    "AudioConverter", "AudioFrame", "BufferedTransport", "CascadingPipeline", "ChatContext", "ChatItem", "ChatMessage", "ChatRole",
    "ConversationFlow", "EnergyVAD", "Error", "EventChannel", "EventEmitter", "FileMode", "FileTransport",
    "FunctionCall", "FunctionCallOutput", "FunctionTool", "JobContext", "ModelError", "ModelOptions",
    "NullTransport", "PacedTransport", "ParrotModel", "Pipeline", "PipelineEvent", "PlayoutBuffer",
    "PluginError", "RealTimePipeline", "RealtimeModel", "RedactingFilter", "Reframer", "Resampler",
    "ResponseDone", "RoomOptions", "RunResult", "SpeechHandle", "ToolCall", "ToolCallCancelled", "ToolError", "ToolResult",
    "Transport", "TransportMode", "TurnMetrics", "UserSpeechStarted", "UserSpeechStopped", "UserState",
    "UserTranscript", "VADEvent", "VirtualClockEventLoop", "WorkerJob", "available_models", "create_model", "env_secret", "function_tool",
    "hookimpl", "hookspec", "mask", "program_command", "protect_secret", "redact", "run_virtual",
]
