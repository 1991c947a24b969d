"""A fake provider server in a child process of its own, so that a bench does not count its CPU as the agent's."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any


class ChildServer:
    """``target(pipe, *args)`` runs in a spawned child. It first sends a hello (its base URL, ...: ``hello``), then
    answers what the bench asks over ``pipe``; given ``stop`` it sends its protocol errors (kept in ``errors``) and
    exits. The child is always stopped on ``close()`` (or leaving a ``with``), killed if it does not go."""

    def __init__(self, target: Callable[..., None], *args: Any, name: str, stop: Any = "stop") -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), name=name, daemon=True)
        self.process.start()
        child.close()  # so the server sees EOF if this process dies
        self.errors: list[str] = []
        self._stop = stop
        self._lock = threading.Lock()  # a bench may ask from a thread too
        if not self.pipe.poll(60):
            self.close()
            raise RuntimeError(f"the fake server {name!r} did not start")
        self.hello: Any = self.pipe.recv()

    def send(self, message: Any) -> None:
        with self._lock:
            self.pipe.send(message)

    def ask(self, message: Any, timeout: float = 10.0) -> Any:
        """Send ``message`` and return the answer (None if none came within ``timeout``)."""
        with self._lock:
            self.pipe.send(message)
            return self.pipe.recv() if self.pipe.poll(timeout) else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pipe.send(self._stop)
            if self.pipe.poll(5):
                self.errors = list(self.pipe.recv())
        self.pipe.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

