"""``Options``: how a ``WorkerJob`` runs when it is one of many (VideoSDK's ``WorkerOptions`` names)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from ._secrets import env_secret, mask, protect_secret

logger = logging.getLogger("agentsession.worker")

TOKEN_ENV = "VIDEOSDK_AUTH_TOKEN"

#: VideoSDK ``Options`` fields this framework has no feature for, with VideoSDK's defaults (see ``init_lenient``)
UNSUPPORTED_OPTIONS: dict[str, Any] = {
    "executor_type": None, "initialize_timeout": 10.0, "close_timeout": 60.0, "permissions": None,
}
_warned: set[str] = set()


def init_lenient(obj: Any, fields: dict[str, Any], unsupported: dict[str, Any]) -> None:
    """Initialise dataclass ``obj`` from keyword ``fields`` as VideoSDK's option classes do: its own fields are
    set (the others to their defaults); the names in ``unsupported`` (VideoSDK's fields this framework has no
    feature for, with their defaults) are kept in ``obj.unsupported`` and logged once per process when set to
    something else than the default; any other name is logged once. Never a ``TypeError``."""
    owner = type(obj).__name__
    for f in dataclasses.fields(obj):
        if f.name in fields:
            value = fields.pop(f.name)
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = f.default
        setattr(obj, f.name, value)
    obj.unsupported = keep_unsupported(owner, fields, unsupported)


def keep_unsupported(owner: str, fields: dict[str, Any], unsupported: dict[str, Any]) -> dict[str, Any]:
    """The ``fields`` named in ``unsupported``, logging the non-default ones and unknown names once."""
    kept: dict[str, Any] = {}
    for name, value in fields.items():
        key = f"{owner}.{name}"
        if name in unsupported:
            kept[name] = value
            if value == unsupported[name] or key in _warned:
                continue
            logger.warning("%s(%s=...) is not supported by agentsession: ignored", owner, name)
        elif key not in _warned:
            logger.warning("%s has no field %r: ignored", owner, name)
        _warned.add(key)
    return kept

REGISTRY_URL_ENV = "VIDEOSDK_REGISTRY_URL"


@dataclass(init=False)
class Options:
    """``WorkerJob(entrypoint, jobctx, options=Options(...))``; keyword arguments only. VideoSDK's fields we have
    no feature for (``executor_type``, ``initialize_timeout``, ``close_timeout``, ``permissions``) are accepted
    and kept in ``unsupported`` (a non-default value is logged once); an unknown name is logged, never an error.

    With ``register=True`` the program is a *worker*: it registers with VideoSDK's agent registry (the
    ``agentsession-videosdk`` plugin's ``registry`` mode) and runs each meeting the registry dispatches to it
    in a process of a warm pool. Without it only ``log_level`` matters (a mode named on the command line
    always wins, so ``python main.py console`` still works on a worker's code).
    """

    #: register with the agent registry and take dispatched jobs (``python main.py`` with no mode)
    register: bool = False
    #: the agent's name in the registry: jobs for this agent go to workers registered with it
    agent_id: str = "VideoSDKAgent"
    #: the VideoSDK token (registry and meetings); default ``VIDEOSDK_AUTH_TOKEN``. Never logged.
    auth_token: str | None = field(default=None, repr=False)
    #: jobs (pool processes) at most at once
    max_processes: int = 10
    #: refuse jobs when load (running jobs / ``max_processes``, blended with CPU) reaches this
    load_threshold: float = 0.75
    #: processes kept started and idle, so a job starts without paying for a process start and imports
    num_idle_processes: int = 2
    log_level: str = "INFO"
    #: the worker's HTTP endpoint (``/health``, ``/ready``, ``/load``, ``/metrics``); port 0 picks one
    host: str = "0.0.0.0"
    port: int = 8081
    #: the registry's websocket base URL (``<url>/agent``); ``None``: ``VIDEOSDK_REGISTRY_URL``, else asked from
    #: VideoSDK's API (``POST https://<signaling_base_url>/v2/agent/init-config``) as VideoSDK's own client does
    registry_url: str | None = None
    signaling_base_url: str = "api.videosdk.live"
    #: a job whose process grows past this many MB (resident) is killed and reported failed; 0: no limit
    memory_limit_mb: float = 0.0
    #: a job process over this many MB is logged once
    memory_warn_mb: float = 500.0
    #: jobs a pool process runs before it is replaced (1: a fresh process per job, VideoSDK's default)
    jobs_per_process: int = 1
    #: blend machine CPU into the load (load = max(jobs / max_processes, CPU busy fraction))
    cpu_load: bool = True
    #: SIGTERM: stop taking jobs, give the running ones this long to end, then stop them
    drain_timeout: float = 60.0
    #: seconds between status updates (load, job count) sent to the registry while nothing changes
    ping_interval: float = 30.0
    #: connection attempts to the registry in a row before the worker gives up (backoff up to 10 s each)
    max_retry: int = 16

    def __init__(self, **fields: Any) -> None:
        self.unsupported: dict[str, Any] = {}
        init_lenient(self, fields, UNSUPPORTED_OPTIONS)
        self._check()

    def _check(self) -> None:
        if self.auth_token is None:
            self.auth_token = env_secret(TOKEN_ENV)
        protect_secret(self.auth_token)
        if self.registry_url is None:
            self.registry_url = os.environ.get(REGISTRY_URL_ENV) or None
        if self.max_processes < 1:
            raise ValueError("max_processes must be at least 1")
        if not 0 < self.load_threshold <= 1:
            raise ValueError("load_threshold must be in (0, 1]")
        if self.num_idle_processes < 0:
            raise ValueError("num_idle_processes must be 0 or more")
        if self.jobs_per_process < 1:
            raise ValueError("jobs_per_process must be at least 1")
        self.log_level = self.log_level.upper()

    def __repr__(self) -> str:
        return (
            f"Options(register={self.register}, agent_id={self.agent_id!r}, auth_token={mask(self.auth_token)!r}, "
            f"max_processes={self.max_processes}, load_threshold={self.load_threshold}, "
            f"num_idle_processes={self.num_idle_processes}, log_level={self.log_level!r}, host={self.host!r}, "
            f"port={self.port}, registry_url={self.registry_url!r})"
        )


_active: Options | None = None


def active_options() -> Options:
    """The ``Options`` of the ``WorkerJob`` running in this process (defaults when there is none)."""
    return _active if _active is not None else Options()


def set_active_options(options: Options | None) -> None:
    global _active
    _active = options
