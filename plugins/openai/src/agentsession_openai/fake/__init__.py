"""Local OpenAI servers that speak the real wire protocols on loopback (Realtime websocket, REST chat,
transcription, speech), for tests and for ``agentsession fakes``."""
