"""``python agent.py replay CASSETTE``: a recorded conversation run again offline, and what changed.

The user's recorded audio is the input (file mode's transport); each provider link of the cassette is served
by its plugin's :class:`Replayer` (hook ``agentsession_replayers``), a loopback server the real SDK reaches
through its base-URL setting. A replayer plays a :class:`ReplayScript` per connection: when the agent has sent
what it sent before a recorded answer (as many requests, as much audio), the answer goes back with its recorded
delay. Requests are compared with the recorded ones as they come; at the end the conversation (transcripts,
tool calls, states, timing, interruptions) is compared with the recorded one (:func:`compare_logs`).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cassette import Cassette, ConversationLog, TrafficRecord
from ._clock import VirtualClockEventLoop
from ._errors import AgentSessionError
from ._file_transport import FileTransport, load_soundfile
from ._manager import create_manager, provided
from ._ports import JobView, SessionView
from ._secrets import redact
from ._transport import Transport, TransportMode

logger = logging.getLogger("agentsession.replay")

#: keys whose values are made afresh each run (ids of requests): mapped from the recorded ones, never compared
VOLATILE_KEYS = frozenset({"event_id", "agentsession_response_id"})
#: set (to the cassette's path) while ``replay`` runs: a recorder writes no cassette of a replay (its answers are
#: the recorded ones, not the provider's)
REPLAY_ENV = "AGENTSESSION_REPLAY"
#: how far (seconds) a turn may start from its recorded time before the replay reports it
DEFAULT_TOLERANCE = 0.5
_SHOWN = 160  # characters of a value shown in a difference


@dataclass
class _Answer:
    record: TrafficRecord
    requests: int  # requests the agent had sent before it
    audio: int  # bytes of audio the agent had sent before it
    delay: float  # seconds after the later of those and the answer before it


def describe_request(message: Any, tools: dict[str, str]) -> str:
    """A client message in a few words: its type (``type``, else its one key), its item's type, and the tools it
    names (``tools``: call id -> tool name, from the recorded answers)."""
    if not isinstance(message, dict):
        return "a text message"
    kind = str(message.get("type") or next(iter(message), "?"))
    item = message.get("item")
    if isinstance(item, dict) and item.get("type"):
        kind += f" {item['type']}"
    names = sorted(_tool_names(message, tools))
    return kind + (f", tool {', '.join(names)}" if names else "")


def _tool_names(value: Any, tools: dict[str, str]) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        call = value.get("call_id") or value.get("id")
        if isinstance(call, str) and call in tools:
            found.add(tools[call])
        elif isinstance(value.get("name"), str) and ("call_id" in value or "id" in value or "response" in value):
            found.add(value["name"])
        for v in value.values():
            found |= _tool_names(v, tools)
    elif isinstance(value, list):
        for v in value:
            found |= _tool_names(v, tools)
    return found


def _calls(value: Any, into: dict[str, str]) -> None:
    """Collect ``call id -> tool name`` from a provider's message (``call_id``/``id`` beside ``name``)."""
    if isinstance(value, dict):
        call = value.get("call_id") or value.get("id")
        if isinstance(call, str) and isinstance(value.get("name"), str):
            into[call] = value["name"]
        for v in value.values():
            _calls(v, into)
    elif isinstance(value, list):
        for v in value:
            _calls(v, into)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _label(items: list[Any], i: int) -> str:
    item = items[i]
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"[{item['name']}]"
    return f"[{i}]"


def diff_values(recorded: Any, now: Any, path: str, ids: dict[str, str], out: list[str],
                tolerance: float = DEFAULT_TOLERANCE) -> None:
    """Append to ``out`` each place where ``now`` differs from ``recorded`` (``path.key: recorded X, now Y``);
    values under :data:`VOLATILE_KEYS` are not compared but mapped (``ids[recorded] = now``); times in
    milliseconds (keys ending ``_ms``: where an interruption cut an answer) may differ by ``tolerance`` seconds.
    ``now``'s strings are compared with their secrets masked, as the cassette keeps them."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in list(recorded) + [k for k in now if k not in recorded]:
            where = f"{path}.{key}" if path else str(key)
            if key in VOLATILE_KEYS and isinstance(recorded.get(key), str) and isinstance(now.get(key), str):
                ids[recorded[key]] = now[key]
            elif key not in now:
                out.append(f"{where}: recorded {_short(recorded[key])}, now missing")
            elif key not in recorded:
                out.append(f"{where}: new, {_short(now[key])}")
            elif (str(key).endswith("_ms") and _number(recorded[key]) and _number(now[key])
                  and abs(recorded[key] - now[key]) <= tolerance * 1000):
                continue
            else:
                diff_values(recorded[key], now[key], where, ids, out, tolerance)
        return
    if isinstance(recorded, list) and isinstance(now, list):
        named = all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in [*recorded, *now])
        if named and recorded and now:
            old = {x["name"]: x for x in recorded}
            new = {x["name"]: x for x in now}
            for name in list(old) + [n for n in new if n not in old]:
                where = f"{path}[{name}]"
                if name not in new:
                    out.append(f"{where}: recorded, now missing")
                elif name not in old:
                    out.append(f"{where}: new, {_short(new[name])}")
                else:
                    diff_values(old[name], new[name], where, ids, out, tolerance)
            return
        for i in range(max(len(recorded), len(now))):
            if i >= len(now):
                out.append(f"{path}{_label(recorded, i)}: recorded {_short(recorded[i])}, now missing")
            elif i >= len(recorded):
                out.append(f"{path}{_label(now, i)}: new, {_short(now[i])}")
            else:
                diff_values(recorded[i], now[i], f"{path}{_label(recorded, i)}", ids, out, tolerance)
        return
    if isinstance(now, str):
        now = redact(now)
    if recorded != now:
        out.append(f"{path or 'the message'}: recorded {_short(recorded)}, now {_short(now)}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def substitute(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every string that is a recorded id replaced by this run's."""
    if not ids:
        return value
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    return value


class ReplayScript:
    """One recorded connection of a provider link, played back to this run's agent.

    ``audio_size(message)`` is the number of audio bytes a client message carries, or ``None`` when it is a
    request (anything but audio). Feed every client message to :meth:`client`; :meth:`play` sends the recorded
    answers, each once the agent has sent as many requests and as much audio as before it in the recording, and
    its recorded delay after that (on a virtual clock, ``--speed max``, the delays take no time). A request whose
    content differs is reported and answered as recorded; one of another kind (``describe`` differs) or beyond
    the recorded ones has no answer: it is reported, and nothing recorded after it is played.
    """

    def __init__(self, records: list[TrafficRecord], audio_size: Callable[[Any], int | None], *,
                 name: str = "", describe: Callable[[Any, dict[str, str]], str] = describe_request,
                 tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.name = name
        self.tolerance = tolerance
        self.audio_size = audio_size
        self.describe = describe
        self.requests: list[Any] = []
        self.answers: list[_Answer] = []
        self.tools: dict[str, str] = {}
        requests = audio = 0
        last: float | None = None
        for record in records:
            anchor = record.t if last is None else last
            last = record.t
            if record.dir == "sent":
                size = audio_size(record.msg)
                if size is None:
                    requests += 1
                    self.requests.append(record.msg)
                else:
                    audio += size
            else:
                _calls(record.msg, self.tools)
                self.answers.append(_Answer(record, requests, audio, max(0.0, record.t - anchor)))
        self.ids: dict[str, str] = {}
        self.differences: list[str] = []
        self.sent_requests = 0
        self.sent_audio = 0
        self.played = 0  # answers sent
        self.stop_at: int | None = None  # answers to this many requests and more are not played (one went astray)
        self._changed: asyncio.Event | None = None

    def client(self, message: Any) -> None:
        """The agent sent ``message`` (its JSON value, or text)."""
        size = self.audio_size(message)
        if size is not None:
            self.sent_audio += size
        else:
            n = self.sent_requests
            self.sent_requests += 1
            what = f"request {n + 1}{self.name} ({self.describe(message, self.tools)})"
            recorded = self.requests[n] if n < len(self.requests) else None
            if recorded is None:
                self.differences.append(f"{what} is new: the cassette has no answer for it, so that turn stops")
            elif self.describe(recorded, self.tools) != self.describe(message, self.tools):
                self.differences.append(f"{what} is new: the recording sent {self.describe(recorded, self.tools)} "
                                        "here; the cassette has no answer for it, so that turn stops")
                self.stop_at = n + 1 if self.stop_at is None else min(self.stop_at, n + 1)
            else:
                found: list[str] = []
                diff_values(recorded, message, "", self.ids, found, self.tolerance)
                if found:
                    self.differences.append(f"{what} differs:")
                    self.differences += [f"    {line}" for line in found]
        if self._changed is not None:
            self._changed.set()

    async def play(self, send: Callable[[TrafficRecord, Any], Awaitable[None]]) -> None:
        """Send the recorded answers in order, with their timing: ``send(record, message)`` with the message's
        recorded ids replaced by this run's. Returns when all were sent (or never, waiting for the agent)."""
        loop = asyncio.get_running_loop()
        self._changed = changed = asyncio.Event()
        ready = loop.time()
        for answer in self.answers:
            while self.sent_requests < answer.requests or self.sent_audio < answer.audio:
                changed.clear()
                await changed.wait()
            if self.stop_at is not None and answer.requests >= self.stop_at:
                return  # an answer to a request the agent no longer sends
            due = max(loop.time(), ready) + answer.delay
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await send(answer.record, substitute(answer.record.msg, self.ids))
            self.played += 1
            ready = loop.time()

    def finish(self) -> list[str]:
        """The differences, with the recorded requests this run never sent."""
        missing = [f"request {n + 1}{self.name} ({self.describe(self.requests[n], self.tools)}) was not sent: "
                   "the agent sent it in the recording" for n in range(self.sent_requests, len(self.requests))]
        return [*self.differences, *missing]


class Replayer(ABC):
    """Plays back one provider link's recorded traffic (``agentsession_replayers``): a loopback server speaking
    the provider's wire protocol, reached by the real SDK through the environment :meth:`start` returns.
    ``tolerance`` (seconds, set before :meth:`start`) is how far recorded times in requests may be off."""

    tolerance: float = DEFAULT_TOLERANCE

    @abstractmethod
    async def start(self, traffic: dict[str, list[list[TrafficRecord]]]) -> dict[str, str]:
        """Serve ``traffic``: by link (those of the cassette this replayer's factory is registered for), the recorded
        traffic of each connection, in order (play each new connection the next one). Return the environment that
        points the provider's SDK here (``OPENAI_BASE_URL``, ...)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop serving; idempotent."""

    @abstractmethod
    def differences(self) -> list[str]:
        """What this run sent that differs from the recording (call after :meth:`stop`)."""


class WebSocketReplayer(Replayer):
    """A :class:`Replayer` for a provider spoken over a websocket: each connection the agent makes plays the next
    recorded one (a :class:`ReplayScript`). A plugin gives the link's name and ``audio_size`` and implements
    :meth:`listen` (serve :meth:`handle` on loopback with its websocket library; websockets' ``ServerConnection``
    fits) and :meth:`close`."""

    def __init__(self, link: str, audio_size: Callable[[Any], int | None]) -> None:
        self.link = link
        self.audio_size = audio_size
        self.scripts: list[ReplayScript] = []
        self._next = 0
        self._extra: list[str] = []

    async def start(self, traffic: dict[str, list[list[TrafficRecord]]]) -> dict[str, str]:
        connections = traffic.get(self.link, [])
        many = len(connections) > 1
        self.scripts = [ReplayScript(records, self.audio_size, name=f" on connection {i + 1}" if many else "",
                                     tolerance=self.tolerance) for i, records in enumerate(connections)]
        return await self.listen()

    @abstractmethod
    async def listen(self) -> dict[str, str]:
        """Serve :meth:`handle` on loopback; the environment that points the provider's SDK there."""

    @abstractmethod
    async def close(self) -> None:
        """Stop serving."""

    async def stop(self) -> None:
        await self.close()

    def differences(self) -> list[str]:
        found = list(self._extra)
        for script in self.scripts[:self._next]:
            found += script.finish()
        for n in range(self._next, len(self.scripts)):
            found.append(f"connection {n + 1} to {self.link} was not made: the agent made it in the recording")
        return found

    async def handle(self, ws: Any) -> None:
        """Play the next recorded connection on ``ws`` (``async for`` its messages, ``send``, ``close``)."""
        n = self._next
        self._next += 1
        if n >= len(self.scripts):
            self._extra.append(f"connection {n + 1} to {self.link} is new: the cassette has no traffic for it")
            await ws.close(1011, "the cassette has no such connection")
            return
        script = self.scripts[n]

        async def send(record: TrafficRecord, message: Any) -> None:
            text = json.dumps(message) if record.is_json else str(message)
            await ws.send(text.encode("utf-8") if record.binary else text)

        player = asyncio.get_running_loop().create_task(script.play(send), name=f"replay:{self.link}")
        try:
            async for raw in ws:
                text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
                try:
                    message: Any = json.loads(text)
                except ValueError:
                    message = text
                script.client(message)
        except Exception as exc:  # the agent's side closed the socket (websockets' ConnectionClosed)
            logger.debug("%s replay connection %d ended: %s", self.link, n + 1, exc)
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)


def _lines(entries: Iterable[dict[str, Any]], kinds: dict[str, Callable[[dict[str, Any]], str]]) -> list[str]:
    return [kinds[e["kind"]](e) for e in entries if e.get("kind") in kinds]


def _collapse(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def compare_logs(recorded: list[dict[str, Any]], now: list[dict[str, Any]],
                 tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """What differs between two :class:`ConversationLog`'s entries: transcripts, tool calls and their results,
    the agent's states, where interruptions cut the answers (the words, and the seconds heard within
    ``tolerance``), and turns that began more than ``tolerance`` seconds from their recorded time."""
    out: list[str] = []

    def section(title: str, old: list[str], new: list[str]) -> None:
        if old != new:
            out.append(f"{title} differ:")
            out.extend(f"    {line}" for line in difflib.ndiff(old, new) if line[:1] in "-+")

    def tool(e: dict[str, Any]) -> str:
        return (f"{e['name']}({json.dumps(e['arguments'], ensure_ascii=False)}) -> "
                f"{json.dumps(e['result'], ensure_ascii=False)}{' (error)' if e.get('is_error') else ''}")

    section("transcripts", *(_lines(log, {"user_transcript": lambda e: f"user: {e['text']}",
                                          "agent_transcript": lambda e: f"agent: {e['text']}"})
                             for log in (recorded, now)))
    section("tool calls", *(_lines(log, {"tool_call": tool}) for log in (recorded, now)))
    section("agent states", *(_collapse(_lines(log, {"agent_state": lambda e: str(e["state"])}))
                              for log in (recorded, now)))
    old_cuts, new_cuts = ([e for e in log if e.get("kind") == "interrupted"] for log in (recorded, now))
    if len(old_cuts) != len(new_cuts) or any(a["text"] != b["text"] or abs(a["heard"] - b["heard"]) > tolerance
                                             for a, b in zip(old_cuts, new_cuts, strict=True)):
        section("interruptions", *([f"cut at {e['heard']:.2f} s: {e['text']}" for e in cuts]
                                   for cuts in (old_cuts, new_cuts)))
    old_turns, new_turns = ([e["t"] for e in log if e.get("kind") == "agent_state" and e.get("state") == "speaking"]
                            for log in (recorded, now))
    for i, (a, b) in enumerate(zip(old_turns, new_turns, strict=False), 1):
        if abs(a - b) > tolerance:
            out.append(f"turn timing: the agent began speaking turn {i} at {b:.2f} s, recorded {a:.2f} s "
                       f"(tolerance {tolerance:g} s)")
    return out


def replayers(extra: Iterable[object] = ()) -> dict[str, Callable[[], Replayer]]:
    """The installed replayers, by link name (the first registration of a name wins)."""
    found: dict[str, Callable[[], Replayer]] = {}
    for _plugin, name, factory in provided(create_manager(list(extra)), "agentsession_replayers"):
        found.setdefault(name, factory)
    return found


class ReplayTransport(FileTransport):
    """File mode's transport on the cassette's user audio, keeping the :class:`ConversationLog` of the run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = ConversationLog()

    def bind(self, session: SessionView) -> None:
        super().bind(session)
        self.log.attach(session)


class ReplayMode(TransportMode):
    """``python agent.py replay CASSETTE [--output out.wav] [--speed max] [--tolerance 0.5]``: exit 0 when the
    run matches the recording (within the tolerance), 1 with a report of what differs."""

    finite = True

    def __init__(self) -> None:
        super().__init__(self._create, help="run a recorded conversation (a .cassette) again offline and report "
                                            "what changed (exit 1 if anything did)")
        self.report: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("cassette", help="the cassette (NAME.cassette folder the recorder wrote beside NAME.jsonl)")
        parser.add_argument("--output", help="write the agent's audio of the replay to this file (.wav)")
        parser.add_argument("--speed", choices=["realtime", "max"], default="realtime",
                            help="max: on a virtual clock, the recorded timeline as fast as the CPU allows")
        parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                            help="seconds a turn's start or an interruption's cut may be off from the recording "
                                 "(default %(default)s)")

    def problems(self) -> list[tuple[str, str]]:
        try:
            load_soundfile()
        except AgentSessionError as exc:
            return [(str(exc).split(":")[0], "pip install 'agentsession[files]'")]
        return []

    def loop_factory(self, options: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
        return VirtualClockEventLoop if options.speed == "max" else None

    @staticmethod
    def _create(ctx: JobView) -> Transport:
        raise AgentSessionError("replay mode builds its transport itself")

    async def run(self, run_job: Callable[[Transport | None], Awaitable[Any]]) -> None:
        o = self.options
        cassette = Cassette.load(o.cassette)
        available = replayers()
        missing = [link for link in cassette.links if link not in available]
        if missing:
            raise AgentSessionError(f"no installed plugin replays {', '.join(map(repr, missing))} traffic "
                                    f"(installed replayers: {', '.join(sorted(available)) or 'none'}): install the "
                                    "provider's agentsession plugin")
        started: list[Replayer] = []
        with tempfile.TemporaryDirectory(prefix="agentsession-replay-") as tmp:
            audio = cassette.write_user_audio(Path(tmp) / "user.wav")
            saved: dict[str, str | None] = {}
            try:
                env: dict[str, str] = {REPLAY_ENV: str(cassette.path)}
                groups: dict[Callable[[], Replayer], list[str]] = {}  # one replayer for the links a factory serves
                for link in cassette.links:
                    groups.setdefault(available[link], []).append(link)
                for factory, links in groups.items():
                    replayer = factory()
                    replayer.tolerance = o.tolerance
                    started.append(replayer)
                    env.update(await replayer.start({link: cassette.connections(link) for link in links}))
                saved = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                transport = ReplayTransport(audio, o.output, speed=o.speed, sample_rate=24000)
                await run_job(transport)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
                for replayer in started:
                    await replayer.stop()
        found: list[str] = []
        for replayer in started:
            found += replayer.differences()
        found += compare_logs(cassette.log, transport.log.entries, o.tolerance)
        self.report = found
        print(report_text(cassette, found), flush=True)
        if found:
            raise AgentSessionError(f"the replay of {cassette.path} differs from the recording: see the report above")


def report_text(cassette: Cassette, differences: list[str]) -> str:
    """The replay's report: what differs, or that nothing did."""
    head = f"replay of {cassette.path}: "
    if not differences:
        return head + "no differences"
    count = sum(1 for line in differences if not line.startswith(" "))
    return "\n".join([head + f"{count} difference{'s' if count != 1 else ''}", *differences])
