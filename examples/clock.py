"""The offline demo with a tool: the parrot agent, asked the time, calls its ``get_time`` tool. No API key.

    python examples/clock.py file --input examples/hello.wav --output clock-out.wav --speed max

ParrotModel cannot recognise speech, so a script stands in for it: your first utterance counts as "What time
is it?", and the words "time" make the model call ``get_time`` and then read its result out. The whole loop
runs: greeting, your turn, the tool call, the answer (later utterances are repeated back, as in parrot.py).
"""

from __future__ import annotations

from parrot import entrypoint  # examples/parrot.py: the agent, its get_time tool and the printed events

from agentsession import JobContext, ParrotModel, RoomOptions, WorkerJob


async def clock(ctx: JobContext) -> None:
    await entrypoint(ctx, ParrotModel(heard=["What time is it?"], calls={"time": "get_time"}))


if __name__ == "__main__":
    WorkerJob(entrypoint=clock, jobctx=lambda: JobContext(room_options=RoomOptions(name="Clock"))).start()
