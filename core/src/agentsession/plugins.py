"""``from agentsession.plugins import OpenAIRealtime, DeepgramSTT, SileroVAD``: VideoSDK 1.0's provider
namespace (``videosdk.agents.plugins``), resolved through the installed plugins.

A name is looked up, when first imported, among the exports of the plugins installed through entry points
(group ``agentsession``): a plugin's ``agentsession_exports()`` hook, or else its package's ``__all__``. VideoSDK's
provider names are mapped to the distribution that provides them here, so only that plugin is imported, and a
missing one is an ``ImportError`` saying what to install. This is for agent writers; plugin authors import
from ``agentsession.plugin`` (singular).
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

import pluggy

from . import hookspecs
from ._manager import PluginInfo, discover

logger = logging.getLogger("agentsession.plugins")

#: VideoSDK's provider names -> the distribution that provides them here
PROVIDERS: dict[str, str] = {
    **dict.fromkeys(("OpenAILLM", "OpenAIRealtime", "OpenAIRealtimeConfig", "OpenAISTT", "OpenAITTS"),
                    "agentsession-openai"),
    **dict.fromkeys(("GeminiRealtime", "GeminiLiveConfig", "GeminiLLM", "GoogleLLM", "GoogleSTT", "GoogleTTS",
                     "GoogleVoiceConfig", "VertexAIConfig", "VoiceActivityConfig"), "agentsession-gemini"),
    **dict.fromkeys(("DeepgramSTT", "DeepgramSTTV2", "DeepgramTTS"), "agentsession-deepgram"),
    **dict.fromkeys(("CartesiaSTT", "CartesiaTTS", "GenerationConfig"), "agentsession-cartesia"),
    **dict.fromkeys(("ElevenLabsSTT", "ElevenLabsTTS"), "agentsession-elevenlabs"),
    "AnthropicLLM": "agentsession-anthropic",
    "SileroVAD": "agentsession-silero",
    **dict.fromkeys(("TurnDetector", "VideoSDKTurnDetector", "NamoTurnDetectorV1", "pre_download_model",
                     "pre_download_namo_turn_v1_model", "pre_download_videosdk_model"),
                    "agentsession-turn-detector"),
}

_exports: dict[str, dict[str, Any]] = {}  # per entry point name


def _normal(dist: str | None) -> str:
    return re.sub(r"[-_.]+", "-", dist or "").lower()


def _plugin_exports(info: PluginInfo) -> dict[str, Any]:
    """What one plugin offers: its ``agentsession_exports()`` hook, or its package's ``__all__``."""
    cached = _exports.get(info.name)
    if cached is not None:
        return cached
    found: dict[str, Any] = {}
    if info.module is not None:
        pm = pluggy.PluginManager("agentsession")
        pm.add_hookspecs(hookspecs)
        pm.register(info.module, name=info.name)
        for result in pm.hook.agentsession_exports():
            found.update(result)
    if not found:
        package = importlib.import_module(re.split(r"[.:]", info.value, maxsplit=1)[0])
        found = {n: getattr(package, n) for n in getattr(package, "__all__", ()) if hasattr(package, n)}
    _exports[info.name] = found
    return found


def _resolve(name: str) -> Any:
    wanted = PROVIDERS.get(name)
    plugins = [p for p in discover() if wanted is None or _normal(p.distribution) == wanted]
    if wanted is not None and not plugins:
        raise ImportError(f"{name} is in the {wanted} package, which is not installed: pip install {wanted}",
                          name=f"{__name__}.{name}")
    for info in plugins:
        try:
            exports = _plugin_exports(info)
        except Exception as exc:  # noqa: BLE001 - a broken plugin: said below, or skipped in a search of all
            if wanted is not None:
                raise ImportError(f"{name}: {info.distribution} is installed but failed to import: {exc}",
                                  name=f"{__name__}.{name}") from exc
            logger.debug("plugin %s skipped while looking for %s: %s", info.name, name, exc)
            continue
        if name in exports:
            return exports[name]
    if wanted is not None:
        raise ImportError(f"{wanted} is installed but does not provide {name} (upgrade it?)",
                          name=f"{__name__}.{name}")
    raise AttributeError(f"no installed agentsession plugin provides {name!r} (VideoSDK's provider names: "
                         f"{', '.join(sorted(PROVIDERS))})")


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    value = _resolve(name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    names: set[str] = set()
    for info in discover():
        try:
            names.update(_plugin_exports(info))
        except Exception:  # noqa: BLE001, S112 - a broken plugin offers nothing
            continue
    return sorted(names)
