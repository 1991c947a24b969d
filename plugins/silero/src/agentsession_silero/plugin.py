"""The ``silero`` entry point (group ``agentsession``).

It implements no hook yet: core has no hookspec that advertises VADs. The factory a session can call for
"the best VAD installed" is ``agentsession_silero.create_vad``; importing this module is cheap (onnxruntime
and the model load when the first ``SileroVAD`` is made).
"""

from __future__ import annotations

from ._vad import create_vad

__all__ = ["create_vad"]
