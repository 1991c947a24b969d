"""The console mode on a real sound server: PulseAudio with null sinks is the microphone and the speakers."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentsession import AudioFrame
from agentsession.testing import TransportContract
from agentsession_console_io import ConsoleTransport

pytestmark = pytest.mark.slow

RATE = 48000
REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 20.0


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


class TestConsoleTransportOnPulse(TransportContract):
    """Core's contract against the real PortAudio -> ALSA -> PulseAudio path."""

    @pytest.fixture(autouse=True)
    def _sound_server(self, pulse_in_process: Any, tmp_path: Path) -> None:
        self.pulse, self.tmp = pulse_in_process, tmp_path

    async def create_transport(self) -> ConsoleTransport:
        transport = ConsoleTransport(sample_rate=RATE)
        await transport.start()
        return transport

    async def send_user_audio(self, transport: Any, audio: AudioFrame) -> None:
        assert audio.sample_rate == RATE
        pad = np.zeros(RATE // 10, np.int16)  # the end of a stream is lost: pad it
        wav = write_wav(self.tmp / "user.wav", np.concatenate([audio.to_mono().data[:, 0], pad]))
        proc = await asyncio.create_subprocess_exec("paplay", "-d", "micfeed", "--latency-msec=10", str(wav),
                                                    env=self.pulse.env)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spoken sentence (espeak-ng), 48 kHz mono, with silence around it."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    base = tmp_path_factory.mktemp("speech")
    raw, wav = base / "espeak.wav", base / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), "Hello parrot, can you hear me?"],
                   check=True, timeout=20)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav), "pad", "0.2", "0.3"],
                   check=True, timeout=20)
    return wav


def best_match(haystack: np.ndarray, needle: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of ``needle`` within ``haystack``, and where it is."""
    h, n = haystack.astype(np.float64), needle.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(h) + len(n))))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)[: len(h) - len(n) + 1]
    power = np.concatenate([[0.0], np.cumsum(h * h)])
    energy = np.sqrt(np.maximum(power[len(n):] - power[: len(h) - len(n) + 1], 0.0))
    score = corr / (np.linalg.norm(n) * np.maximum(energy, 1e-9))
    at = int(np.argmax(score))
    return float(score[at]), at


async def _wait_line(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"the agent exited before printing {needle!r}:\n" + "".join(seen))
        line = raw.decode(errors="replace")
        seen.append(line)
        if needle in line:
            return line


async def test_parrot_hears_the_microphone_and_answers_through_the_speakers(
    pulse: Any, speech: Path, tmp_path: Path
) -> None:
    """examples/parrot.py console: speak into the microphone, hear the parrot repeat it on the speakers."""
    captured = tmp_path / "speakers.raw"
    recorder = pulse.record(captured)
    env = {**pulse.env, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    agent = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "examples" / "parrot.py"), "console", "--sample-rate", str(RATE),
        stdin=subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    seen: list[str] = []
    try:
        assert agent.stdout is not None
        out = agent.stdout
        # the greeting (a chime: ParrotModel can't synthesise speech) is played, then the agent listens
        await asyncio.wait_for(_wait_line(out, "agent: speaking -> idle", seen), TIMEOUT)
        mic = pulse.play(speech)
        await asyncio.wait_for(_wait_line(out, "user said:", seen), TIMEOUT)
        await asyncio.wait_for(_wait_line(out, "agent said: (repeating", seen), TIMEOUT)
        await asyncio.wait_for(_wait_line(out, "agent: speaking -> idle", seen), TIMEOUT)
        assert mic.wait(TIMEOUT) == 0
        agent.send_signal(signal.SIGINT)  # Ctrl-C: a clean shutdown prints the summary
        rest, _ = await asyncio.wait_for(agent.communicate(), TIMEOUT)
        seen.append(rest.decode(errors="replace"))
        assert agent.returncode == 0, "".join(seen)
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(TIMEOUT)
    log = "".join(seen)
    assert "session summary" in log and "turn" in log
    assert "playout_underruns 0" in log, log

    heard = np.frombuffer(captured.read_bytes(), "<i2").astype(np.int16)
    spoken = read_wav(speech)
    voice = spoken[np.flatnonzero(np.abs(spoken) > 300)[0]: np.flatnonzero(np.abs(spoken) > 300)[-1]]
    score, at = best_match(heard, voice)
    print(f"answer matches the spoken sentence: correlation {score:.3f} at {at / RATE:.2f} s")
    # the reply went mic -> 48 kHz -> 24 kHz model -> 48 kHz speakers: the same speech, band-limited
    assert score > 0.9, f"the parrot's answer does not match the spoken sentence (correlation {score:.2f})"
    greeting = heard[: at][-int(0.5 * RATE):]
    assert np.sqrt(np.mean(greeting.astype(np.float64) ** 2)) < 50, "something played right before the answer"
    assert np.sqrt(np.mean(heard[: at].astype(np.float64) ** 2)) > 100, "the greeting chime did not play"
