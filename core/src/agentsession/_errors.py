"""Exceptions raised by agentsession."""

from __future__ import annotations


class AgentSessionError(Exception):
    """Base class of every error agentsession raises on purpose."""


class PluginError(AgentSessionError):
    """A plugin could not be loaded, or no plugin provides what was asked for."""


class ModelError(AgentSessionError):
    """A model or provider failed; ``recoverable`` says whether the session can go on."""

    def __init__(self, message: str, *, recoverable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.recoverable = recoverable
        self.code = code
