"""The ``registry`` command-line mode (what ``Options(register=True)`` runs); the worker itself is imported only
when the mode runs, so loading the plugin stays light."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agentsession import AgentSessionError, Transport, TransportMode
from agentsession.plugin import Options, active_options

if TYPE_CHECKING:
    from agentsession.plugin import JobView

    from ._registry_worker import RegistryWorker


class RegistryMode(TransportMode):
    """``python main.py registry [--agent-id A] [--registry-url U] [--port P]``: a worker of VideoSDK's agent
    registry (what ``Options(register=True)`` runs). Jobs run as ``room`` jobs in a warm process pool."""

    def __init__(self) -> None:
        super().__init__(self._no_factory, help="register with VideoSDK's agent registry and take dispatched meetings")
        self.worker: RegistryWorker | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--agent-id", help="the agent's name in the registry (default: Options.agent_id)")
        parser.add_argument("--registry-url", help="the registry's base URL (default: Options.registry_url, "
                                                   "VIDEOSDK_REGISTRY_URL, or asked from VideoSDK's API)")
        parser.add_argument("--host", help="the worker's HTTP endpoint address (default: Options.host)")
        parser.add_argument("--port", type=int, help="the worker's HTTP endpoint port (default: Options.port)")
        parser.add_argument("--max-processes", type=int, help="jobs at most at once (default: Options.max_processes)")

    @staticmethod
    def _no_factory(ctx: JobView) -> Transport:
        raise AgentSessionError("the registry mode runs each job in a pool process as a room job")

    def worker_options(self) -> Options:
        o = self.options
        changes = {name: getattr(o, name) for name in ("agent_id", "registry_url", "host", "port", "max_processes")
                   if getattr(o, name, None) is not None}
        return replace(active_options(), **changes) if changes else active_options()

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        from ._registry import RegistryError
        from ._registry_worker import RegistryWorker

        try:
            self.worker = RegistryWorker(self.worker_options())
        except (AgentSessionError, ValueError) as exc:
            raise AgentSessionError(str(exc)) from None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.worker.drain)  # replaces the worker's: drain, a second one stops
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await self.worker.run()
        except RegistryError as exc:
            raise AgentSessionError(str(exc)) from None
