"""PlaygroundWorkers against stand-in worker processes: start-up, forwarding, full and dead workers, stop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agentsession import AgentSessionError
from agentsession_webrtc._workers import PlaygroundWorkers

# a worker as the pool sees one: announces its URL, answers /offer (503 when FULL is in its argv), checks the
# token, stops when its stdin closes
STAND_IN = r'''
import asyncio, os, sys
from aiohttp import web

async def main():
    token = os.environ["AGENTSESSION_PLAYGROUND_TOKEN"]
    count = 0

    async def offer(request):
        nonlocal count
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "token"}, status=401)
        if "FULL" in sys.argv:
            return web.json_response({"error": "full"}, status=503)
        count += 1
        body = await request.json()
        return web.json_response({"type": "answer", "sdp": body["sdp"], "id": f"{os.getpid()}-{count}"})

    async def close(request):
        print("closed", request.match_info["id"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_post("/sessions/{id}/close", close)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"playground: open http://127.0.0.1:{port}/?token={token} in a browser")
    print("hello from", os.getpid())
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    await runner.cleanup()

asyncio.run(main())
'''
OFFER = {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script)]


async def test_offers_go_round_robin_and_beacons_to_the_worker_that_answered(stand_in: list[str]) -> None:
    lines: list[str] = []
    pool = PlaygroundWorkers(2, stand_in, max_connections=4, output=lines.append)
    try:
        await pool.start(timeout=30)
        answers = [await pool.offer(OFFER) for _ in range(4)]
        assert [status for status, _ in answers] == [200] * 4
        pids = [body["id"].split("-")[0] for _, body in answers]
        assert pids[0] != pids[1] and pids[0::2] == [pids[0]] * 2 and pids[1::2] == [pids[1]] * 2
        assert answers[0][1]["sdp"] == OFFER["sdp"]
        assert await pool.close_session(answers[1][1]["id"]) == 204
        assert await pool.close_session(answers[1][1]["id"]) == 404  # forgotten once closed
        assert await pool.close_session("unknown") == 404
    finally:
        await pool.stop(10)
    assert f"[worker 1] closed {answers[1][1]['id']}" in lines
    assert sorted(x.split()[0] for x in lines if "hello from" in x) == ["[worker", "[worker"]
    assert not any("token=" in x for x in lines)  # announce lines are read, not relayed


async def test_full_and_dead_workers_are_skipped(stand_in: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pool = PlaygroundWorkers(2, [*stand_in, "FULL"], max_connections=1, output=lambda line: None)
    try:
        await pool.start(timeout=30)
        status, body = await pool.offer(OFFER)
        assert status == 503 and "every playground worker is full" in body["error"]
    finally:
        await pool.stop(10)

    pool = PlaygroundWorkers(2, stand_in, max_connections=1, output=lambda line: None)
    try:
        await pool.start(timeout=30)
        first = pool._workers[0]
        os.kill(first.proc.pid, 9)
        await first.proc.wait()
        for _ in range(3):
            status, body = await pool.offer(OFFER)
            assert status == 200 and body["id"].startswith(f"{pool._workers[1].proc.pid}-")
    finally:
        await pool.stop(10)


async def test_a_worker_that_cannot_start_is_a_clear_error() -> None:
    pool = PlaygroundWorkers(2, [sys.executable, "-c", "import sys; sys.exit(3)"], max_connections=1,
                             output=lambda line: None)
    with pytest.raises(AgentSessionError, match=r"exited \(code 3\) before serving"):
        await pool.start(timeout=30)
    await pool.stop(5)
    assert all(w.proc.returncode == 3 for w in pool._workers)


async def test_workers_that_never_serve_time_out_and_stop() -> None:
    pool = PlaygroundWorkers(2, [sys.executable, "-c", "import sys; sys.stdin.read()"], max_connections=1,
                             output=lambda line: None)
    with pytest.raises(AgentSessionError, match="did not start within 0.5 s"):
        await pool.start(timeout=0.5)
    assert len(pool._workers) == 2 and all(w.proc.returncode is None for w in pool._workers)
    await pool.stop(10)
    assert [w.proc.returncode for w in pool._workers] == [0, 0]  # they read their stdin to its end
