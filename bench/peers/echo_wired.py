"""The peers' echo workload with the session taken out: the anchor's ``EchoModel`` and ``CallerTransport``
(``agentsession_echo``) joined directly, the model's sink handing each frame to the transport and one task per
session pushing the caller's frames into the model. Against ``agentsession_echo.py`` at the same N it says what
the session itself adds; against ``bare_echo.py``, what the anchor's model and transport cost.

Run from the harness's folder, as its own scripts are (``bench/peers/matrix.py`` does):
``cd ../shared/peers && python /path/to/bench/peers/echo_wired.py --sessions 200 --seconds 10``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from importlib.metadata import version

sys.path.insert(0, ".")  # the harness's folder: its modules, as its own scripts import them
from anchor_common import Counters, emit, measure, parse_args  # noqa: E402

from agentsession import AgentAudio, AudioFrame, PipelineEvent  # noqa: E402
from agentsession_echo import CallerTransport, EchoModel  # noqa: E402  (also disables installed plugins)


class WiredTransport(CallerTransport):
    """The anchor's transport, taking a frame without a coroutine (its ``play`` never waits anyway)."""

    def take(self, frame: AudioFrame) -> None:
        self._idle.clear()
        self._queue.put_nowait(frame)


async def main() -> None:
    args = parse_args(__doc__ or "")
    if not args.verbose:
        logging.basicConfig(level=logging.WARNING)
    counters = [Counters() for _ in range(args.sessions)]
    transports: list[WiredTransport] = []
    tasks: list[asyncio.Task[None]] = []

    async def pump(transport: WiredTransport, model: EchoModel) -> None:
        async for frame in transport.audio_input():
            model.push_audio(frame)

    async def start_all() -> None:
        for c in counters:
            transport, model = WiredTransport(c), EchoModel()
            await transport.start()

            def sink(event: PipelineEvent | None, transport: WiredTransport = transport) -> None:
                if isinstance(event, AgentAudio):
                    transport.take(event.frame)

            model.channel.attach(sink)
            tasks.append(asyncio.create_task(pump(transport, model)))
            transports.append(transport)

    async def stop_all() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)

    emit(await measure(framework="agentsession-wired", version=version("agentsession"), args=args,
                       counters=counters, start_all=start_all, stop_all=stop_all))


if __name__ == "__main__":
    asyncio.run(main())
