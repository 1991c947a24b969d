"""``python examples/parrot.py playground``: the real worker and command line, in a subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from agentsession_webrtc import PlaygroundMode

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
