"""The ``agentsession`` entry point: ``CartesiaTTS`` by name (``cartesia-tts``), for pipelines built from configuration.

The factory imports the Cartesia SDK when a model is built, so discovering the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

from agentsession.plugin import hookimpl


def cartesia_tts(**options: Any) -> Any:
    """Build a ``CartesiaTTS`` (see its arguments)."""
    from agentsession_cartesia import CartesiaTTS

    return CartesiaTTS(**options)


@hookimpl
def agentsession_models() -> dict[str, Any]:
    return {"cartesia-tts": cartesia_tts}


def cartesia_fakes() -> Any:
    """The scripted Cartesia server ``agentsession fakes`` serves (``agentsession_cartesia.fake.CartesiaFakes``)."""
    from .fake import CartesiaFakes

    return CartesiaFakes()


@hookimpl
def agentsession_fakes() -> dict[str, Any]:
    return {"cartesia": cartesia_fakes}
