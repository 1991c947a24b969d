"""Samples of the OpenAI Realtime server events ``OpenAIRealtime`` acts on (one well-formed event of each type it
parses, and malformed ones), for the tests and benches that hold its parse to the SDK's."""

from __future__ import annotations

from typing import Any

_AUDIO_OUT = {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}}
_ERROR = {"type": "invalid_request_error", "code": "bad", "message": "no", "param": None, "event_id": "c1"}

#: one of each type the plugin parses, in its order; one carries a field a newer API might add
WELL_FORMED: list[dict[str, Any]] = [
    {"type": "input_audio_buffer.speech_started", "event_id": "e1", "audio_start_ms": 1000, "item_id": "i1"},
    {"type": "input_audio_buffer.speech_stopped", "event_id": "e2", "audio_end_ms": 2500, "item_id": "i1"},
    {"type": "session.updated", "event_id": "e3",
     "session": {"type": "realtime", "model": "gpt-realtime", "output_modalities": ["audio"], "instructions": "hi"}},
    {"type": "conversation.item.input_audio_transcription.delta", "event_id": "e4", "item_id": "i1",
     "content_index": 0, "delta": "hel"},
    {"type": "conversation.item.input_audio_transcription.completed", "event_id": "e5", "item_id": "i1",
     "content_index": 0, "transcript": "hello", "usage": {"type": "duration", "seconds": 1.5}},
    {"type": "conversation.item.input_audio_transcription.failed", "event_id": "e6", "item_id": "i1",
     "content_index": 0, "error": {"type": "transcription_error", "code": "audio", "message": "bad", "param": None}},
    {"type": "response.created", "event_id": "e7",
     "response": {"id": "r1", "object": "realtime.response", "status": "in_progress", "output": [],
                  "metadata": {"agentsession_response_id": "s1"}, "audio": _AUDIO_OUT,
                  "added_later": [1, 2]}},  # a field a newer API might send
    {"type": "response.output_audio_transcript.done", "event_id": "e8", "response_id": "r1", "item_id": "i2",
     "output_index": 0, "content_index": 0, "transcript": "hi there"},
    {"type": "response.output_text.done", "event_id": "e9", "response_id": "r1", "item_id": "i2",
     "output_index": 0, "content_index": 0, "text": "hi there"},
    {"type": "response.function_call_arguments.done", "event_id": "e10", "response_id": "r1", "item_id": "i3",
     "output_index": 1, "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
    {"type": "response.output_item.done", "event_id": "e11", "response_id": "r1", "output_index": 1,
     "item": {"id": "i3", "object": "realtime.item", "type": "function_call", "status": "completed",
              "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'}},
    {"type": "response.done", "event_id": "e12",
     "response": {"id": "r1", "object": "realtime.response", "status": "completed", "audio": _AUDIO_OUT,
                  "output": [{"id": "i2", "object": "realtime.item", "type": "message", "role": "assistant",
                              "status": "completed", "content": [{"type": "output_audio", "transcript": "hi"}]}],
                  "usage": {"total_tokens": 9, "input_tokens": 4, "output_tokens": 5,
                            "input_token_details": {"text_tokens": 1, "audio_tokens": 3, "cached_tokens": 0},
                            "output_token_details": {"text_tokens": 1, "audio_tokens": 4}}}},
    {"type": "error", "event_id": "e13", "error": _ERROR},
]

#: events the SDK's classes refuse: wrong types, a missing body, an unknown status
MALFORMED: list[dict[str, Any]] = [
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": "soon", "item_id": "i1"},
    {"type": "response.done", "event_id": "e12", "response": "gone"},
    {"type": "error", "error": {"message": "no type, no code"}},
    {"type": "response.created", "event_id": "e7", "response": {"id": "r1", "status": "thinking", "output": 3}},
]
