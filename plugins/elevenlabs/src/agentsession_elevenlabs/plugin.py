"""The ``agentsession`` entry point: ``ElevenLabsTTS`` by name, for pipelines built from configuration.

The factory imports the ElevenLabs SDK when a model is built, so discovering the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl


def _elevenlabs_tts(**options: Any) -> Any:
    """Build an ``ElevenLabsTTS`` (see its arguments)."""
    from agentsession_elevenlabs import ElevenLabsTTS

    return ElevenLabsTTS(**options)


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"elevenlabs-tts": _elevenlabs_tts}
