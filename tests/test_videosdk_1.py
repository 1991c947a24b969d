"""VideoSDK 1.0's own examples run here with only their imports changed (issue 21, item 9).

``examples/videosdk_1/`` holds agents copied from VideoSDK's repository (its README lists each source file and
every line changed). Each runs as a user runs it, in a subprocess through the CLI's file mode
(``python X.py file --input in.wav --output out.wav``); the user is an espeak-ng recording made here, and the
providers are the fake servers that speak the real protocols, reached through the real SDKs configured only by
their own variables (``GOOGLE_GEMINI_BASE_URL``, ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``,
``ELEVENLABS_BASE_URL``, the keys, and ``SSL_CERT_FILE`` for the Gemini Live fake's certificate).

What is checked is what the user hears (the loud stretches of the output WAV and what was sent to be spoken), what
the agent did (tool calls, hand-offs, hang-ups, hooks' rewrites as they reached the providers), and that each job
exits 0 on its own. File mode runs in real time, so the runs go concurrently from one module fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wav_checks import loud_segments

from agentsession_anthropic.fake import API_KEY as ANTHROPIC_KEY
from agentsession_anthropic.fake import FakeAnthropic
from agentsession_elevenlabs.fake import API_KEY as ELEVENLABS_KEY
from agentsession_elevenlabs.fake import FakeElevenLabs
from agentsession_gemini.fake import FakeLiveServer
from agentsession_gemini.fake_http import FakeGeminiHTTP
from agentsession_openai.fake.http import API_KEY as OPENAI_HTTP_KEY
from agentsession_openai.fake.http import FakeOpenAIHTTP
from agentsession_openai.fake.realtime import API_KEY as OPENAI_REALTIME_KEY
from agentsession_openai.fake.realtime import FakeRealtimeServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "videosdk_1"
VIDEOSDK = "videosdk-live/agents"

GEMINI_KEY = "test-gemini-key-0123456789abcdef"
RUN_TIMEOUT = 45.0  # a job that does not end on its own within this is a hang
CONCURRENT_RUNS = 6
#: the longest wait from the user's last word to the answer heard (a cascade's VAD stop, STT, turn detector, LLM,
#: tool, LLM, TTS, on a loaded machine running several of these at once)
LATENCY = 6.0

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


# --------------------------------------------------------------------------- the user's speech, what they heard


@dataclass
class Speech:
    """An input WAV: silence and espeak-ng utterances in turn; ``said`` is each utterance's (start, end)."""

    path: Path
    said: list[tuple[float, float]]
    duration: float

    @property
    def start(self) -> float:
        return self.said[0][0]

    @property
    def end(self) -> float:
        return self.said[-1][1]


def make_input(path: Path, *parts: float | str) -> Speech:
    """``parts``: seconds of silence (a number) or words to say (a string), in order."""
    rate = 22050  # espeak-ng's
    chunks: list[np.ndarray] = []
    said: list[tuple[float, float]] = []
    at = 0.0
    for i, part in enumerate(parts):
        if isinstance(part, str):
            spoken = path.with_suffix(f".{i}.wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(spoken), part], check=True, timeout=30)
            with wave.open(str(spoken), "rb") as w:
                assert w.getframerate() == rate
                voice = np.frombuffer(w.readframes(w.getnframes()), "<i2")
            loud = np.flatnonzero(np.abs(voice) > 300)
            audio = voice[loud[0] : loud[-1] + 1]  # espeak pads with silence: the pauses are exact
            said.append((at, at + len(audio) / rate))
        else:
            audio = np.zeros(int(part * rate), "<i2")
        chunks.append(audio)
        at += len(audio) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(chunks).tobytes())
    return Speech(path, said, at)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# --------------------------------------------------------------------------- the providers


@dataclass
class Fakes:
    """The fake servers one run talks to, by name, and the environment that points the SDKs at them."""

    servers: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.servers[name]

    def protocol_errors(self) -> list[str]:
        #: the OpenAI HTTP fake serves no Realtime transcription websocket: OpenAISTT's streaming is refused there
        #: and the cascade goes on with one transcription request per utterance (what the runs then check works)
        refused = "unexpected request GET /v1/realtime?intent=transcription"
        return [e for s in self.servers.values() for e in s.protocol_errors if e != refused]


@contextlib.asynccontextmanager
async def serve(*names: str) -> AsyncIterator[Fakes]:
    drop = ("OPENAI_", "GOOGLE_", "GEMINI_", "ANTHROPIC_", "ELEVENLABS_", "SSL_CERT", "AGENTSESSION_RECORD")
    fakes = Fakes(env={k: v for k, v in os.environ.items() if not k.startswith(drop)})
    async with contextlib.AsyncExitStack() as stack:
        for name in names:
            if name == "gemini_live":
                live = fakes.servers[name] = await stack.enter_async_context(FakeLiveServer())
                fakes.env.update(GOOGLE_API_KEY=GEMINI_KEY, GOOGLE_GEMINI_BASE_URL=live.base_url,
                                 SSL_CERT_FILE=str(live.cert_path))
            elif name == "gemini_http":
                http = fakes.servers[name] = await stack.enter_async_context(FakeGeminiHTTP(GEMINI_KEY))
                fakes.env.update(GOOGLE_API_KEY=GEMINI_KEY, GOOGLE_GEMINI_BASE_URL=http.base_url)
            elif name == "openai_realtime":
                realtime = fakes.servers[name] = await stack.enter_async_context(FakeRealtimeServer())
                realtime.reply_audio = 0.5
                fakes.env.update(OPENAI_API_KEY=OPENAI_REALTIME_KEY, OPENAI_BASE_URL=realtime.base_url)
            elif name == "openai_http":
                openai = fakes.servers[name] = await stack.enter_async_context(FakeOpenAIHTTP())
                fakes.env.update(OPENAI_API_KEY=OPENAI_HTTP_KEY, OPENAI_BASE_URL=openai.base_url)
            elif name == "anthropic":
                anthropic = fakes.servers[name] = await stack.enter_async_context(FakeAnthropic())
                fakes.env.update(ANTHROPIC_API_KEY=ANTHROPIC_KEY, ANTHROPIC_BASE_URL=anthropic.base_url)
            elif name == "elevenlabs":
                eleven = fakes.servers[name] = await stack.enter_async_context(FakeElevenLabs())
                fakes.env.update(ELEVENLABS_API_KEY=ELEVENLABS_KEY, ELEVENLABS_BASE_URL=eleven.base_url)
            else:
                raise ValueError(name)
        yield fakes


# --------------------------------------------------------------------------- running the examples


@dataclass
class Run:
    code: int
    out: str
    err: str
    speech: Speech
    output: Path
    fakes: Fakes

    @property
    def segments(self) -> list[tuple[float, float]]:
        return loud_segments(self.output)

    def logged(self, marker: str) -> list[str]:
        """The text after ``marker`` on each stderr line that has it (the examples log with logging.basicConfig)."""
        return [line.split(marker, 1)[1].strip() for line in self.err.splitlines() if marker in line]

    def why(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-2000:]}\n--- stderr (end)\n{self.err[-5000:]}"


async def run_example(example: str, tmp: Path, speech: tuple[float | str, ...], *fake_names: str,
                      setup: Any = None) -> Run:
    spoken = make_input(tmp / f"{example}-in.wav", *speech)
    output = tmp / f"{example}-out.wav"
    async with serve(*fake_names) as fakes:
        if setup is not None:
            setup(fakes)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / f"{example}.py"), "file", "--input", str(spoken.path), "--output",
            str(output), env=fakes.env, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        return Run(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode(), spoken,
                   output, fakes)


def gemini_http_answers(setup: dict[str, Any]) -> Any:
    def apply(fakes: Fakes) -> None:
        for key, value in setup.items():
            setattr(fakes["gemini_http"], key, value)
    return apply


SCENARIOS: dict[str, Any] = {
    # the longest run first: it overlaps the others
    "wakeup_call": lambda tmp: run_example(
        "wakeup_call", tmp, (3.0, "Hello there", 18.0), "gemini_http", "anthropic",
        setup=gemini_http_answers({"heard": "Hello there."})),
    "realtime_basic": lambda tmp: run_example(
        "realtime_basic", tmp, (3.0, "Can you hear me", 0.3), "gemini_live",
        setup=lambda f: setattr(f["gemini_live"], "heard", "can you hear me")),
    "language_tutor_agent": lambda tmp: run_example(
        "language_tutor_agent", tmp, (3.0, "Hola, como estas", 0.3), "openai_realtime",
        setup=lambda f: setattr(f["openai_realtime"], "transcript", "hola como estas")),
    "realtime_pipeline_hooks": lambda tmp: run_example(
        "realtime_pipeline_hooks", tmp, (3.0, "Thanks goodbye", 12.0), "gemini_live",
        setup=lambda f: (setattr(f["gemini_live"], "heard", "thanks goodbye"),
                         setattr(f["gemini_live"], "answer", "You are welcome. Goodbye!"))),
    "cascade_basic": lambda tmp: run_example(
        "cascade_basic", tmp, (3.0, "What is my horoscope for Aries", 0.3), "gemini_http",
        setup=gemini_http_answers({"heard": "What is my horoscope for Aries? get_horoscope",
                                   "tool_arguments": {"get_horoscope": {"sign": "Aries"}}})),
    "agent_hangup": lambda tmp: run_example(
        "agent_hangup", tmp, (3.0, "Please end the call", 12.0), "gemini_http",
        setup=gemini_http_answers({"heard": "Please end the call. end_call"})),
    "voice_pipeline_hooks": lambda tmp: run_example(
        "voice_pipeline_hooks", tmp, (3.0, "Um what are your working hours", 0.3), "gemini_http",
        setup=gemini_http_answers({"heard": "Um what are your working hours"})),
    "agent_sequential_handoff": lambda tmp: run_example(
        "agent_sequential_handoff", tmp, (3.0, "I was charged twice", 0.3), "gemini_http",
        setup=gemini_http_answers({"heard": "I was charged twice, transfer_to_billing",
                                   "tool_arguments": {"transfer_to_billing": {"reason": "a double charge"}}})),
    "multi_agent_switch": lambda tmp: run_example(
        "multi_agent_switch", tmp, (4.0, "I want to book a flight", 0.3), "gemini_http",
        setup=gemini_http_answers({"heard": "I want to book a flight, transfer_to_booking"})),
    "agent_context_window": lambda tmp: run_example(
        "agent_context_window", tmp, (3.0, "My router keeps dropping", 0.3), "gemini_http",
        setup=gemini_http_answers({"heard": "My router keeps dropping."})),
    "utterance_handle_agent": lambda tmp: run_example(
        "utterance_handle_agent", tmp, (3.0, "Start the long task", 2.0, "Stop", 3.0), "openai_http", "elevenlabs",
        setup=lambda f: setattr(f["openai_http"], "transcript", ["Start the long_running_task.", "Stop."])),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    async def all_runs() -> dict[str, Run]:
        gate = asyncio.Semaphore(CONCURRENT_RUNS)

        async def one(name: str) -> Run:
            async with gate:
                return await SCENARIOS[name](tmp_path_factory.mktemp(name))

        results = await asyncio.gather(*(one(n) for n in SCENARIOS))
        return dict(zip(SCENARIOS, results, strict=True))

    return asyncio.run(all_runs())


def assert_clean(run: Run) -> None:
    assert run.code == 0, run.why()
    assert run.fakes.protocol_errors() == [], run.fakes.protocol_errors()
    assert "Traceback" not in run.err and " - ERROR - " not in run.err, run.why()
    assert run.output.exists(), run.why()


def gemini_spoken(run: Run) -> list[str]:
    """The texts the cascade sent to Gemini's speech generation, in order (what the user heard)."""
    return ["".join(p.text or "" for c in r.contents for p in c.parts or ()) for r in run.fakes["gemini_http"].of_kind(
        "speech")]


def gemini_chats(run: Run) -> list[Any]:
    return run.fakes["gemini_http"].of_kind("chat")


def texts(request: Any) -> list[tuple[str, str]]:
    """A Gemini chat request's conversation as (role, text) pairs; calls and results as ``call X``/``result X``."""
    return [(c.role or "", p.text if p.text is not None else
             f"call {p.function_call.name}" if p.function_call is not None else
             f"result {p.function_response.name}" if p.function_response is not None else "?")
            for c in request.contents for p in c.parts or ()]


def tone(text: str) -> float:
    """Seconds of the fakes' speech for ``text``: 0.02 s a character (Gemini's, ElevenLabs')."""
    return 0.02 * len(text)


# --------------------------------------------------------------------------- realtime on Gemini and OpenAI


def test_realtime_basic_on_gemini_live(runs: dict[str, Run]) -> None:
    run = runs["realtime_basic"]
    assert_clean(run)
    assert GEMINI_KEY not in run.out + run.err
    (conn,) = run.fakes["gemini_live"].connections
    assert conn.setup.model == "models/gemini-3.1-flash-live-preview"
    assert conn.setup.generation_config.speech_config.voice_config.prebuilt_voice_config.voice_name == "Leda"
    assert conn.setup.system_instruction.parts[0].text.startswith("You Are VideoSDK's Voice Agent.")
    said = [p.text for m in conn.messages if m.client_content is not None for t in m.client_content.turns or ()
            for p in t.parts or ()]
    assert any("Hello, how can I help you today?" in s for s in said)  # on_enter's say()
    assert any("Goodbye!" in s for s in said)  # on_exit's, when the input ended
    greeting, answer, goodbye = run.segments  # the fake answers each turn with 0.2 s of tone
    assert greeting[1] < run.speech.start
    assert run.speech.end < answer[0] < run.speech.end + LATENCY
    assert goodbye[0] > run.speech.duration
    assert all(b - a == pytest.approx(0.2, abs=0.06) for a, b in run.segments)


def test_language_tutor_on_openai_realtime(runs: dict[str, Run]) -> None:
    """``OpenAIRealtimeConfig(turn_detection=TurnDetection(...))`` with the openai SDK's own ``TurnDetection``."""
    run = runs["language_tutor_agent"]
    assert_clean(run)
    (conn,) = run.fakes["openai_realtime"].connections
    config = conn.of_type("session.update")[0].model_dump(exclude_unset=True)["session"]
    assert config["audio"]["output"]["voice"] == "shimmer"
    assert config["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert config["instructions"].startswith("You are Sofia, a warm and patient Spanish language tutor.")
    said = [part.get("transcript", "") for item in conn.items if item.get("role") == "assistant"
            for part in item.get("content", [])]
    assert said[0].startswith("¡Hola! I'm Sofia, your Spanish tutor.")
    assert said[1] == "You said: hola como estas"
    assert said[-1].startswith("¡Hasta luego! Great work today.")
    greeting, answer, goodbye = run.segments
    assert greeting[1] < run.speech.start and run.speech.end < answer[0] < run.speech.end + LATENCY
    assert goodbye[0] > run.speech.duration
    assert all(b - a == pytest.approx(0.5, abs=0.06) for a, b in run.segments)  # each reply heard in full


def test_realtime_pipeline_hooks_hang_up_on_farewell(runs: dict[str, Run]) -> None:
    """The ``"llm"`` hook sees the model's words; on a farewell it awaits ``current_utterance`` and
    ``agent.hangup()``: the job ends after that answer is heard, not when the (12 s longer) input does."""
    run = runs["realtime_pipeline_hooks"]
    assert_clean(run)
    assert run.logged("[USER TURN START]") == ["thanks goodbye"]
    assert "You are welcome. Goodbye!" in [line.removeprefix("agent said:").strip() for line in run.out.splitlines()]
    assert len(run.logged("Farewell detected")) == 1
    greeting, answer_and_goodbye = run.segments  # the answer, then on_exit's goodbye at once
    assert greeting[1] < run.speech.start
    assert run.speech.end < answer_and_goodbye[0] < run.speech.end + LATENCY
    assert answer_and_goodbye[1] - answer_and_goodbye[0] == pytest.approx(0.4, abs=0.08)
    # the call ended there, on the conversation's own clock (the output runs until the job ends), long before the
    # input did
    assert wav_seconds(run.output) < answer_and_goodbye[1] + 2.0 < run.speech.duration - 5


# --------------------------------------------------------------------------- cascades


def test_cascade_basic_calls_a_method_tool(runs: dict[str, Run]) -> None:
    run = runs["cascade_basic"]
    assert_clean(run)
    first, after_tool = gemini_chats(run)
    assert {d.name for t in first.tools for d in t.function_declarations or ()} == {"get_weather", "get_horoscope"}
    assert texts(after_tool)[-2:] == [("model", "call get_horoscope"), ("user", "result get_horoscope")]
    spoken = gemini_spoken(run)
    assert spoken == ["Hello, how can I help you today?",
                      'Here is what I found: {"horoscope": "Today is your lucky day!", "sign": "Aries"}', "Goodbye!"]
    greeting, answer, goodbye = run.segments
    assert greeting[1] < run.speech.start
    assert run.speech.end < answer[0] < run.speech.end + LATENCY
    assert answer[1] - answer[0] == pytest.approx(tone(spoken[1]), abs=0.06)
    assert goodbye[0] > run.speech.duration and goodbye[1] - goodbye[0] == pytest.approx(tone("Goodbye!"), abs=0.06)


def test_agent_hangup_from_a_tool(runs: dict[str, Run]) -> None:
    """``end_call`` starts a task: ``session.interrupt()``, ``say(..., interruptible=False)``, ``await handle``,
    ``await self.hangup()``: the job ends a second after that, with on_exit's goodbye, long before its input does."""
    run = runs["agent_hangup"]
    assert_clean(run)
    spoken = gemini_spoken(run)
    assert spoken[0] == "Hello, how can I help you today?"
    assert spoken[-2:] == ["I am ending the call now.", "Goodbye!"]
    *_, ending, goodbye = run.segments
    assert run.speech.end < ending[0] < run.speech.end + LATENCY
    assert 0.9 < goodbye[0] - ending[1] < 2.5  # asyncio.sleep(1), then hangup(): on_exit's goodbye
    assert wav_seconds(run.output) < goodbye[1] + 2.0 < run.speech.duration - 5  # the job ended there


def test_voice_pipeline_hooks_rewrite_what_is_heard_and_said(runs: dict[str, Run]) -> None:
    """The ``"stt"`` hook (bytes in, ``run_stt``, transcript rewritten), the ``"tts"`` hook (text rewritten before
    ``run_tts``), the ``"llm"`` observer and the turn hooks."""
    run = runs["voice_pipeline_hooks"]
    assert_clean(run)
    assert run.logged("[STT]") == ["what are your office hours"]  # "um" dropped, "working hours" replaced
    (chat,) = gemini_chats(run)
    assert texts(chat)[-1] == ("user", "what are your office hours")  # what the LLM got is the hook's text
    spoken = gemini_spoken(run)
    assert spoken == ["Heyy! How can I help you today?", "You said: what are your office hours", "Goodbye!"]
    assert run.logged("[USER TURN START]") == ["what are your office hours"]
    assert len(run.logged("[USER TURN END]")) == 1
    assert len(run.logged("[AGENT TURN START]")) == len(run.logged("[AGENT TURN END]")) == 3
    greeting, answer, goodbye = run.segments
    assert greeting[1] - greeting[0] == pytest.approx(tone(spoken[0]), abs=0.06)
    assert run.speech.end < answer[0] < run.speech.end + LATENCY
    assert answer[1] - answer[0] == pytest.approx(tone(spoken[1]), abs=0.06)


def test_sequential_handoff_with_a_handoff_item(runs: dict[str, Run]) -> None:
    """``chat_context.add_handoff(...)`` before returning ``BillingAgent(inherit_context=True)``; the billing
    agent reads the ``AgentHandoff`` item in ``on_enter``; the handoff item is never sent to the LLM."""
    run = runs["agent_sequential_handoff"]
    assert_clean(run)
    assert run.logged("Tool invoked:") == ["transfer_to_billing(reason=a double charge)"]
    spoken = gemini_spoken(run)
    assert spoken[:2] == ["Hi, you've reached support. How can I help?",
                          "I'm the billing specialist — I see you're here about a double charge. Let's get that sorted."]
    # as VideoSDK: the billing agent's on_enter speaks, and no LLM answer follows the handoff
    (intake,) = gemini_chats(run)
    assert intake.system.parts[0].text.startswith("You are the intake agent")
    assert ("user", "I was charged twice, transfer_to_billing") in texts(intake)
    assert len(spoken) == 2  # the greeting and the billing agent's on_enter: no answer after the handoff
    greeting, *answers = run.segments
    assert greeting[1] < run.speech.start and run.speech.end < answers[0][0] < run.speech.end + LATENCY


def test_multi_agent_switch_on_a_cascade(runs: dict[str, Run]) -> None:
    run = runs["multi_agent_switch"]
    assert_clean(run)
    first, travel = gemini_chats(run)  # as VideoSDK: no LLM answer after the handoff, the new agent greets
    assert texts(first) == [("user", "Greet the user and ask how you can help with their travel plans.")]  # reply()
    assert {d.name for t in travel.tools for d in t.function_declarations or ()} == {
        "transfer_to_booking", "transfer_to_travel_support"}
    spoken = gemini_spoken(run)
    assert spoken[1:3] == ["Safe travels!",  # the travel agent's on_exit, then the booking agent's on_enter
                           "I'm a booking specialist. What would you like to book or modify today?"]
    assert spoken[-1] == "Your booking request is complete. Have a great trip!"  # the current agent's on_exit
    greeting, *_, goodbye = run.segments
    assert greeting[1] < run.speech.start and goodbye[0] > run.speech.duration
    heard = sum(b - a for a, b in run.segments)
    assert heard == pytest.approx(sum(tone(s) for s in spoken), abs=0.2)  # every answer heard in full


def test_context_window_agent(runs: dict[str, Run]) -> None:
    """``Pipeline(context_window=ContextWindow(max_tokens=500, keep_recent_turns=4))`` runs before the LLM turn
    (a short call stays within budget: nothing summed up; the summarizing is tested in core's
    ``test_context_window.py``); the manager tools are declared from their docstrings from the start."""
    run = runs["agent_context_window"]
    assert_clean(run)
    (chat,) = gemini_chats(run)
    declared = {d.name: json.dumps(d.model_dump(mode="json", exclude_none=True)) for t in chat.tools
                for d in t.function_declarations or ()}
    assert set(declared) == {"escalate_to_manager", "approve_refund", "waive_fee"}
    assert "Refund amount in USD" in declared["approve_refund"]  # the Args: section of its docstring
    assert texts(chat) == [("model", "Support here — walk me through what's happening."),
                           ("user", "My router keeps dropping.")]
    assert "summarized" not in run.err and "truncated" not in run.err
    spoken = gemini_spoken(run)
    assert spoken == ["Support here — walk me through what's happening.", "You said: My router keeps dropping.",
                      "Thank you for calling, Have a nice day."]
    greeting, answer, goodbye = run.segments
    assert run.speech.end < answer[0] < run.speech.end + LATENCY and goodbye[0] > run.speech.duration


def test_wakeup_call_after_fifteen_quiet_seconds(runs: dict[str, Run]) -> None:
    """``AgentSession(..., wake_up=15)`` and ``session.on_wake_up``; AnthropicLLM answers, Gemini speaks."""
    run = runs["wakeup_call"]
    assert_clean(run)
    (request,) = run.fakes["anthropic"].requests
    assert request["system"][0]["text"].startswith("You are a helpful voice assistant that can answer questions")
    assert request["messages"][-1]["content"][0]["text"] == "Hello there."
    spoken = gemini_spoken(run)
    assert spoken == ["Hello, how can I help you today?", "You said: Hello there.", "Hello, are you there?", "Goodbye!"]
    greeting, answer, wake_up, goodbye = run.segments
    assert run.speech.end < answer[0] < run.speech.end + LATENCY
    assert 14.8 < wake_up[0] - answer[1] < 16.5  # fifteen quiet seconds after the answer (and the TTS)
    assert wake_up[1] - wake_up[0] == pytest.approx(tone(spoken[2]), abs=0.06)
    assert goodbye[0] > run.speech.duration


def test_utterance_handle_tool_stops_when_the_user_speaks(runs: dict[str, Run]) -> None:
    """``long_running_task`` (OpenAI LLM, ElevenLabs TTS): the user speaks again two seconds in; the tool stops
    there (cancelled), and the new turn is answered."""
    run = runs["utterance_handle_agent"]
    assert_clean(run)
    assert run.logged("Starting a long-running task") == ["..."]
    assert "Long-running task progress: 10/10" not in run.err
    stopped = run.logged("Long-running task was cancelled.") + run.logged("Long-running task was interrupted")
    assert len(stopped) == 1
    openai = run.fakes["openai_http"]
    assert len(openai.uploads) == 2
    assert openai.chat_requests[-1]["messages"][-1] == {"role": "user", "content": "Stop."}
    contexts = run.fakes["elevenlabs"].contexts.values()
    spoken = [" ".join(c.generated) for c in contexts]
    assert spoken == ["Hello, how can I help you today?", "You said: Stop.", "Goodbye!"]
    greeting, answer, goodbye = run.segments
    (_, first_end), (second_start, second_end) = run.speech.said
    assert greeting[1] < run.speech.start
    assert second_end < answer[0] < second_end + LATENCY  # the answer to the second turn, none to the first
    assert answer[1] - answer[0] == pytest.approx(tone(spoken[1]), abs=0.06)


# --------------------------------------------------------------------------- only the imports changed


def test_examples_are_videosdks_files_but_for_the_lines_the_readme_lists() -> None:
    """Putting back VideoSDK's text on the lines the README lists as changed gives VideoSDK's file byte for byte
    (its sha256, recorded in the README from VideoSDK's repository), and those lines are imports or the stand-in
    providers the README explains."""
    readme = (EXAMPLES / "README.md").read_text()
    sections = re.split(r"^### ", readme, flags=re.MULTILINE)[1:]
    names = []
    for section in sections:
        name = re.match(r"`(\w+\.py)`", section)
        source = re.search(r"from `([\w/]+\.py)` \(sha256 `([0-9a-f]{64})`\)", section)
        assert name and source, section[:200]
        names.append(name[1])
        lines = (EXAMPLES / name[1]).read_text().split("\n")
        changes = re.findall(r"^- line (\d+): `(.*)` → `(.*)`$", section, re.MULTILINE)
        assert changes, name[1]
        for number, theirs, ours in changes:
            assert lines[int(number) - 1] == ours, (name[1], number)
            lines[int(number) - 1] = theirs
            assert re.match(r"\s*(from |import |stt=|tts=)", ours), (name[1], ours)  # imports, stand-in providers
        original = "\n".join(lines).encode()
        assert hashlib.sha256(original).hexdigest() == source[2], f"{name[1]} differs from {source[1]} elsewhere"
    assert sorted(names) == sorted(p.name for p in EXAMPLES.glob("*.py"))
