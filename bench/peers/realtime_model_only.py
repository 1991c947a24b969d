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
import logging
import os
import sys
from importlib.metadata import version

import numpy as np

sys.path.insert(0, ".")  # the harness's folder
from realtime_common import (  # noqa: E402
    API_KEY,
    RATE,
    SPEECH,
    Caller,
    TurnPlayoutClock,
    WindowCounters,
    add_realtime_args,
    emit,
    measure_realtime,
    parse_args,
    phase_of,
    start_server,
)

import agentsession_echo  # noqa: E402,F401  (disables installed plugins, as the session's anchor does)
from agentsession import AgentAudio, AudioFrame, ModelOptions, PipelineEvent  # noqa: E402
from agentsession_openai import OpenAIRealtime  # noqa: E402

SPEECH_FRAME = AudioFrame(np.frombuffer(SPEECH, dtype=np.int16).reshape(-1, 1), RATE)
SILENCE_FRAME = AudioFrame(np.zeros((len(SPEECH) // 2, 1), np.int16), RATE)


class ModelOnly:
    def __init__(self, counters: WindowCounters, phase: float) -> None:
        self._counters = counters
        self._caller = Caller(counters, phase)
        self._clock = TurnPlayoutClock(counters)
        self._audio: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self._model = OpenAIRealtime()
        self._tasks: list[asyncio.Task[None]] = []

    def _sink(self, event: PipelineEvent | None) -> None:
        if isinstance(event, AgentAudio):
            self._audio.put_nowait(event.frame)

    async def start(self) -> None:
        self._model.channel.attach(self._sink)
        await self._model.start(ModelOptions(instructions="You are a helpful voice assistant."))
        self._tasks = [asyncio.create_task(self._feed()), asyncio.create_task(self._play())]

    async def _feed(self) -> None:
        push = self._model.push_audio
        while True:
            push(SPEECH_FRAME if await self._caller.next_frame() is SPEECH else SILENCE_FRAME)

    async def _play(self) -> None:
        while True:
            seconds = (await self._audio.get()).duration
            await self._clock.play(seconds)
            self._counters.frames_out += 1
            self._counters.audio_out_s += seconds

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._model.close()


async def main() -> None:
    args = parse_args(__doc__ or "", add_realtime_args)
    if not args.verbose:
        logging.basicConfig(level=logging.WARNING)
    server = start_server(args)
    try:
        os.environ["OPENAI_BASE_URL"] = server.http_base
        os.environ["OPENAI_API_KEY"] = API_KEY
        counters = [WindowCounters() for _ in range(args.sessions)]
        sessions: list[ModelOnly] = []

        async def start_all() -> None:
            for i, c in enumerate(counters):
                session = ModelOnly(c, phase_of(args, i))
                await session.start()
                sessions.append(session)

        async def stop_all() -> None:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

        emit(await measure_realtime(framework="agentsession-model-only", version=version("agentsession-openai"),
                                    args=args, counters=counters, server=server, start_all=start_all,
                                    stop_all=stop_all, errors=[]))
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
