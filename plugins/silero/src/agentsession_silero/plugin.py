"""The ``silero`` entry point (group ``agentsession``): advertises ``SileroVAD`` as the best VAD installed.

Importing this module is cheap: onnxruntime and the model load when the first ``SileroVAD`` is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentsession import hookimpl

from ._vad import create_vad

__all__ = ["agentsession_vads", "create_vad"]


@hookimpl
def agentsession_vads() -> dict[str, tuple[int, Callable[..., Any]]]:
    return {"silero": (100, create_vad)}
