"""The peers' OpenAI Realtime workload with the session taken out: per session an
``agentsession_openai.OpenAIRealtime`` with its defaults (the ``openai`` SDK's websocket to the harness's fake
server), the harness's caller pushing its 20 ms frames into ``push_audio`` and a sink playing each ``AgentAudio``
(one per 100 ms delta) as one chunk into ``TurnPlayoutClock``. Between ``realtime_floor.py`` and
``agentsession_realtime.py`` at the same N it splits what agentsession adds into the plugin's part (its link,
the SDK) and the session's.

Run from the harness's folder (``bench/peers/matrix.py`` does):
``cd ../shared/peers && python /path/to/bench/peers/realtime_model_only.py --sessions 50 --seconds 20``.
"""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version

import numpy as np

sys.path.insert(0, ".")  # the harness's folder
from _realtime_run import Played, run  # noqa: E402
from realtime_common import RATE, SPEECH, Caller, FakeServer, WindowCounters  # noqa: E402

import agentsession_echo  # noqa: E402,F401  (disables installed plugins, as the session's anchor does)
from agentsession import AgentAudio, AudioFrame, ModelOptions, PipelineEvent  # noqa: E402
from agentsession_openai import OpenAIRealtime  # noqa: E402

SPEECH_FRAME = AudioFrame(np.frombuffer(SPEECH, dtype=np.int16).reshape(-1, 1), RATE)
SILENCE_FRAME = AudioFrame(np.zeros((len(SPEECH) // 2, 1), np.int16), RATE)


class ModelOnly(Played):
    def __init__(self, counters: WindowCounters, phase: float) -> None:
        super().__init__(counters)
        self._caller = Caller(counters, phase)
        self._model = OpenAIRealtime()

    def _sink(self, event: PipelineEvent | None) -> None:
        if isinstance(event, AgentAudio):
            self.play(event.frame.duration)

    async def start(self) -> None:
        self._model.channel.attach(self._sink)
        await self._model.start(ModelOptions(instructions="You are a helpful voice assistant."))
        self.tasks.append(asyncio.create_task(self._feed()))
        self.start_playout()

    async def _feed(self) -> None:
        push = self._model.push_audio
        while True:
            push(SPEECH_FRAME if await self._caller.next_frame() is SPEECH else SILENCE_FRAME)

    async def disconnect(self) -> None:
        await self._model.close()


async def start(counters: WindowCounters, phase: float, server: FakeServer) -> ModelOnly:
    session = ModelOnly(counters, phase)  # the SDK finds the fake through OPENAI_BASE_URL
    await session.start()
    return session


if __name__ == "__main__":
    run(__doc__ or "", "agentsession-model-only", version("agentsession-openai"), start)
