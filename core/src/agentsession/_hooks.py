"""Calling plugin hooks the pluggy way (``pm.hook.<name>(...)``), each implementation isolated.

Isolation is added once, when a session's plugin manager is made: every plain implementation of a
notify hook or of ``agentsession_wake_up`` is wrapped so that what it raises is logged with the plugin's
name and counts as "no answer". pluggy keeps its own order, its wrappers and ``firstresult``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import pluggy

logger = logging.getLogger("agentsession.plugins")

#: hooks the session calls; collecting hooks (transports, models) are read by ``_manager.provided``
NOTIFY_HOOKS = (
    "agentsession_session_started",
    "agentsession_session_closed",
    "agentsession_user_state_changed",
    "agentsession_agent_state_changed",
    "agentsession_metrics_collected",
)
WAKE_UP = "agentsession_wake_up"

_answered = threading.local()  # the plugin whose implementation answered the last firstresult call


def isolate(pm: pluggy.PluginManager) -> None:
    """Wrap every plain implementation of the session's hooks so that a raising one is logged and skipped."""
    for hook in (*NOTIFY_HOOKS, WAKE_UP):
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.hookwrapper or impl.wrapper or getattr(impl.function, "_agentsession_isolated", False):
                continue
            impl.function = _isolated(hook, impl.plugin_name, impl.function)


def _isolated(hook: str, plugin: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except Exception:
            logger.exception("plugin %r raised in %s", plugin, hook)
            return None
        if result is not None:
            _answered.plugin = plugin
        return result

    call._agentsession_isolated = True  # type: ignore[attr-defined]
    return call


class HookCaller:
    """Calls a session's hooks: notify hooks on one observer thread (a slow observer never delays a
    frame), in order; ``wake_up`` on the event loop, as a true ``firstresult`` hook."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        isolate(pm)
        self._pm = pm
        self._thread: _ObserverThread | None = None

    def implemented(self, hook: str) -> bool:
        """Whether any plugin implements ``hook``."""
        return bool(getattr(self._pm.hook, hook).get_hookimpls())

    def call_now(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on the calling thread (``session_started`` runs on the loop, before ``on_enter``)."""
        try:
            getattr(self._pm.hook, hook)(**kwargs)
        except Exception:  # a hook wrapper that raised
            logger.exception("a wrapper of %s raised", hook)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Queue a call of ``hook`` on the observer thread; returns at once. Call it on the event loop."""
        if not self.implemented(hook):
            return
        if self._thread is None:
            self._thread = _ObserverThread()
        self._thread.submit(functools.partial(self.call_now, hook, **kwargs))

    async def wake_up(self, **kwargs: Any) -> bool:
        """Call ``agentsession_wake_up`` until an implementation handles it; whether one did.

        pluggy's ``firstresult``: a sync implementation handles it by returning a non-``None`` value other
        than ``False``. An awaitable result is awaited; it handled the wake-up unless it resolves to ``False``
        (a coroutine that returns nothing spoke, so it handled it), and then the implementations after it
        are tried.
        """
        caller = self._pm.hook.agentsession_wake_up
        tried: list[object] = []
        while True:
            _answered.plugin = None
            result = caller(**kwargs)
            plugin = self._pm.get_plugin(_answered.plugin) if _answered.plugin else None
            if inspect.isawaitable(result):
                try:
                    result = await result
                except Exception:
                    logger.exception("plugin %r raised in %s", _answered.plugin, WAKE_UP)
                    result = False
                if result is not False:
                    return True
            elif result is not None and result is not False:
                return True
            if plugin is None:
                return False
            tried.append(plugin)
            caller = self._pm.subset_hook_caller(WAKE_UP, remove_plugins=tried)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the queued notifications, then let the observer thread go."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        # waited for in an executor (bounded), so a virtual-clock loop knows real work is pending
        if not await asyncio.get_running_loop().run_in_executor(None, thread.drain, timeout):
            logger.warning("observers did not finish within %.1f s of close; their thread is abandoned", timeout)
        thread.stop()


class _ObserverThread:
    """One daemon thread running calls in order: a hung observer never blocks the process from exiting."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="agentsession-observers", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], Any]) -> None:
        self._calls.put(call)

    def drain(self, timeout: float) -> bool:
        """Wait until what was submitted so far has run (at most ``timeout`` seconds); whether it has."""
        done = threading.Event()
        self._calls.put(done.set)
        return done.wait(timeout)

    def stop(self) -> None:
        self._calls.put(None)

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                call()
            except Exception:
                logger.exception("observer call failed")
