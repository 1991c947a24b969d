"""The narrow views the parts below the session see of it and of its job (the bottom of the layering).

Agents, transports, hook implementations and jobs are typed against these protocols, never against
``AgentSession`` or ``JobContext`` themselves, so no core module imports upward, even for typing
(``docs/architecture.md`` shows the layers).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ._chat import ChatContext
from ._speech import SpeechHandle
from ._states import AgentState, UserState


class SessionView(Protocol):
    """What an agent, a transport, a hook implementation or a job sees of a running session: its events,
    its states and history, and the calls that make the agent speak or stop."""

    @property
    def agent(self) -> Any:
        """The ``Agent`` it runs."""

    @property
    def pipeline(self) -> Any:
        """The ``Pipeline`` it drives."""

    @property
    def transport(self) -> Any:
        """The ``Transport`` it plays to."""

    @property
    def history(self) -> ChatContext:
        """The conversation so far."""

    @property
    def agent_state(self) -> AgentState: ...

    @property
    def user_state(self) -> UserState: ...

    @property
    def closed(self) -> bool: ...

    @property
    def current_speech(self) -> SpeechHandle | None: ...

    def on(self, event: str, callback: Callable[[Any], Any] | None = None) -> Any: ...

    def off(self, event: str, callback: Callable[[Any], Any] | None = None) -> None: ...

    def has_listeners(self, event: str) -> bool: ...

    def now(self) -> float: ...

    async def say(self, message: str | None = None, *, interruptible: bool | None = None,
                  allow_interruptions: bool | None = None, wait_for_playback: bool = False,
                  add_to_chat_context: bool = True, text: str | None = None) -> SpeechHandle: ...

    async def reply(self, instructions: str | None = None, wait_for_playback: bool = True, *,
                    interruptible: bool | None = None, allow_interruptions: bool | None = None) -> SpeechHandle: ...

    async def send_text(self, text: str) -> SpeechHandle: ...

    def interrupt(self, *, force: bool = False) -> Awaitable[None]: ...

    def report_error(self, message: str, *, recoverable: bool = True, code: str | None = None,
                     component: str | None = None) -> None: ...

    async def start(self, wait_for_participant: bool = False, run_until_shutdown: bool = False, *,
                    transport: Any = None) -> None: ...

    async def hangup(self, reason: str = "hangup") -> None: ...

    async def play_background_audio(self, config: Any = None, override_thinking: bool = True) -> None: ...

    async def stop_background_audio(self) -> None: ...

    def sync_agent(self) -> Awaitable[None]:
        """The running agent's instructions or tools changed: the model gets them (``agent.update_tools``)."""

    async def close(self, reason: str = "closed") -> None: ...


class JobView(Protocol):
    """What a session and a transport see of the job they run in."""

    room_options: Any
    options: Any

    @property
    def connected(self) -> bool: ...

    @property
    def transport(self) -> Any: ...

    @property
    def shutting_down(self) -> bool: ...

    def request_shutdown(self, reason: str) -> None: ...

    async def connect(self) -> None: ...

    async def wait_for_participant(self, participant_id: str | None = None, *, timeout: float | None = None
                                   ) -> str: ...

    async def wait_for_shutdown(self) -> str: ...

    async def shutdown(self) -> None: ...

    def attach_session(self, session: SessionView) -> None:
        """A session of this job started: the job now ends when it closes."""

    def session_closed(self, session: SessionView, reason: str) -> None: ...


#: the job running in this task (set by the worker; read by ``AgentSession.start()`` for its transport)
current_job: contextvars.ContextVar[JobView | None] = contextvars.ContextVar("agentsession_job", default=None)
