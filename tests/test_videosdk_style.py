"""The VideoSDK-style examples (``examples/videosdk_style/``) run as a user runs them (issue 12).

Each example runs unchanged in a subprocess through the CLI's file mode (``python X.py file --input in.wav --output
out.wav``), the user's speech an espeak-ng recording made here, against the fake servers that speak the real
protocols through the real SDKs, configured only through the SDKs' own variables (``OPENAI_BASE_URL``/
``OPENAI_API_KEY``; ``GOOGLE_GEMINI_BASE_URL``/``GOOGLE_API_KEY`` and ``SSL_CERT_FILE`` for the Gemini fake's
certificate). What is checked is what the user hears (the loud stretches of the output WAV: greeting, answers and
goodbye, their number and places on the conversation's timeline), what they see (the printed lines: lowercase
states, ``starting`` first, ``closing`` last), what went over the wire, exit codes, and that every job ends on its
own when its input ends (or on one Ctrl-C).

File mode runs in real time, so the runs go concurrently (a few at a time) from one module fixture; each test then
checks its own run.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wav_checks import loud_segments

from agentsession_gemini.fake import FakeLiveServer
from agentsession_openai.fake.http import API_KEY as HTTP_KEY
from agentsession_openai.fake.http import FakeOpenAIHTTP
from agentsession_openai.fake.realtime import API_KEY as REALTIME_KEY
from agentsession_openai.fake.realtime import FakeRealtimeServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "videosdk_style"

GEMINI_KEY = "test-gemini-key-0123456789abcdef"
LEAD = 2.5  # seconds before the user speaks: the greeting is over by then, even with a slow start
RUN_TIMEOUT = 40.0  # a job that does not end on its own within this is a hang
CONCURRENT_RUNS = 6

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


# --------------------------------------------------------------------------- audio helpers


@dataclass
class Speech:
    """An input WAV: ``lead`` seconds of silence, an espeak-ng utterance, ``tail`` seconds of silence."""

    path: Path
    start: float  # when the user's voice starts and ends, on the input's timeline
    end: float
    duration: float


def make_input(path: Path, text: str, *, lead: float, tail: float) -> Speech:
    spoken = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(spoken), text], check=True, timeout=30)
    with wave.open(str(spoken), "rb") as w:
        rate = w.getframerate()
        voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    loud = np.flatnonzero(np.abs(voice) > 300)
    voice = voice[loud[0] : loud[-1] + 1]  # espeak pads with silence: the lead and tail are exact
    audio = np.concatenate([np.zeros(int(lead * rate), "<i2"), voice, np.zeros(int(tail * rate), "<i2")])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.tobytes())
    return Speech(path, lead, lead + len(voice) / rate, len(audio) / rate)


# --------------------------------------------------------------------------- running the examples


@dataclass
class Run:
    code: int
    out: str
    err: str
    wall: float
    speech: Speech
    output: Path
    server: Any
    events: list[str] = field(default_factory=list)

    @property
    def segments(self) -> list[tuple[float, float]]:
        return loud_segments(self.output)

    def printed(self, prefix: str) -> list[str]:
        return [line.removeprefix(prefix) for line in self.out.splitlines() if line.startswith(prefix)]

    def why(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr (end)\n{self.err[-4000:]}"


def base_env() -> dict[str, str]:
    drop = ("OPENAI_", "GOOGLE_", "GEMINI_", "SSL_CERT", "AGENTSESSION_RECORD")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


class Lines:
    """The lines a subprocess printed so far; ``wait_for`` returns once they satisfy a condition."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()

    async def add(self, line: str) -> None:
        async with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[list[str]], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.lines))


Driver = Callable[[asyncio.subprocess.Process, Lines], Awaitable[None]]


async def run_example(name: str, speech: Speech, env: dict[str, str], server: Any, driver: Driver | None = None) -> Run:
    output = speech.path.with_name(f"{name}-out.wav")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / f"{name}.py"), "file", "--input", str(speech.path), "--output", str(output),
        env=env, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    lines = Lines()

    async def read_stdout() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            await lines.add(raw.decode().rstrip("\n"))

    reading = [asyncio.ensure_future(read_stdout()), asyncio.ensure_future(proc.stderr.read())]
    try:
        if driver is not None:
            await asyncio.wait_for(driver(proc, lines), RUN_TIMEOUT)
        await asyncio.wait_for(proc.wait(), RUN_TIMEOUT)
    except TimeoutError:
        pass  # a hang: the exit code says so (-9)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    await reading[0]
    err = (await reading[1]).decode()
    return Run(proc.returncode if proc.returncode is not None else -1, "\n".join(lines.lines), err,
               time.monotonic() - started, speech, output, server)


async def openai_realtime(tmp: Path, name: str, text: str, heard: str, *, lead: float, tail: float,
                          driver: Driver | None = None, setup: Callable[[Any], None] | None = None) -> Run:
    speech = make_input(tmp / f"{name}-in.wav", text, lead=lead, tail=tail)
    async with FakeRealtimeServer() as server:
        server.transcript = heard
        server.reply_audio = 0.5
        if setup is not None:
            setup(server)
        env = {**base_env(), "OPENAI_API_KEY": REALTIME_KEY, "OPENAI_BASE_URL": server.base_url}
        return await run_example(name, speech, env, server, driver)


async def openai_cascade(tmp: Path, name: str, text: str, heard: str, *, lead: float, tail: float) -> Run:
    speech = make_input(tmp / f"{name}-in.wav", text, lead=lead, tail=tail)
    async with FakeOpenAIHTTP() as server:
        server.transcript = heard
        env = {**base_env(), "OPENAI_API_KEY": HTTP_KEY, "OPENAI_BASE_URL": server.base_url}
        return await run_example(name, speech, env, server)


async def gemini(tmp: Path, name: str, text: str, heard: str, *, lead: float, tail: float) -> Run:
    speech = make_input(tmp / f"{name}-in.wav", text, lead=lead, tail=tail)
    async with FakeLiveServer() as server:
        server.heard = heard
        env = {**base_env(), "GOOGLE_API_KEY": GEMINI_KEY, "GOOGLE_GEMINI_BASE_URL": server.base_url,
               "SSL_CERT_FILE": str(server.cert_path)}
        return await run_example(name, speech, env, server)


def signals_after_greeting(*signals: signal.Signals) -> Driver:
    """Send ``signals`` (0.3 s apart) once the greeting has been played (the agent went speaking -> idle)."""

    def greeted(printed: list[str]) -> bool:
        states = [line for line in printed if line.startswith("Agent state changed to: ")]
        return "Agent state changed to: speaking" in states and states[-1] == "Agent state changed to: idle"

    async def drive(proc: asyncio.subprocess.Process, lines: Lines) -> None:
        await lines.wait_for(greeted)
        for i, sig in enumerate(signals):
            if i:
                await asyncio.sleep(0.3)
            proc.send_signal(sig)

    return drive


SCENARIOS: dict[str, Callable[[Path], Awaitable[Run]]] = {
    "realtime_tools": lambda tmp: openai_realtime(
        tmp, "realtime_tools", "What is the weather in Paris today", "what is the weather in Paris? get_weather",
        lead=LEAD, tail=0.3, setup=lambda s: s.tool_arguments.update(get_weather={"city": "Paris"})),
    "cascade_wake_up": lambda tmp: openai_cascade(
        tmp, "cascade_wake_up", "What is the capital of France", "What is the capital of France?", lead=5.5, tail=0.3),
    "custom_flow": lambda tmp: openai_cascade(
        tmp, "custom_flow", "What is nginx", "What is NGINX?", lead=LEAD, tail=0.3),
    "multi_agent_switch": lambda tmp: openai_realtime(
        tmp, "multi_agent_switch", "I would like to book a flight to Rome",
        "I would like to book a flight to Rome, transfer_to_booking", lead=LEAD, tail=0.3),
    "multi_agent_switch_gemini": lambda tmp: gemini(
        tmp, "multi_agent_switch_gemini", "I would like to book a flight to Rome",
        "I would like to book a flight to Rome, transfer_to_booking", lead=LEAD, tail=0.3),
    "lifecycle": lambda tmp: openai_realtime(tmp, "lifecycle", "Can you hear me", "can you hear me", lead=LEAD, tail=0.3),
    "basic_usage": lambda tmp: openai_realtime(tmp, "basic_usage", "Can you hear me", "can you hear me", lead=LEAD,
                                               tail=0.3),
    "realtime_tools_hang_up": lambda tmp: openai_realtime(
        tmp, "realtime_tools", "Please hang up now", "please hang up now, end_call", lead=LEAD, tail=15.0),
    "lifecycle_ctrl_c": lambda tmp: openai_realtime(
        tmp, "lifecycle", "Can you hear me", "can you hear me", lead=20.0, tail=0.3,
        driver=signals_after_greeting(signal.SIGINT)),
    "lifecycle_sigterm": lambda tmp: openai_realtime(
        tmp, "lifecycle", "Can you hear me", "can you hear me", lead=20.0, tail=0.3,
        driver=signals_after_greeting(signal.SIGTERM)),
    "lifecycle_ctrl_c_twice": lambda tmp: openai_realtime(
        tmp, "lifecycle", "Can you hear me", "can you hear me", lead=20.0, tail=0.3,
        driver=signals_after_greeting(signal.SIGINT, signal.SIGINT)),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    async def all_runs() -> dict[str, Run]:
        gate = asyncio.Semaphore(CONCURRENT_RUNS)

        async def one(name: str, scenario: Callable[[Path], Awaitable[Run]]) -> Run:
            async with gate:
                return await scenario(tmp_path_factory.mktemp(name))

        results = await asyncio.gather(*(one(n, s) for n, s in SCENARIOS.items()))
        return dict(zip(SCENARIOS, results, strict=True))

    return asyncio.run(all_runs())


#: the HTTP fake serves no Realtime transcription websocket: a cascade's streaming STT is refused there and the
#: cascade goes on with one transcription request per utterance (what these runs then check works)
STREAMING_STT_REFUSED = "unexpected request GET /v1/realtime?intent=transcription"


def assert_clean(run: Run) -> None:
    assert run.code == 0, run.why()
    assert [e for e in run.server.protocol_errors if e != STREAMING_STT_REFUSED] == [], run.server.protocol_errors
    assert "Traceback" not in run.err and " ERROR " not in run.err, run.why()
    assert run.output.exists(), run.why()


def assistant_said(conn: Any) -> list[str]:
    """The transcripts of the assistant's audio items, in order (the OpenAI fake's conversation)."""
    return [part.get("transcript", "") for item in conn.items if item.get("role") == "assistant"
            for part in item.get("content", [])]


def sent(conn: Any, kind: str) -> list[dict[str, Any]]:
    return [e.model_dump(exclude_unset=True) for e in conn.of_type(kind)]


def agent_states(run: Run) -> list[str]:
    return run.printed("Agent state changed to: ")


# --------------------------------------------------------------------------- (a) realtime with tools


def test_realtime_agent_with_tools(runs: dict[str, Run]) -> None:
    run = runs["realtime_tools"]
    assert_clean(run)
    (conn,) = run.server.connections
    config = sent(conn, "session.update")[0]["session"]
    assert config["output_modalities"] == ["audio"] and config["audio"]["output"]["voice"] == "alloy"
    assert config["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400  # TurnDetection(...) as given
    assert sorted(t["name"] for t in config["tools"]) == ["end_call", "get_horoscope", "get_weather"]  # module, methods
    assert run.printed("### ") == ["Getting weather for Paris"]
    outputs = [i["output"] for i in conn.items if i.get("type") == "function_call_output"]
    assert len(outputs) == 1 and json.loads(outputs[0])["temperature"] == 18
    said = assistant_said(conn)
    assert said[0] == "Hi there! Ask me about the weather or your horoscope."
    assert said[1].startswith("The answer is") and '"temperature": 18' in said[1]
    assert said[2:] == ["Goodbye, have a nice day!"]  # on_exit's goodbye
    greeting, answer, goodbye = run.segments  # what the user heard, and when
    assert greeting[1] < run.speech.start and greeting[1] - greeting[0] == pytest.approx(0.5, abs=0.06)
    assert run.speech.end < answer[0] < run.speech.end + 2.0
    assert answer[1] - answer[0] == pytest.approx(0.5, abs=0.06)
    assert goodbye[0] > run.speech.duration and goodbye[1] - goodbye[0] == pytest.approx(0.5, abs=0.06)


def test_realtime_agent_hangs_up_from_a_tool(runs: dict[str, Run]) -> None:
    """VideoSDK's end_call tool: say something, wait a second, ``session.leave()``: the job ends then, not when the
    (15 s longer) input does; on_exit's goodbye is still heard."""
    run = runs["realtime_tools_hang_up"]
    assert_clean(run)
    assert run.printed("### ") == ["Ending the call"]
    assert run.wall < run.speech.duration + 5  # (process start included)
    (conn,) = run.server.connections
    assert assistant_said(conn)[1:] == ["Thanks for calling.", "Goodbye, have a nice day!"]
    greeting, thanks, goodbye = run.segments
    assert run.speech.end < thanks[0] < run.speech.end + 2.0
    assert goodbye[0] - thanks[0] == pytest.approx(1.0, abs=0.3)  # asyncio.sleep(1), then leave(): on_exit
    with wave.open(str(run.output), "rb") as w:  # the conversation ended with the goodbye, not with the input
        assert w.getnframes() / w.getframerate() < goodbye[1] + 1.5 < run.speech.duration - 10


# --------------------------------------------------------------------------- (b) cascade with wake-up


def test_cascade_with_wake_up(runs: dict[str, Run]) -> None:
    run = runs["cascade_wake_up"]
    assert_clean(run)
    server = run.server
    assert run.printed("")[:2] == ["Waiting for participant...", "Participant joined"]  # ctx.room.wait_for_participant()
    assert run.printed("Wake up: ") == ["the user has been quiet"]  # once: nobody was quiet that long again
    spoken = [r["input"] for r in server.speech_requests]
    assert spoken == ["Hello, how can I help you today?", "Are you still there?",
                      "You said: What is the capital of France?", "Goodbye!"]
    assert {(r["model"], r["voice"], r["speed"]) for r in server.speech_requests} == {("tts-1", "alloy", 1.0)}
    (chat,) = server.chat_requests
    assert (chat["model"], chat["temperature"], chat["max_completion_tokens"]) == ("gpt-4o", 0.7, 1000)
    assert [(u.fields["model"], u.fields.get("language")) for u in server.uploads] == [("whisper-1", "en")]
    greeting, wake_up, answer, goodbye = run.segments
    # 0.02 s of the fake's tone per character said
    assert wake_up[1] - wake_up[0] == pytest.approx(0.02 * len(spoken[1]), abs=0.06)
    assert wake_up[0] - greeting[1] == pytest.approx(3.0, abs=0.35)  # wake_up=3: three quiet seconds
    assert wake_up[1] < run.speech.start  # the wake-up call came before the user spoke
    assert run.speech.end < answer[0] < run.speech.end + 2.0
    assert answer[1] - answer[0] == pytest.approx(0.02 * len(spoken[2]), abs=0.06)
    assert goodbye[0] > run.speech.duration and goodbye[1] - goodbye[0] == pytest.approx(0.16, abs=0.06)


# --------------------------------------------------------------------------- (c) custom conversation flow


def test_custom_conversation_flow(runs: dict[str, Run]) -> None:
    run = runs["custom_flow"]
    assert_clean(run)
    server = run.server
    assert run.printed("Turn ") == ["1 started: What is NGINX?", "1 ended"]  # on_turn_start/on_turn_end, once each
    (chat,) = server.chat_requests
    assert chat["messages"][-1] == {"role": "user", "content": "what is nginx"}  # run() rewrote what the LLM sees
    spoken = [r["input"] for r in server.speech_requests]
    assert spoken == ["Hello, ask me anything about technology.", "You said: what is engine x", "Goodbye!"]
    greeting, answer, goodbye = run.segments  # run()'s post-processed text is what was spoken
    assert run.speech.end < answer[0] < run.speech.end + 2.0
    assert answer[1] - answer[0] == pytest.approx(0.02 * len(spoken[1]), abs=0.06)
    assert goodbye[0] > run.speech.duration


# --------------------------------------------------------------------------- (d) multi-agent switch


def test_multi_agent_switch_on_openai_realtime(runs: dict[str, Run]) -> None:
    run = runs["multi_agent_switch"]
    assert_clean(run)
    assert run.printed("") == ["Transferring to the booking specialist", "BookingAgent: on_enter"]
    (conn,) = run.server.connections  # the switch happened in place: one connection
    first, switch = (u["session"] for u in sent(conn, "session.update"))
    assert [t["name"] for t in first["tools"]] == ["transfer_to_booking"]
    assert switch["instructions"].startswith("You are a booking specialist")
    assert [t["name"] for t in switch["tools"]] == ["book_flight"]
    # the conversation was kept: the user's request is still in the server's conversation, nothing deleted
    assert any(i.get("heard", "").startswith("I would like to book") for i in conn.items)
    assert sent(conn, "conversation.item.delete") == []
    said = assistant_said(conn)
    assert "Hi, I'm the booking specialist. What would you like to book?" in said  # the new agent's on_enter
    assert said[-1] == "Your booking request is noted. Have a great trip!"  # the current agent's on_exit at close
    segments = run.segments
    assert segments[0][1] < run.speech.start  # reply(instructions=...) in on_enter: the greeting
    assert segments[-1][0] > run.speech.duration  # the goodbye after the input ended
    heard_after_request = sum(b - a for a, b in segments[1:-1])
    assert heard_after_request == pytest.approx(0.5 * (len(said) - 2), abs=0.15)  # every answer played in full


def test_multi_agent_switch_new_agent_greets_first(runs: dict[str, Run]) -> None:
    said = assistant_said(runs["multi_agent_switch"].server.connections[0])
    after_exit = said[said.index("Let me connect you with our booking team.") + 1 :]
    assert after_exit[0] == "Hi, I'm the booking specialist. What would you like to book?"


def test_multi_agent_switch_on_gemini(runs: dict[str, Run]) -> None:
    run = runs["multi_agent_switch_gemini"]
    assert_clean(run)
    assert GEMINI_KEY not in run.out + run.err
    assert run.printed("") == ["Transferring to the booking specialist", "BookingAgent: on_enter"]
    travel, booking = run.server.connections  # Gemini takes a new setup by reconnecting
    for conn in (travel, booking):
        voice = conn.setup.generation_config.speech_config.voice_config.prebuilt_voice_config.voice_name
        assert voice == "Leda"  # GeminiLiveConfig(voice=...)
    assert travel.setup.system_instruction.parts[0].text.startswith("You are a travel assistant")
    assert booking.setup.system_instruction.parts[0].text.startswith("You are a booking specialist")
    assert [d.name for t in booking.setup.tools for d in t.function_declarations] == ["book_flight"]
    texts = [p.text or "" for m in booking.messages if m.client_content is not None
             for turn in m.client_content.turns or () for p in turn.parts or ()]
    # the conversation went along: resumed by its handle (the call was answered, silently, before the switch)
    assert booking.setup.session_resumption is not None and booking.setup.session_resumption.handle
    assert any("Hi, I'm the booking specialist" in t for t in texts)  # the new agent's on_enter spoke
    assert "Have a great trip!" in texts[-1]  # and its on_exit at close
    segments = run.segments
    assert segments[0][1] < run.speech.start and segments[-1][0] > run.speech.duration
    # the fake answers each complete client turn with 0.2 s of tone: greeting, the switch's answers, goodbye
    asked = [m for conn in (travel, booking) for m in conn.messages
             if m.client_content is not None and m.client_content.turn_complete]
    assert len(asked) >= 4
    assert sum(b - a for a, b in segments) == pytest.approx(0.2 * len(asked), abs=0.1)  # each played in full


# --------------------------------------------------------------------------- (e) lifecycle and basic usage


def test_lifecycle_agent_ends_with_its_input(runs: dict[str, Run]) -> None:
    run = runs["lifecycle"]
    assert_clean(run)
    assert run.wall < run.speech.duration + 15  # the job ended on its own: the file input was done
    states = agent_states(run)
    assert states[0] == "starting" and states[-1] == "closing"  # VideoSDK's values, not AgentState.X
    assert set(states) <= {"starting", "idle", "listening", "thinking", "speaking", "closing"}
    assert states[:5] == ["starting", "idle", "thinking", "speaking", "idle"]  # the greeting
    assert states[5:9] == ["listening", "thinking", "speaking", "idle"]  # the user's turn and its answer
    assert set(run.printed("User state changed to: ")) <= {"idle", "speaking", "listening"}
    lines = run.out.splitlines()
    assert lines.index("Agent is leaving: saying goodbye") < lines.index("Shutdown callback: cleaning up")
    assert lines[-1] == "Shutdown callback: cleaning up"
    (conn,) = run.server.connections
    assert assistant_said(conn)[-1] == "Goodbye, talk to you soon!"
    greeting, answer, goodbye = run.segments
    assert run.speech.end < answer[0] < run.speech.end + 2.0
    assert goodbye[0] > run.speech.duration and goodbye[1] - goodbye[0] == pytest.approx(0.5, abs=0.06)


def test_basic_usage_entrypoint_that_returns(runs: dict[str, Run]) -> None:
    run = runs["basic_usage"]
    assert_clean(run)
    assert "ignored" not in run.err
    states = agent_states(run)
    assert states[0] == "starting" and states[-1] == "closing"
    assert states[:9] == ["starting", "idle", "thinking", "speaking", "idle", "listening", "thinking", "speaking",
                          "idle"]
    (conn,) = run.server.connections
    said = assistant_said(conn)
    assert said[0] == "Hello! How can I help you today?" and said[1] == "You said: can you hear me"
    assert said[-1] == "Goodbye!"
    greeting, answer, goodbye = run.segments  # the session outlived the entrypoint
    assert greeting[1] < run.speech.start
    assert run.speech.end < answer[0] < run.speech.end + 2.0
    assert goodbye[0] > run.speech.duration


@pytest.mark.parametrize("scenario", ["lifecycle_ctrl_c", "lifecycle_sigterm"])
def test_lifecycle_agent_one_ctrl_c_or_sigterm(runs: dict[str, Run], scenario: str) -> None:
    run = runs[scenario]
    assert run.code == {"lifecycle_ctrl_c": 130, "lifecycle_sigterm": 143}[scenario], run.why()  # the input was cut
    assert "shutting down" in run.err and "forcing" not in run.err
    assert run.wall < run.speech.duration / 2  # long before the 20 s input ran out
    lines = run.out.splitlines()
    assert lines.index("Agent is leaving: saying goodbye") < lines.index("Shutdown callback: cleaning up")
    assert agent_states(run)[-1] == "closing"
    (conn,) = run.server.connections
    assert assistant_said(conn) == ["Hello! How can I help you today?", "Goodbye, talk to you soon!"]
    greeting, goodbye = run.segments  # the goodbye is heard before the job ends
    assert goodbye[1] - goodbye[0] == pytest.approx(0.5, abs=0.06)


def test_lifecycle_agent_second_ctrl_c_forces(runs: dict[str, Run]) -> None:
    run = runs["lifecycle_ctrl_c_twice"]
    assert run.code == 130, run.why()  # interrupted, as a shell expects
    assert run.wall < run.speech.duration / 2
    assert "Shutdown callback: cleaning up" in run.out  # forcing still shuts the job down


def test_examples_import_only_videosdk_names() -> None:
    """Each example is VideoSDK code with only its imports renamed: mapped back, every name it imports from our
    packages is one VideoSDK's packages export."""
    videosdk_names = {
        "agentsession": {"Agent", "AgentSession", "CascadingPipeline", "ChatRole", "ConversationFlow", "JobContext",
                         "RealTimePipeline", "RoomOptions", "WorkerJob", "function_tool"},
        "agentsession_openai": {"OpenAIRealtime", "OpenAIRealtimeConfig", "OpenAILLM", "OpenAISTT", "OpenAITTS"},
        "agentsession_gemini": {"GeminiRealtime", "GeminiLiveConfig"},
        "agentsession_deepgram": {"DeepgramSTT"},
        "agentsession_cartesia": {"CartesiaTTS"},
    }
    for path in sorted(EXAMPLES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("agentsession"):
                imported = {alias.name for alias in node.names}
                assert imported <= videosdk_names[node.module or ""], (path.name, imported)


def test_videosdk_worker_options_import() -> None:
    done = subprocess.run([sys.executable, "-c", "from agentsession import Options, WorkerJob; Options(agent_id='A')"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
