"""Plugin discovery through real entry points: fixture distributions pip-installed into a target folder,
the agent run in a subprocess (entry points are loaded once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

AGENT = '''
from agentsession import Agent, AgentSession, JobContext, RealTimePipeline, WorkerJob
from agentsession.testing import FakeRealtimeModel

class Quiet(Agent):
    def __init__(self):
        super().__init__(instructions="Say nothing until woken.")

async def entrypoint(ctx: JobContext):
    session = AgentSession(Quiet(), RealTimePipeline(FakeRealtimeModel()), wake_up=0.3)
    await ctx.connect()
    await session.start()
    print("ended:", await ctx.wait_for_shutdown(), flush=True)
    await session.close()
    await ctx.shutdown()

WorkerJob(entrypoint, lambda: JobContext()).start()
'''


def _install(target: Path, *names: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         *(str(FIXTURES / n) for n in names)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"installing the fixture plugins failed:\n{proc.stderr}"


@pytest.fixture(scope="module")
def stub_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("stub-site")
    _install(target, "stub-plugin")
    return target


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("broken-site")
    _install(target, "stub-plugin", "broken-plugin")
    return target


def run_agent(site: Path, tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    log = tmp_path / "stub.jsonl"
    environ = {k: v for k, v in os.environ.items() if k != "AGENTSESSION_DISABLE_PLUGINS"}
    environ.update(PYTHONPATH=str(site), STUB_PLUGIN_LOG=str(log), **env)
    proc = subprocess.run([sys.executable, str(script), *args], env=environ, capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, lines


def test_installed_plugin_provides_transport_observer_and_wake_up(stub_site: Path, tmp_path: Path) -> None:
    proc, log = run_agent(stub_site, tmp_path, "stub")
    assert proc.returncode == 0, proc.stderr
    kinds = [e["kind"] for e in log]
    assert kinds[0] == "transport_created" and "session_started" in kinds
    assert kinds.count("wake_up") == 1 and kinds[-1] == "session_closed"
    states = [e["new"] for e in log if e["kind"] == "agent_state"]
    assert states[:4] == ["idle", "thinking", "speaking", "idle"]  # the plugin's wake-up speech
    assert "ended: stub done" in proc.stdout


def test_a_broken_plugin_is_a_plugin_error_naming_it(broken_site: Path, tmp_path: Path) -> None:
    proc, _ = run_agent(broken_site, tmp_path, "stub")
    assert proc.returncode != 0
    assert "'broken'" in proc.stderr and "agentsession-broken-plugin" in proc.stderr
    assert "agentsession_missing_dependency" in proc.stderr
    assert "AGENTSESSION_DISABLE_PLUGINS=broken" in proc.stderr


def test_disabling_the_broken_plugin_lets_the_rest_run(broken_site: Path, tmp_path: Path) -> None:
    proc, log = run_agent(broken_site, tmp_path, "stub", AGENTSESSION_DISABLE_PLUGINS="broken")
    assert proc.returncode == 0, proc.stderr
    assert any(e["kind"] == "wake_up" for e in log)


def test_disabling_a_plugin_removes_its_mode(stub_site: Path, tmp_path: Path) -> None:
    proc, log = run_agent(stub_site, tmp_path, "stub", AGENTSESSION_DISABLE_PLUGINS="stub")
    assert proc.returncode == 2
    assert "unknown mode 'stub'" in proc.stderr and "file" in proc.stderr
    assert log == []


def test_unknown_mode_lists_the_installed_modes(stub_site: Path, tmp_path: Path) -> None:
    proc, _ = run_agent(stub_site, tmp_path, "nonsense")
    assert proc.returncode == 2
    assert "unknown mode 'nonsense'" in proc.stderr
    installed = proc.stderr.split("Installed modes: ")[1].split(".")[0].split(", ")
    assert {"file", "stub"} <= set(installed)


async def test_session_plugins_are_registered_per_session() -> None:
    from agentsession import AgentSession, AgentState, RealTimePipeline, hookimpl
    from agentsession.testing import FakeRealtimeModel
    from core_helpers import QuietAgent

    seen: list[str] = []

    class Observer:
        name = "per-session-observer"

        @hookimpl
        def agentsession_session_started(self, session: AgentSession) -> None:
            seen.append("started")

        @hookimpl
        def agentsession_agent_state_changed(self, session: AgentSession, old: AgentState, new: AgentState) -> None:
            seen.append(new.value)

    with_plugin = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()), plugins=[Observer()])
    without = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()))
    await with_plugin.start()
    await without.start()
    await with_plugin.close()
    await without.close()
    assert seen == ["started", "idle", "closing"]


async def test_sessions_without_plugins_of_their_own_share_one_plugin_manager() -> None:
    from agentsession import AgentSession, RealTimePipeline, hookimpl
    from agentsession.testing import FakeRealtimeModel
    from core_helpers import QuietAgent

    class Observer:
        name = "own-observer"

        @hookimpl
        def agentsession_session_started(self, session: AgentSession) -> None:
            pass

    sessions = [AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel())) for _ in range(2)]
    own = AgentSession(QuietAgent(), RealTimePipeline(FakeRealtimeModel()), plugins=[Observer()])
    for session in (*sessions, own):
        await session.start()
    try:
        assert sessions[0].plugin_manager is sessions[1].plugin_manager
        assert own.plugin_manager is not sessions[0].plugin_manager
        assert own.plugin_manager.get_plugin("own-observer") is not None
        assert sessions[0].plugin_manager.get_plugin("own-observer") is None
    finally:
        for session in (*sessions, own):
            await session.close()


def test_the_shared_plugin_manager_follows_a_replaced_hook_function_and_a_disabled_plugin(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from agentsession import _manager, hookimpl

    module = types.ModuleType("agentsession_test_sharing")
    calls: list[str] = []

    @hookimpl
    def agentsession_transports() -> dict[str, object]:
        calls.append("first")
        return {}

    module.agentsession_transports = agentsession_transports  # type: ignore[attr-defined]
    info = _manager.PluginInfo("sharing", "agentsession_test_sharing", None, None, module=module)
    monkeypatch.setattr(_manager, "discover", lambda: [info])
    first = _manager.create_manager()
    assert _manager.create_manager() is first
    first.hook.agentsession_transports()
    assert calls == ["first"]

    @hookimpl
    def replaced() -> dict[str, object]:
        calls.append("replaced")
        return {}

    monkeypatch.setattr(module, "agentsession_transports", replaced)
    second = _manager.create_manager()
    assert second is not first
    second.hook.agentsession_transports()
    assert calls == ["first", "replaced"]

    blocked = _manager.PluginInfo("sharing", "agentsession_test_sharing", None, None, blocked=True)
    monkeypatch.setattr(_manager, "discover", lambda: [blocked])
    third = _manager.create_manager()
    assert third is not second and third.get_plugin("sharing") is None
