"""VideoSDK's cascade_basic.py with Deepgram and Cartesia (``examples/videosdk_style/cascade_deepgram_cartesia.py``)
runs as a user runs it: a subprocess through the CLI's file mode, the user's speech an espeak-ng recording, every
provider a local fake speaking its real protocol, reached through the official SDKs configured only by the
documented variables (``DEEPGRAM_BASE_URL``, ``CARTESIA_BASE_URL``, ``OPENAI_BASE_URL`` and the keys)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from test_videosdk_style import Run, base_env, make_input, run_example  # noqa: E402

from agentsession_cartesia.fake import API_KEY as CARTESIA_KEY  # noqa: E402
from agentsession_cartesia.fake import FakeCartesiaServer  # noqa: E402
from agentsession_deepgram.fake import API_KEY as DEEPGRAM_KEY  # noqa: E402
from agentsession_deepgram.fake import FakeDeepgramServer  # noqa: E402
from agentsession_openai.fake.http import API_KEY as OPENAI_KEY  # noqa: E402
from agentsession_openai.fake.http import FakeOpenAIHTTP  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")

HEARD = "What is my horoscope for Aries? get_horoscope"


class Servers:
    def __init__(self, deepgram: FakeDeepgramServer, cartesia: FakeCartesiaServer, openai: FakeOpenAIHTTP) -> None:
        self.deepgram, self.cartesia, self.openai = deepgram, cartesia, openai

    @property
    def protocol_errors(self) -> list[str]:
        return self.deepgram.protocol_errors + self.cartesia.protocol_errors + self.openai.protocol_errors


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    async def go() -> Run:
        speech = make_input(tmp_path_factory.mktemp("cascade") / "cascade_deepgram_cartesia-in.wav",
                            "What is my horoscope for Aries", lead=2.5, tail=3.0)
        async with FakeDeepgramServer() as deepgram, FakeCartesiaServer() as cartesia, FakeOpenAIHTTP() as openai:
            deepgram.transcript = HEARD
            openai.tool_arguments["get_horoscope"] = {"sign": "Aries"}
            env = {k: v for k, v in base_env().items() if not k.startswith(("DEEPGRAM_", "CARTESIA_"))}
            env |= {"DEEPGRAM_BASE_URL": deepgram.base_url, "DEEPGRAM_API_KEY": DEEPGRAM_KEY,
                    "CARTESIA_BASE_URL": cartesia.base_url, "CARTESIA_API_KEY": CARTESIA_KEY,
                    "OPENAI_BASE_URL": openai.base_url, "OPENAI_API_KEY": OPENAI_KEY}
            return await run_example("cascade_deepgram_cartesia", speech, env, Servers(deepgram, cartesia, openai))

    return asyncio.run(go())


def assert_clean(run: Run) -> None:
    assert run.code == 0, run.why()
    assert run.server.protocol_errors == [], run.server.protocol_errors
    assert "Traceback" not in run.err and " ERROR " not in run.err, run.why()
    for key in (DEEPGRAM_KEY, CARTESIA_KEY, OPENAI_KEY):
        assert key not in run.out + run.err


def test_deepgram_hears_the_user_live_and_ends_their_turn(run: Run) -> None:
    assert_clean(run)
    deepgram: FakeDeepgramServer = run.server.deepgram
    (session,) = deepgram.sessions  # one live stream for the whole call
    assert (session.query["model"], session.query["language"], session.query["sample_rate"]) == (
        "nova-2", "en-US", "16000")
    assert session.audio_seconds > run.speech.duration - 0.1  # all the user's audio went live (then silence)
    assert session.closed.is_set() and set(session.controls) <= {"KeepAlive"}  # closed with the session
    assert run.printed("User: ") == [HEARD]  # Deepgram's final, once, as the user's turn
    (ask, after_tool) = run.server.openai.chat_requests
    assert ask["messages"][-1] == {"role": "user", "content": HEARD}
    assert run.printed("### ") == ["Getting the horoscope for Aries"]
    assert json.loads(after_tool["messages"][-1]["content"])["horoscope"] == "Today is your lucky day!"


def test_cartesia_speaks_the_answer_as_the_llm_streams_it(run: Run) -> None:
    assert_clean(run)
    cartesia: FakeCartesiaServer = run.server.cartesia
    assert len(cartesia.connections) == 1  # one websocket for every synthesis
    said = [c.transcript for c in cartesia.contexts]
    assert said[0] == "Hello, how can I help you today?" and said[-1] == "Goodbye!"
    (answer,) = said[1:-1]
    assert answer.startswith("The answer is") and answer.endswith("Anything else?")
    (context,) = [c for c in cartesia.contexts if c.transcript == answer]
    assert len(context.requests) > 5  # word by word as the LLM streamed, not one request for the sentence
    greeting, spoken, goodbye = run.segments  # what the user heard, and when
    assert greeting[1] < run.speech.start
    assert run.speech.end < spoken[0] < run.speech.end + 2.5
    expected = cartesia.seconds_per_char * sum(len(r["transcript"].strip()) for r in context.requests)
    assert spoken[1] - spoken[0] == pytest.approx(expected, abs=0.1)
    assert goodbye[0] > run.speech.duration
