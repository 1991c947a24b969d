"""The ``turn_detector`` entry point (group ``agentsession``): offers ``TurnDetector`` and ``pre_download_model`` to
``from agentsession.plugins import TurnDetector, pre_download_model`` (VideoSDK's provider namespace).

Importing this module is cheap: the detector's module (and onnxruntime, with the model) load when a name is asked for.
"""

from __future__ import annotations

from typing import Any

from agentsession import hookimpl

__all__ = ["agentsession_exports"]


@hookimpl
def agentsession_exports() -> dict[str, Any]:
    from ._detector import TurnDetector, pre_download_model

    return {"TurnDetector": TurnDetector, "pre_download_model": pre_download_model}
