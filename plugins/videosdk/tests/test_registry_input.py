"""A registry worker in this process against the fake registry, fed hostile or broken input: it refuses clearly,
logs one safe line, keeps its connection and its running jobs, and stops offering itself while it cannot start a
job (then offers itself again once it can)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from registry_fakes import AGENT, ROOM_TOKEN, Control, FakeRegistry

from agentsession.plugin import Options
from agentsession_videosdk import _registry_worker
from agentsession_videosdk._registry_worker import RegistryWorker

TOKEN = "worker-token-abcdefghijklmnop"
LIGHT = "console_io,webrtc,openai,gemini,recorder"


@dataclass
class Rig:
    registry: FakeRegistry
    control: Control
    program: list[str]
    worker: RegistryWorker | None = None
    task: asyncio.Task[None] | None = None

    async def start(self, argv: list[str]) -> str:
        options = Options(register=True, auth_token=TOKEN, registry_url=self.registry.url, agent_id="test-agent",
                          max_processes=2, load_threshold=1.0, num_idle_processes=0, host="127.0.0.1", port=0,
                          cpu_load=False, memory_warn_mb=0.0)
        self.worker = RegistryWorker(options, argv=argv)
        self.task = asyncio.get_running_loop().create_task(self.worker.run())
        await self.registry.wait_for(lambda: len(self.registry.registrations) == 1)
        return str(self.registry.registrations[0]["assigned"])

    async def send(self, message: dict[str, Any] | str) -> None:
        conn = self.registry.workers[self.registry.registrations[-1]["assigned"]]
        await conn.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def ask(self, job_id: str) -> dict[str, Any]:
        """An availability request, answered (the worker handles messages in order: everything sent before it
        was handled by then)."""
        conn = self.registry.workers[self.registry.registrations[-1]["assigned"]]
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.answers[job_id] = answer
        await self.send({"type": "availability_request", "job_id": job_id, "room_id": "r", "agent_name": "test-agent"})
        return await asyncio.wait_for(answer, 10)

    async def failure(self, job_id: str) -> str:
        await self.registry.wait_for(lambda: self.registry.final(job_id) is not None)
        update = self.registry.updates[job_id][-1]
        assert update["status"] == "failed", update
        return str(update["error"])


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    registry = FakeRegistry(TOKEN)
    await registry.start()
    control = Control(tmp_path / "control.sock")
    await control.start()
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    for name, value in {"AGENT_CONTROL": str(control.path), "EXPECT_ROOM_TOKEN": ROOM_TOKEN,
                        "REGISTRY_URL": registry.url, "AGENTSESSION_DISABLE_PLUGINS": LIGHT}.items():
        monkeypatch.setenv(name, value)
    rig = Rig(registry, control, [sys.executable, str(script)])
    try:
        yield rig
    finally:
        control.hold = False
        control.release()
        if rig.worker is not None and rig.task is not None:
            rig.worker.drain()
            rig.worker.drain()  # a second one: stop now
            await asyncio.wait_for(rig.task, 30)
        await control.stop()
        await registry.stop()


async def test_a_worker_that_cannot_start_a_job_stops_offering_itself(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    worker_id = await rig.start(["/nonexistent/agentsession-test-program"])
    assert rig.worker is not None
    assert await rig.registry.dispatch("job-0", "room-0") == worker_id
    assert "could not start a process" in await rig.failure("job-0")
    # it knows now that it cannot run a job: it says so instead of accepting the next one and failing it too
    assert await rig.registry.dispatch("job-1", "room-1") is None
    assert "cannot start jobs" in rig.registry.refusals[-1][2]
    assert rig.registry.final("job-1") is None
    await rig.registry.wait_for(lambda: rig.registry.workers[worker_id].statuses[-1]["load"] == 1.0)

    # the cause goes away (file descriptors freed, the program fixed): a probe finds out, and it offers itself again
    rig.worker.pool.argv = rig.program
    monkeypatch.setattr(_registry_worker, "PROBE_INTERVAL", 0.0)
    assert not (await rig.ask("job-2"))["available"]  # the refusal that starts the probe
    probe = rig.worker._probe
    assert probe is not None and await probe
    assert await rig.registry.dispatch("job-3", "room-3") == worker_id
    await rig.control.wait_for(lambda: [s.room for s in rig.control.starts] == ["room-3"])
    await rig.registry.wait_for(lambda: rig.registry.final("job-3") == "completed")


async def test_hostile_registry_input_is_refused_clearly_and_logged_safely(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agentsession.videosdk")
    await rig.start(rig.program)
    rig.control.hold = True
    assert await rig.registry.dispatch("job-0", "room-0") is not None
    await rig.control.wait_for(lambda: len(rig.control.starts) == 1)

    def assignment(job_id: str, **fields: Any) -> dict[str, Any]:
        return {"type": "job_assignment", "job_id": job_id, "agent_name": "test-agent", "token": ROOM_TOKEN, **fields}

    # the same assignment again while the job runs: the running job is not reported failed
    await rig.send(assignment("job-0", room_id="room-0"))
    await rig.ask("sync-1")
    assert rig.registry.final("job-0") is None
    assert "assigned again while it runs" in caplog.text

    # a job id that would forge a log line is refused and never logged raw
    forged = "x\nINFO agentsession: forged line"
    assert (await rig.ask(forged)) == {"type": "availability_response", "job_id": forged, "available": False,
                                       "error": "invalid job_id"}
    await rig.send(assignment(forged, room_id="room-f"))

    # room ids: missing, too long, an option on a command line, not a string; bad room options
    huge = "r" * (1 << 20)
    await rig.send(assignment("job-none"))
    await rig.send(assignment("job-huge", room_id=huge))
    await rig.send(assignment("job-dash", room_id="-h"))
    await rig.send(assignment("job-list", room_id=["a"]))
    await rig.send(assignment("job-opts", room_id="room-o", room_options={"session_timeout_seconds": "soon"}))
    assert "has no room_id" in await rig.failure("job-none")
    for job_id in ("job-huge", "job-dash", "job-list"):
        assert "not a valid room id" in await rig.failure(job_id)
    assert "room_options.session_timeout_seconds" in await rig.failure("job-opts")

    # a message nested too deeply for the JSON parser: ignored with a reason, the connection stays
    await rig.send("[" * 100_000 + "]" * 100_000)
    assert (await rig.ask("sync-2"))["job_id"] == "sync-2"  # still connected, still answering
    assert "nested too deeply" in caplog.text and len(rig.registry.registrations) == 1

    # nothing else started, the running job is untouched
    assert [s.room for s in rig.control.starts] == ["room-0"]
    records = [r for r in caplog.records if r.name.startswith("agentsession.videosdk")]
    assert records and all("\n" not in r.getMessage() and len(r.getMessage()) < 400 for r in records)

    # a frame over the websocket's limit breaks the connection: the reason is logged, the worker re-registers
    # as itself, and the job it runs is still its own
    with contextlib.suppress(ConnectionError):  # the worker may hang up before the frame is all sent
        await rig.send("x" * (5 << 20))
    await rig.registry.wait_for(lambda: len(rig.registry.registrations) == 2)
    assert rig.registry.registrations[1]["worker_id"] == rig.registry.registrations[0]["assigned"]
    assert "registry connection broken" in caplog.text
    rig.control.release()
    await rig.registry.wait_for(lambda: rig.registry.final("job-0") == "completed")
