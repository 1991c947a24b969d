"""Runs plugin notify hooks off the event loop, in order, each implementation isolated."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pluggy

logger = logging.getLogger("agentsession.plugins")


class ObserverDispatcher:
    """One thread per session calls the observers, so a slow one never delays a frame."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._executor: ThreadPoolExecutor | None = None
        self._last: asyncio.Future[None] | None = None

    def has_observers(self, hook: str) -> bool:
        """Whether any plugin implements ``hook``."""
        return bool(getattr(self._pm.hook, hook).get_hookimpls())

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Queue a call of every implementation of ``hook``; returns at once. Call it on the event loop."""
        impls = getattr(self._pm.hook, hook).get_hookimpls()
        if not impls:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="agentsession-observers")
        loop = asyncio.get_running_loop()
        self._last = loop.run_in_executor(self._executor, _call_all, hook, impls, kwargs)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the queued calls, then stop the thread."""
        if self._last is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._last), timeout)
            except (TimeoutError, Exception):
                logger.warning("observers did not finish within %.1f s of close", timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def call_isolated(hook: str, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
    """Call one hook implementation; log (with the plugin's name) and swallow what it raises."""
    try:
        args = {name: kwargs[name] for name in impl.argnames}
        return impl.function(**args)
    except Exception:
        logger.exception("plugin %r raised in %s", impl.plugin_name, hook)
        return None


def _call_all(hook: str, impls: list[pluggy.HookImpl], kwargs: dict[str, Any]) -> None:
    for impl in reversed(impls):  # pluggy's own order: last registered first
        call_isolated(hook, impl, kwargs)
