"""What the imports built, kept out of the garbage collector's full passes."""

from __future__ import annotations

import gc
import os

#: ``AGENTSESSION_GC_FREEZE=0`` keeps the heap as it is (no collection, no freeze at the first session's start)
ENV = "AGENTSESSION_GC_FREEZE"

_first_start_done = False


def freeze_heap() -> None:
    """Collect, then move every object the collector tracks into its permanent generation (``gc.freeze()``).

    Modules, classes and the provider SDKs' schemas (an SDK brings ~100,000 tracked objects) live as long as the
    process; a full collection that scans them stops the event loop, and every session's audio, for ~50 ms. Frozen,
    they are skipped: a full pass scans only what came after. Objects that are plain garbage then are collected
    first; any that become garbage later are freed by reference counting, but not if they form a cycle."""
    if os.environ.get(ENV, "1").strip() == "0":
        return
    gc.collect()
    gc.freeze()


def freeze_heap_at_first_start() -> None:
    """``freeze_heap()`` once per process, when its first session starts (its plugins and SDKs imported, no
    session's objects made yet): a process that embeds ``AgentSession`` gets what the worker does before it runs.
    Costs one collection then, ~50 ms with an SDK loaded."""
    global _first_start_done
    if not _first_start_done:
        _first_start_done = True
        freeze_heap()
