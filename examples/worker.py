"""The parrot as a worker of VideoSDK's agent registry (deploy/Dockerfile runs this).

    VIDEOSDK_AUTH_TOKEN=... python examples/worker.py            # register, take dispatched meetings
    python examples/worker.py console                            # a mode named on the command line still wins
"""

from __future__ import annotations

import os

from parrot import entrypoint

from agentsession import JobContext, Options, RoomOptions, WorkerJob

if __name__ == "__main__":
    WorkerJob(
        entrypoint=entrypoint,
        jobctx=lambda: JobContext(room_options=RoomOptions(name="Parrot")),
        options=Options(
            register=True,
            agent_id=os.environ.get("AGENT_ID", "parrot"),
            max_processes=int(os.environ.get("AGENT_MAX_PROCESSES", "10")),
            load_threshold=0.75,
            num_idle_processes=2,
            port=8081,
            drain_timeout=float(os.environ.get("AGENT_DRAIN_TIMEOUT", "60")),
        ),
    ).start()
