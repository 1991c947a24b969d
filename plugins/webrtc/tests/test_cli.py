"""``python examples/parrot.py playground``: the real worker and command line, in a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from agentsession_webrtc import PlaygroundMode
from agentsession_webrtc.testing import FakeBrowser

PARROT = Path(__file__).resolve().parents[3] / "examples" / "parrot.py"


@pytest.mark.skipif(not PARROT.exists(), reason="needs the repository's examples/parrot.py")
async def test_playground_mode_serves_and_stops_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PARROT), "playground", "--port", "0", "--max-connections", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        found = re.search(r"playground: open (http://127\.0\.0\.1:\d+/) ", line)
        assert found, line
        url = found.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200
            async with http.post(url + "offer", json={"type": "offer", "sdp": "nonsense"}) as response:
                assert response.status == 400
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 15)
        err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert "Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_non_loopback_bind_prints_a_generated_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTSESSION_PLAYGROUND_TOKEN", raising=False)
    lines: list[str] = []
    mode = PlaygroundMode(host="0.0.0.0", port=0, announce=lines.append)
    runner = asyncio.ensure_future(mode.run(lambda transport: asyncio.sleep(0)))
    try:
        await asyncio.wait_for(mode.ready.wait(), 10)
        found = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=([\w-]{20,}) ", lines[0])
        assert found, lines
        url, token = found.groups()
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 401
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def _self_signed(directory: Path) -> Path:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = directory / "playground.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem


async def test_https_with_a_certificate(tmp_path: Path) -> None:
    lines: list[str] = []
    mode = PlaygroundMode(port=0, cert=str(_self_signed(tmp_path)), announce=lines.append)
    runner = asyncio.ensure_future(mode.run(lambda transport: asyncio.sleep(0)))
    try:
        await asyncio.wait_for(mode.ready.wait(), 10)
        assert mode.server is not None and mode.server.url.startswith("https://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(mode.server.url, ssl=False) as response:
            assert response.status == 200
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def exited(pid: int, timeout: float) -> None:
    """Wait for process ``pid`` (not our child) to end, through a pidfd: no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class Front:
    """``parrot.py playground --workers 2`` in a subprocess, its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._changed:
                self.lines.append(raw.decode().rstrip("\n"))
                self._changed.notify_all()

    async def line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: any(re.search(pattern, x) for x in self.lines)),
                                   timeout)
        return next(m for x in self.lines if (m := re.search(pattern, x)))

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(c) for c in children]


@pytest.mark.skipif(not PARROT.exists(), reason="needs the repository's examples/parrot.py")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_workers_take_the_browsers_in_their_own_processes(loop: str) -> None:
    if loop == "uvloop":  # the fast extra's loop: its transports are not asyncio.Transport instances
        pytest.importorskip("uvloop")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PARROT), "playground", "--port", "0", "--workers", "2", "--max-connections", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "AGENTSESSION_LOOP": loop},
    )
    front = Front(proc)
    browsers = [FakeBrowser(), FakeBrowser(), FakeBrowser()]
    try:
        url = (await front.line(r"playground: open (http://127\.0\.0\.1:\d+/) .*2 worker processes")).group(1)
        workers = front.workers()
        assert len(workers) == 2
        ids = []
        for browser in browsers[:2]:
            await browser.offer()
            async with aiohttp.ClientSession() as http, http.post(url + "offer", json=browser.offer_json()) as r:
                assert r.status == 200, await r.text()
                answer = await r.json()
            ids.append(answer["id"])
            await browser.answer(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.wait_for(browser.opened.wait(), 20)
            await browser.wait_message(lambda m: m["type"] == "agent_state_changed" and m["state"] == "speaking")
        # one connection per worker at most: the two browsers are in two processes, a third finds none free
        # (what each conversation prints is tagged with its connection too)
        await front.line(r"^\[worker 0\] \[conn [0-9a-f]{8}\] agent: ")
        await front.line(r"^\[worker 1\] \[conn [0-9a-f]{8}\] agent: ")
        await browsers[2].offer()
        async with aiohttp.ClientSession() as http, http.post(url + "offer", json=browsers[2].offer_json()) as r:
            assert r.status == 503 and "every playground worker is full" in (await r.json())["error"]
            async with http.post(url + f"sessions/{ids[0]}/close") as closed:
                assert closed.status == 204  # the beacon reached the worker that holds the connection
            async with http.post(url + "sessions/nope/close") as unknown:
                assert unknown.status == 404
        await front.line(rf"^\[worker \d\] \[conn {ids[0][:8]}\] ended: the page was closed")

        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        for pid in workers:  # stopped with the front, not left behind
            await exited(pid, 5)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "Traceback" not in err and "Exception ignored" not in err, err
    finally:
        for browser in browsers:
            await browser.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await front._reader


@pytest.mark.skipif(not PARROT.exists(), reason="needs the repository's examples/parrot.py")
async def test_workers_do_not_outlive_a_killed_front() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PARROT), "playground", "--port", "0", "--workers", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    front = Front(proc)
    try:
        await front.line(r"2 worker processes")
        workers = front.workers()
        proc.kill()  # no chance to stop them: their stdin closes with it
        await proc.wait()
        for pid in workers:
            await exited(pid, 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await front._reader


def test_the_doctor_checks_the_playground_s_port() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ((problem, fix),) = PlaygroundMode(port=port).problems()
        assert problem.startswith(f"port {port} on 127.0.0.1 is not free: ") and "--port 0" in fix
    assert PlaygroundMode(port=port).problems() == []
    assert PlaygroundMode(port=0).problems() == []


@pytest.mark.skipif(not PARROT.exists(), reason="needs the repository's examples/parrot.py")
def test_a_busy_port_says_which_flag_to_pass() -> None:
    """The playground on a port already taken exits 1 with a sentence naming --port, not a bare [Errno 98]."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, str(PARROT), "playground", "--port", str(port)], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr and "--port N" in done.stderr, done.stderr
    assert "Errno" not in done.stderr and "Traceback" not in done.stderr, done.stderr
