"""A local Gemini Live server for tests, reached through the real SDK.

It speaks the real wire protocol: the SDK connects with ``wss://`` to
``/ws/google.ai.generativelanguage.<version>.GenerativeService.BidiGenerateContent`` with the key in the
``x-goog-api-key`` header, so the server serves TLS on 127.0.0.1 with a self-signed certificate made
here. Client messages are parsed with ``google.genai.types.LiveClientMessage`` (camelCase or snake_case
keys, as the real server accepts) and server messages are built from ``LiveServerMessage``, so the fake
cannot drift from the SDK's protocol.

The scripted "model": it answers each client turn and each tool response with ``reply_chunks`` chunks of
24 kHz audio plus an output transcription and usage (text parts instead, if the setup asked for the TEXT
modality), then ``turnComplete``; a turn whose text mentions "tool" gets a ``toolCall`` of the first
declared function instead ("all tools": one call of each). Realtime audio runs through a tiny energy VAD:
speech then ``silence_ms`` of quiet ends the user's turn (input transcription of ``heard``, then an answer (saying
``answer``, if set), or a ``toolCall`` of the declared functions ``heard`` names); speech during an answer stops it with
``interrupted``, and so does a new client turn.

Session resumption as the real server does it: a new handle at the start of a connection and after each
completed turn (unless ``issue_handles`` is off); each handle stands for the conversation at that point
(``Connection.history``: the turns the server holds, as ``(role, text)``), and a connection that resumes
with it starts from that conversation. An unknown handle closes the connection with 1008.

Faults, for the liveness tests: ``drop()`` cuts the socket (no close frame); ``stall()`` leaves it open and
forwards nothing (the server stops reading, and every message it would send waits); ``trickle()`` is a
slow-loris: the server's bytes go out one at a time, ``trickle_interval`` apart, so no message completes;
``stall_new`` stalls each new connection before its ``setupComplete``; ``hang()`` stops the answer in flight
where it is while the server goes on sending unrelated messages (a session resumption update) every second;
``close(reason)`` closes with 1011 and a reason; ``send_raw()`` sends any text. The user audio a connection
received is kept in ``Connection.audio`` (pcm16 mono 16 kHz).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pydantic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.genai import types
from websockets.asyncio.server import ServerConnection, serve

from agentsession.plugin import FakeService, example_arguments
from agentsession.testing import every, slow_loris

PATH_SUFFIX = ".GenerativeService.BidiGenerateContent"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def tone_pcm(seconds: float, rate: int = 24000, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def parse_setup(raw: str | bytes) -> tuple[types.LiveClientSetup, dict[str, Any]]:
    """The setup message, parsed with the SDK's types.

    The SDK sends some setup fields (``realtimeInputConfig``) that ``LiveClientSetup`` does not model;
    those are parsed with the type of the same-named ``LiveConnectConfig`` field.
    """
    message = json.loads(raw)
    assert set(message) == {"setup"}, f"the first client message must be setup, got {sorted(message)}"
    setup = dict(message["setup"])
    known = {name for f, info in types.LiveClientSetup.model_fields.items() for name in (f, info.alias)}
    config_fields = {n: info for f, info in types.LiveConnectConfig.model_fields.items() for n in (f, info.alias)}
    extra: dict[str, Any] = {}
    for key in [k for k in setup if k not in known]:
        info = config_fields[key]  # KeyError: a field unknown to the SDK's types
        extra[key] = pydantic.TypeAdapter[Any](info.annotation or Any).validate_python(setup.pop(key))
    return types.LiveClientSetup.model_validate(setup), extra


@dataclass
class Connection:
    """One client connection as the server saw it."""

    ws: ServerConnection
    path: str
    headers: dict[str, str]
    setup: types.LiveClientSetup
    setup_extra: dict[str, Any]  # setup fields the SDK sends but LiveClientSetup lacks, as config types
    messages: list[types.LiveClientMessage] = field(default_factory=list)
    audio_bytes: int = 0
    speech: float = 0.0  # seconds of the user's current utterance (the fake's energy VAD)
    quiet: float = 0.0
    answer: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    history: list[tuple[str, str]] = field(default_factory=list)  # the conversation the server holds
    pending_calls: set[str] = field(default_factory=set)  # function calls made and not answered yet
    audio: bytearray = field(default_factory=bytearray)  # the user audio received
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while stalled: messages wait
    going: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while hung: the answer waits
    faults: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()
        self.going.set()

    @property
    def text_modality(self) -> bool:
        gen = self.setup.generation_config
        return gen is not None and gen.response_modalities == [types.Modality.TEXT]


class FakeLiveServer:
    def __init__(self, *, reply_chunks: int = 5, chunk_seconds: float = 0.04, chunk_delay: float = 0.0,
                 silence_ms: int = 300) -> None:
        self.reply_chunks = reply_chunks
        self.chunk_seconds = chunk_seconds
        self.chunk_delay = chunk_delay
        self.silence_ms = silence_ms
        self.heard = "hello gemini"  # what the fake "hears" in the user's speech
        self.answer = ""  # what it says back to that speech (its output transcription); "" for word0 word1 ...
        self.tool_arguments: dict[str, dict[str, Any]] = {}  # the arguments of each tool's calls, by name
        self.example_arguments = False  # a tool without tool_arguments is called with example ones (from its schema)
        self.connections: list[Connection] = []
        self.handles_issued = 0
        self.issue_handles = True
        self.protocol_errors: list[str] = []  # what the real server would refuse (tests assert none)
        self.conversations: dict[str, list[tuple[str, str]]] = {}  # the conversation each handle stands for
        self.refuse = 0  # refuse this many upcoming connections (closed during the handshake)
        self.stall_new = False  # stall each new connection before its setupComplete
        self.trickle_interval = 0.5  # seconds between the bytes of a trickled connection
        self._new_connection = asyncio.Condition()
        self._message = asyncio.Condition()
        self._tmp = tempfile.TemporaryDirectory()
        self._server: Any = None
        self.port = 0
        cert, key = make_certificate(Path(self._tmp.name))
        self.cert_path = cert
        self._server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ssl.load_cert_chain(cert, key)
        self.client_ssl = ssl.create_default_context(cafile=str(cert))

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeLiveServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, ssl=self._server_ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            for task in conn.faults:
                task.cancel()
            if not conn.gate.is_set() or conn.faults:  # a stalled peer would hold the closing handshake
                conn.ws.transport.abort()
                conn.gate.set()  # what waited to be sent fails now
        self._server.close()
        await self._server.wait_closed()
        self._tmp.cleanup()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def http_options(self) -> types.HttpOptions:
        return types.HttpOptions(base_url=self.base_url, async_client_args={"ssl": self.client_ssl})

    # ------------------------------------------------------------------ test helpers

    async def wait_connections(self, n: int, timeout: float = 5.0) -> Connection:
        async with self._new_connection:
            await asyncio.wait_for(self._new_connection.wait_for(lambda: len(self.connections) >= n), timeout)
        return self.connections[n - 1]

    async def wait_message(self, predicate: Any, timeout: float = 5.0) -> types.LiveClientMessage:
        """The first client message (on any connection) matching ``predicate``."""

        def find() -> types.LiveClientMessage | None:
            for conn in self.connections:
                for message in conn.messages:
                    if predicate(message):
                        return message
            return None

        async with self._message:
            await asyncio.wait_for(self._message.wait_for(lambda: find() is not None), timeout)
        found = find()
        assert found is not None
        return found

    async def wait_audio(self, conn: Connection, nbytes: int, timeout: float = 5.0) -> None:
        """Wait until ``conn`` was sent ``nbytes`` of user audio."""

        def received() -> int:
            return sum(len(m.realtime_input.audio.data or b"") for m in conn.messages
                       if m.realtime_input is not None and m.realtime_input.audio is not None)

        async with self._message:
            await asyncio.wait_for(self._message.wait_for(lambda: received() >= nbytes), timeout)

    @property
    def current(self) -> Connection:
        return self.connections[-1]

    def stall(self, conn: Connection | None = None) -> Connection:
        """Forward nothing on ``conn`` (the current one) from now on: TCP stays open, nothing is read or sent."""
        conn = conn or self.current
        conn.gate.clear()
        conn.ws.transport.pause_reading()
        return conn

    def trickle(self, conn: Connection | None = None) -> Connection:
        """A slow-loris on ``conn``: what the server writes from now on goes out a byte per ``trickle_interval``."""
        conn = conn or self.current
        conn.faults.append(slow_loris(conn.ws.transport, self.trickle_interval))
        return conn

    def hang(self, conn: Connection | None = None) -> Connection:
        """The answer in flight on ``conn`` stops where it is; unrelated messages go on, one a second."""
        conn = conn or self.current
        conn.going.clear()
        update = types.LiveServerSessionResumptionUpdate(resumable=False)
        conn.faults.append(every(1.0, lambda: self.send(types.LiveServerMessage(session_resumption_update=update),
                                                        conn)))
        return conn

    async def close(self, reason: str, code: int = 1011, conn: Connection | None = None) -> None:
        """Close ``conn`` (the current one) with ``code`` and ``reason``."""
        await (conn or self.current).ws.close(code, reason)

    async def send_raw(self, data: str, conn: Connection | None = None) -> None:
        """Send ``data`` as one message on ``conn`` (the current one)."""
        await (conn or self.current).ws.send(data)

    async def send(self, message: types.LiveServerMessage, conn: Connection | None = None) -> None:
        conn = conn or self.current
        await conn.gate.wait()
        await conn.ws.send(json.dumps(message.model_dump(mode="json", by_alias=True, exclude_none=True)))

    async def go_away(self, conn: Connection | None = None, time_left: str = "1s") -> None:
        await self.send(types.LiveServerMessage(go_away=types.LiveServerGoAway(time_left=time_left)), conn)

    def drop(self, conn: Connection | None = None) -> None:
        """Cut the socket without a close frame (a network failure)."""
        (conn or self.current).ws.transport.abort()

    # ------------------------------------------------------------------ protocol

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if not path.endswith(PATH_SUFFIX):
            await ws.close(1008, "unknown method")
            return
        if self.refuse:
            self.refuse -= 1
            await ws.close(1011, "unavailable")
            return
        setup, extra = parse_setup(await ws.recv())
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        conn = Connection(ws, path, headers, setup, extra)
        handle = setup.session_resumption.handle if setup.session_resumption is not None else None
        if handle is not None:
            if handle not in self.conversations:
                await ws.close(1008, "unknown session resumption handle")
                return
            conn.history = list(self.conversations[handle])
        async with self._new_connection:
            self.connections.append(conn)
            self._new_connection.notify_all()
        if self.stall_new:
            self.stall(conn)
        await self.send(types.LiveServerMessage(setup_complete=types.LiveServerSetupComplete()), conn)
        await self._issue_handle(conn)
        try:
            async for raw in ws:
                message = types.LiveClientMessage.model_validate_json(raw)
                async with self._message:
                    conn.messages.append(message)
                    self._message.notify_all()
                await self._on_client(conn, message)
        except Exception:  # noqa: BLE001 - a dropped client ends the connection, nothing more
            pass
        finally:
            if conn.answer is not None:
                conn.answer.cancel()
            for task in conn.faults:
                task.cancel()
            conn.closed.set()

    async def _issue_handle(self, conn: Connection) -> None:
        if not self.issue_handles:
            return
        self.handles_issued += 1
        handle = f"handle-{self.handles_issued}"
        self.conversations[handle] = list(conn.history)
        update = types.LiveServerSessionResumptionUpdate(new_handle=handle, resumable=True)
        await self.send(types.LiveServerMessage(session_resumption_update=update), conn)

    async def _on_client(self, conn: Connection, message: types.LiveClientMessage) -> None:
        content = message.client_content
        if content is not None:
            for turn in content.turns or ():
                conn.history.append((turn.role or "user", " ".join(p.text or "" for p in turn.parts or ())))
        if content is not None and content.turn_complete:
            text = " ".join(p.text or "" for c in content.turns or () for p in c.parts or ())
            tools = [d.name or "" for t in conn.setup.tools or () if isinstance(t, types.Tool)
                     for d in t.function_declarations or ()]
            if "all tools" in text.lower() and tools:
                self._answer(conn, tools=tools)
            elif "tool" in text.lower() and tools:
                self._answer(conn, tools=tools[:1])
            else:
                self._answer(conn)
        elif message.tool_response is not None:
            responses = message.tool_response.function_responses or []
            unknown = [r.id for r in responses if r.id not in conn.pending_calls]
            if unknown:
                self.protocol_errors.append(f"tool_response for calls this session did not make: {unknown}")
                await conn.ws.close(1007, "unknown function call id")
                return
            conn.pending_calls.difference_update(r.id for r in responses)
            conn.history.append(("user", " ".join(f"{r.name}={json.dumps(r.response)}" for r in responses)))
            if not all(r.scheduling == types.FunctionResponseScheduling.SILENT for r in responses):
                self._answer(conn)  # SILENT: the results join the context, and no turn is generated (as the API)
        elif message.realtime_input is not None and message.realtime_input.audio is not None:
            await self._on_audio(conn, message.realtime_input.audio.data or b"")

    async def _on_audio(self, conn: Connection, data: bytes) -> None:
        conn.audio_bytes += len(data)
        conn.audio.extend(data)
        samples = np.frombuffer(data, "<i2").astype(np.float32)
        for start in range(0, samples.size, 320):  # 20 ms windows at 16 kHz
            await self._on_window(conn, samples[start : start + 320])

    async def _on_window(self, conn: Connection, window: np.ndarray) -> None:
        loud = window.size > 0 and float(np.sqrt(np.mean(window**2))) > 1000
        if loud:
            conn.speech += window.size / 16000
            conn.quiet = 0.0
            if conn.answer is not None and not conn.answer.done():
                conn.answer.cancel()
                await self.send(types.LiveServerMessage(server_content=types.LiveServerContent(interrupted=True)), conn)
        elif conn.speech > 0:
            conn.quiet += window.size / 16000
            if conn.quiet * 1000 >= self.silence_ms:
                conn.speech = conn.quiet = 0.0
                transcript = types.Transcription(text=self.heard)
                conn.history.append(("user", self.heard))
                await self.send(
                    types.LiveServerMessage(server_content=types.LiveServerContent(input_transcription=transcript)),
                    conn,
                )
                tools = [d.name or "" for t in conn.setup.tools or () if isinstance(t, types.Tool)
                     for d in t.function_declarations or ()]
                named = [name for name in tools if re.search(rf"\b{re.escape(name)}\b", self.heard)]
                self._answer(conn, tools=named or None, text=self.answer)

    def _answer(self, conn: Connection, tools: list[str] | None = None, text: str = "") -> None:
        if conn.answer is not None and not conn.answer.done():
            conn.answer.cancel()  # a new turn replaces the current answer
            conn.answer = asyncio.ensure_future(self._replace(conn, tools, text))
        else:
            conn.answer = asyncio.ensure_future(self._speak(conn, tools, text))

    def _arguments(self, conn: Connection, name: str) -> dict[str, Any]:
        if name in self.tool_arguments or not self.example_arguments:
            return dict(self.tool_arguments.get(name, {}))
        for tool in conn.setup.tools or ():
            for decl in tool.function_declarations or () if isinstance(tool, types.Tool) else ():
                if decl.name == name:
                    schema = decl.parameters_json_schema or (
                        decl.parameters.model_dump(mode="json", exclude_none=True) if decl.parameters else {})
                    return example_arguments(schema if isinstance(schema, dict) else {})
        return {}

    async def _replace(self, conn: Connection, tools: list[str] | None, text: str = "") -> None:
        await self.send(types.LiveServerMessage(server_content=types.LiveServerContent(interrupted=True)), conn)
        await self._speak(conn, tools, text)

    def _pieces(self, text: str) -> list[str]:
        """The answer's text, one piece per chunk: ``text``'s words spread over them, or ``word0 ``, ``word1 ``..."""
        n, words = self.reply_chunks, text.split()
        if not words:
            return [f"word{i} " for i in range(n)]
        return [" ".join(words[len(words) * i // n : len(words) * (i + 1) // n]) + " " for i in range(n)]

    async def _speak(self, conn: Connection, tools: list[str] | None, text: str = "") -> None:
        if tools:
            calls = [types.FunctionCall(id=f"fc-{len(conn.messages)}-{i}", name=name, args=self._arguments(conn, name))
                     for i, name in enumerate(tools)]
            conn.history.append(("model", " ".join(f"call {name}" for name in tools)))
            conn.pending_calls.update(call.id or "" for call in calls)
            await self.send(types.LiveServerMessage(tool_call=types.LiveServerToolCall(function_calls=calls)), conn)
            return
        pcm = tone_pcm(self.chunk_seconds)
        said = ""
        try:
            for piece in self._pieces(text):
                await conn.going.wait()
                if conn.text_modality:
                    part = types.Part(text=piece)
                    content = types.LiveServerContent(model_turn=types.Content(role="model", parts=[part]))
                else:
                    blob = types.Blob(data=pcm, mime_type="audio/pcm;rate=24000")
                    content = types.LiveServerContent(
                        model_turn=types.Content(role="model", parts=[types.Part(inline_data=blob)]),
                        output_transcription=types.Transcription(text=piece),
                    )
                await self.send(types.LiveServerMessage(server_content=content), conn)
                said += piece
                await asyncio.sleep(self.chunk_delay)
        finally:
            conn.history.append(("model", said))  # what was generated, interrupted or not
        usage = types.UsageMetadata(prompt_token_count=12, response_token_count=34, total_token_count=46)
        await self.send(types.LiveServerMessage(usage_metadata=usage), conn)
        await self.send(types.LiveServerMessage(server_content=types.LiveServerContent(turn_complete=True)), conn)
        await self._issue_handle(conn)


#: the key ``agentsession fakes gemini`` tells the agent to use (the fake takes any)
FAKE_KEY = "fake-agentsession-gemini-key"


class GeminiFakes(FakeService):
    """``agentsession fakes gemini``: a :class:`FakeLiveServer` on 127.0.0.1, its certificate made at start."""

    description: ClassVar[str] = "Gemini Live (TLS with a certificate made at start: SSL_CERT_FILE trusts it)"
    knobs: ClassVar[dict[str, str]] = {
        "heard": "what the fake hears the user say; name one of the agent's tools in it (transfer_to_booking) "
                 "and the model calls that tool",
        "reply_audio": "seconds of audio (a tone) in each spoken answer",
        "tool_arguments": 'each tool call\'s arguments, by tool name ({"get_weather": {"city": "Rome"}}); a tool '
                          "not listed is called with example arguments made from its schema",
    }

    def __init__(self) -> None:
        self.heard = "hello gemini"
        self.reply_audio = 1.0
        self.tool_arguments: dict[str, Any] = {}
        self.server: FakeLiveServer | None = None

    async def start(self, host: str = "127.0.0.1") -> dict[str, str]:
        chunks = 5
        server = FakeLiveServer(reply_chunks=chunks, chunk_seconds=self.reply_audio / chunks)
        server.heard, server.tool_arguments, server.example_arguments = self.heard, self.tool_arguments, True
        self.server = await server.__aenter__()
        return {"GOOGLE_GEMINI_BASE_URL": server.base_url, "GOOGLE_API_KEY": FAKE_KEY,
                "SSL_CERT_FILE": str(server.cert_path)}

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.__aexit__(None, None, None)
