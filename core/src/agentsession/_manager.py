"""Plugin discovery: entry points in group ``agentsession``, loaded once per process."""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from ._errors import PluginError

logger = logging.getLogger("agentsession.plugins")

ENTRY_POINT_GROUP = "agentsession"
DISABLE_ENV = "AGENTSESSION_DISABLE_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """One entry point and what became of it."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    module: object | None = None
    error: str | None = None
    blocked: bool = False


_lock = threading.Lock()
_loaded: dict[str, PluginInfo] | None = None


def disabled_plugins() -> set[str]:
    """Names listed in ``AGENTSESSION_DISABLE_PLUGINS`` (comma-separated)."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def discover(*, reload: bool = False) -> list[PluginInfo]:
    """Load every entry point once per process; blocked ones are listed, not imported."""
    global _loaded
    blocked = disabled_plugins()
    with _lock:
        if _loaded is None or reload:
            found: dict[str, PluginInfo] = {}
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else None
                version = ep.dist.version if ep.dist is not None else None
                if ep.name in blocked:
                    found[ep.name] = PluginInfo(ep.name, ep.value, dist, version, blocked=True)
                    continue
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not take the process down here
                    error = f"{type(exc).__name__}: {exc}"
                    found[ep.name] = PluginInfo(ep.name, ep.value, dist, version, error=error)
                else:
                    found[ep.name] = PluginInfo(ep.name, ep.value, dist, version, module=module)
            _loaded = found
        loaded = _loaded
    return [
        PluginInfo(p.name, p.value, p.distribution, p.version, blocked=True)
        if p.name in blocked
        else p
        for p in loaded.values()
    ]


_BUILTINS: list[ModuleType] = []  # core's own plugin (``_builtin``), registered when ``agentsession`` is imported


def register_builtin(module: ModuleType) -> None:
    """Core's own hook implementations (file mode, replay, the parrot, the energy VAD): in every manager, first.
    ``_builtin`` calls this on import; ``agentsession/__init__`` imports it, so no module below needs to."""
    if module not in _BUILTINS:
        _BUILTINS.append(module)


_shared: tuple[tuple[object, ...], pluggy.PluginManager] | None = None


def create_manager(extra: list[object] | tuple[object, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with core's built-ins, every discovered entry point and ``extra`` plugins.

    Without ``extra``, one manager is shared by every caller (every session without plugins of its own) for as
    long as the same plugins, with the same hook functions, are installed and enabled: a manager is ~60 objects
    that every full garbage collection scans, per session, and building one is half of a session's start.
    Raises ``PluginError`` for an entry point that failed to import (unless it is disabled).
    """
    global _shared
    if extra:
        return _build_manager(extra)
    # what it was built from, by identity: a plugin enabled, disabled or reloaded, or a hook function replaced
    # (a test's monkeypatch), makes a new one
    key = tuple(_hook_objects([*_BUILTINS, *(info.module for info in discover() if not info.blocked)]))
    shared = _shared
    if shared is not None and len(shared[0]) == len(key) and all(a is b for a, b in zip(shared[0], key, strict=True)):
        return shared[1]
    pm = _build_manager(())
    _shared = (key, pm)
    return pm


def _hook_objects(plugins: list[object]) -> Iterator[object]:
    for plugin in plugins:
        yield plugin
        if isinstance(plugin, ModuleType):
            yield from (value for name, value in vars(plugin).items() if name.startswith("agentsession_"))


def _build_manager(extra: list[object] | tuple[object, ...]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for builtin in _BUILTINS:
        pm.register(builtin, name="agentsession.builtin")
    for info in discover():
        if info.blocked:
            continue
        if info.error is not None:
            raise PluginError(
                f"plugin entry point {info.name!r} ({info.value}) of distribution "
                f"{info.distribution or '?'} failed to load: {info.error}. "
                f"Fix or uninstall it, or set {DISABLE_ENV}={info.name}"
            )
        if pm.is_registered(info.module):
            continue
        pm.register(info.module, name=info.name)
    blocked = disabled_plugins()
    for plugin in extra:
        name = _plugin_name(plugin)
        if name in blocked:
            continue
        pm.register(plugin, name=name if pm.get_plugin(name) is None else None)
    return pm


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "name", None) or type(plugin).__name__




def provided(pm: pluggy.PluginManager, hook: str) -> list[tuple[str, str, Any]]:
    """``(plugin, name, value)`` for every entry of a collecting hook (``agentsession_transports``,
    ``agentsession_models``), in registration order; a plugin that fails or answers badly is logged and skipped."""
    found: list[tuple[str, str, Any]] = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        try:
            answer = impl.function()
        except Exception:
            logger.exception("plugin %r failed in %s", impl.plugin_name, hook)
            continue
        if not isinstance(answer, dict):
            logger.error("plugin %r: %s must return a dict", impl.plugin_name, hook)
            continue
        found += [(impl.plugin_name, name, value) for name, value in answer.items()]
    return found


def available_models() -> dict[str, Callable[..., Any]]:
    """Every model factory the installed plugins provide (``agentsession_models``), by name."""
    models: dict[str, Callable[..., Any]] = {}
    for _, name, factory in provided(create_manager(), "agentsession_models"):
        models.setdefault(name, factory)
    return models


def create_model(name: str, **options: Any) -> Any:
    """Build a model by name from config, e.g. ``create_model("openai-realtime", voice="alloy")``."""
    models = available_models()
    if name not in models:
        installed = ", ".join(sorted(models)) or "none"
        raise PluginError(f"no installed plugin provides the model {name!r} (installed: {installed})")
    return models[name](**options)


def best_vad(pm: pluggy.PluginManager) -> Any:
    """A new instance of the installed VAD of highest rank (``agentsession_vads``); ``None`` if none."""
    ranked = [(value[0], name, value[1]) for _, name, value in provided(pm, "agentsession_vads")
              if isinstance(value, tuple) and len(value) == 2]
    for _, name, factory in sorted(ranked, key=lambda r: -r[0]):
        try:
            return factory()
        except Exception:
            logger.exception("the VAD %r could not be made; trying the next", name)
    return None
