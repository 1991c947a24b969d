"""The ``agentsession`` entry point: ``DeepgramSTT`` by name (``deepgram-stt``), for pipelines built from configuration.

The factory imports the Deepgram SDK when a model is built, so discovering the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

from agentsession.plugin import hookimpl


def deepgram_stt(**options: Any) -> Any:
    """Build a ``DeepgramSTT`` (see its arguments)."""
    from agentsession_deepgram import DeepgramSTT

    return DeepgramSTT(**options)


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"deepgram-stt": deepgram_stt}


def deepgram_fakes() -> Any:
    """The scripted Deepgram server ``agentsession fakes`` serves (``agentsession_deepgram.fake.DeepgramFakes``)."""
    from .fake import DeepgramFakes

    return DeepgramFakes()


@hookimpl
def agentsession_fakes() -> dict[str, Any]:
    return {"deepgram": deepgram_fakes}
