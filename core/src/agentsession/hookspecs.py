"""The hooks a plugin can implement (DESIGN.md section 3).

A plugin is a plain module (or object) with functions marked ``@hookimpl`` and is found through an entry
point in group ``agentsession``. The session calls hooks the pluggy way (``pm.hook.<name>(...)``), so
pluggy's order (last registered first, ``tryfirst``/``trylast``), wrappers (``wrapper=True``) and
``firstresult`` hold; an implementation that raises is logged with its plugin's name and skipped. Notify
hooks other than ``agentsession_session_started`` run on the session's observer thread, in order, so a
slow observer never delays audio; keep them thread-safe (read the session, don't drive it from there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._metrics import TurnMetrics
    from ._ports import SessionView
    from ._states import AgentState, UserState
    from ._transport import TransportFactory, TransportMode

hookspec = pluggy.HookspecMarker("agentsession")
hookimpl = pluggy.HookimplMarker("agentsession")


@hookspec
def agentsession_transports() -> dict[str, TransportMode | TransportFactory]:  # type: ignore[empty-body]
    """Return the command-line modes this plugin provides, ``{name: mode or factory}``.

    A factory takes a ``JobContext`` and returns a ``Transport``; a ``TransportMode`` adds options.
    """


@hookspec
def agentsession_models() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return ``{name: factory}`` of models (``"openai-realtime"``, ...) so pipelines can be built by name.

    A factory is called with keyword options and returns a ``RealtimeModel`` (or an STT/LLM/TTS).
    """


@hookspec
def agentsession_exports() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return ``{name: class}`` of what agent writers may import as ``from agentsession.plugins import Name``
    (provider classes and their config types: ``{"OpenAIRealtime": OpenAIRealtime, ...}``).

    Optional: without it, the names in ``__all__`` of the plugin's top-level package are offered. Called only
    when such an import asks for a name, so it may import the provider's SDK.
    """


@hookspec
def agentsession_vads() -> dict[str, tuple[int, Any]]:  # type: ignore[empty-body]
    """Return ``{name: (rank, factory)}`` of voice activity detectors; ``factory()`` makes a ``VAD``.

    A session whose model reports no user speech of its own runs the installed VAD of highest rank on the
    user's audio (core's ``EnergyVAD`` has rank 0; a neural VAD should rank higher).
    """


@hookspec
def agentsession_fakes() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return ``{name: factory}`` of scripted provider servers (``factory()`` makes a ``FakeService``) that
    ``agentsession fakes`` serves on loopback, so agents run offline against the provider's real SDK."""


@hookspec
def agentsession_session_started(session: SessionView) -> None:
    """The session started. Runs on the event loop, before the agent's ``on_enter``: a plugin may
    subscribe to ``session.on(...)`` events here."""


@hookspec
def agentsession_link_tap(session: SessionView) -> Any:
    """The session is about to start its pipeline: return a ``LinkTap`` (``agentsession.plugin``) to see every
    message its realtime model's provider link sends and receives, or ``None``. Runs on the event loop, before
    ``agentsession_session_started`` (the recorder's cassettes use it)."""


@hookspec
def agentsession_replayers() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return ``{link name: factory}`` of servers that play a cassette's recorded provider traffic back
    (``factory()`` makes a ``Replayer``, ``agentsession.plugin``); ``python agent.py replay`` uses them. The link
    name is the ``ProviderLink``'s ``name`` (``"OpenAI Realtime"``) or the name a plugin taps other traffic under.
    A factory registered for several links makes one replayer for all of them (one server, one base URL)."""


@hookspec
def agentsession_session_closed(session: SessionView, reason: str) -> None:
    """The session closed for ``reason``."""


@hookspec
def agentsession_user_state_changed(session: SessionView, old: UserState, new: UserState) -> None:
    """The user's state changed."""


@hookspec
def agentsession_agent_state_changed(session: SessionView, old: AgentState, new: AgentState) -> None:
    """The agent's state changed."""


@hookspec
def agentsession_metrics_collected(session: SessionView, metrics: TurnMetrics) -> None:
    """A turn's metrics are complete."""


@hookspec(firstresult=True)
def agentsession_wake_up(session: SessionView, idle_s: float) -> Any:
    """The conversation has been idle for ``idle_s`` seconds and ``session.on_wake_up`` did not handle it.

    Runs on the event loop; the first implementation that handles it wins. Return ``True`` when handled,
    ``None`` (or ``False``) to let the next plugin try. An ``async`` implementation (or one returning an
    awaitable) is awaited, and counts as having handled it unless it resolves to ``False``: a coroutine
    that speaks and returns nothing has handled the wake-up.
    """
