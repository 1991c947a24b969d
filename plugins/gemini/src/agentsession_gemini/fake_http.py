"""A local Gemini API server (``generateContent`` and ``streamGenerateContent``) for the cascade classes' tests.

It speaks the real REST protocol, reached through the real SDK by ``HttpOptions(base_url=...)`` or
``GOOGLE_GEMINI_BASE_URL``: ``POST /v1beta/models/<model>:generateContent`` (JSON; ``/v1/`` too, which this SDK version uses) and
``...:streamGenerateContent?alt=sse`` (server-sent events), the key in ``x-goog-api-key``. Request bodies are
parsed with the SDK's own types (unknown fields are protocol errors) and answers are built from
``GenerateContentResponse``, so the fake cannot drift from the SDK's protocol.

The scripted "model" answers by what the request asks for:

- ``responseModalities: [AUDIO]`` (speech generation, a ``-tts`` model only, as the real API): 24 kHz PCM16
  (``audio/L16;codec=pcm;rate=24000``), 0.02 s of tone per character of the text, in 0.1 s chunks;
- a user turn with audio (``inlineData`` WAV, transcription): ``heard`` if the audio has a voice in it
  (an energy threshold), else nothing;
- otherwise (chat): after a ``functionResponse``, ``"Here is what I found: <the response as JSON>"``; a user
  text naming a declared function (``get_time``, or ``time`` without its ``get_``) gets a ``functionCall`` of
  it with ``tool_arguments[name]``; any other text gets ``"You said: <text>"``.
"""

from __future__ import annotations

import io
import json
import re
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web
from google.genai import types

PATH = re.compile(r"^/v1(beta)?/models/(?P<model>[^:/]+):(?P<method>generateContent|streamGenerateContent)$")
BODY_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}


@dataclass
class Request:
    model: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    contents: list[types.Content]
    system: types.Content | None
    tools: list[types.Tool]
    tool_config: types.ToolConfig | None
    generation: types.GenerationConfig | None
    safety: list[types.SafetySetting]
    audio: bytes = b""  # the PCM16 of an audio part (transcription requests)

    @property
    def kind(self) -> str:
        gen = self.generation
        if gen is not None and gen.response_modalities == [types.Modality.AUDIO]:
            return "speech"
        return "transcription" if self.audio else "chat"


class FakeGeminiHTTP:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.heard = "what is the weather in paris"
        self.tool_arguments: dict[str, dict[str, Any]] = {}
        self.speech_rate = 24000  # the rate of the speech it generates (the real API's is 24 kHz)
        self.requests: list[Request] = []
        self.protocol_errors: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> FakeGeminiHTTP:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def http_options(self) -> types.HttpOptions:
        return types.HttpOptions(base_url=self.base_url)

    def of_kind(self, kind: str) -> list[Request]:
        return [r for r in self.requests if r.kind == kind]

    # ------------------------------------------------------------------ protocol

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        match = PATH.match(request.path)
        if match is None:
            return self._error(404, "NOT_FOUND", f"unknown path {request.path}", protocol=True)
        if request.headers.get("x-goog-api-key") != self.api_key:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        stream = match["method"] == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            return self._error(400, "INVALID_ARGUMENT", "streaming needs alt=sse", protocol=True)
        try:
            parsed = self._parse(match["model"], match["method"], request, await request.json())
        except Exception as exc:
            return self._error(400, "INVALID_ARGUMENT", f"bad request: {exc!r}", protocol=True)
        self.requests.append(parsed)
        if parsed.kind == "speech" and not parsed.model.endswith("-tts"):
            return self._error(400, "INVALID_ARGUMENT", "The requested combination of response modalities is not "
                               "supported by the model.")
        chunks = self._answer(parsed)
        if not stream:
            merged = chunks[0].model_copy(deep=True)
            assert merged.candidates and merged.candidates[0].content
            merged.candidates[0].content.parts = [p for c in chunks for p in c.candidates[0].content.parts]  # type: ignore[index,union-attr]
            merged.candidates[0].finish_reason = types.FinishReason.STOP
            return web.json_response(_dump(merged))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(f"data: {json.dumps(_dump(chunk))}\r\n\r\n".encode())
        await response.write_eof()
        return response

    def _error(self, status: int, code: str, message: str, *, protocol: bool = False) -> web.Response:
        if protocol:
            self.protocol_errors.append(message)
        return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)

    @staticmethod
    def _parse(model: str, method: str, request: web.Request, body: dict[str, Any]) -> Request:
        assert set(body) <= BODY_FIELDS, f"unexpected request fields {set(body) - BODY_FIELDS}"
        system, generation, tool_config = body.get("systemInstruction"), body.get("generationConfig"), body.get(
            "toolConfig")
        contents = [types.Content.model_validate(c) for c in body["contents"]]
        audio = b""
        for content in contents:
            for part in content.parts or []:
                if part.inline_data is not None:
                    assert part.inline_data.mime_type == "audio/wav", part.inline_data.mime_type
                    with wave.open(io.BytesIO(part.inline_data.data or b"")) as w:
                        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
                        audio += w.readframes(w.getnframes())
        return Request(
            model=model, method=method, query=dict(request.query), headers=dict(request.headers), contents=contents,
            system=types.Content.model_validate(system) if system else None,
            tools=[types.Tool.model_validate(t) for t in body.get("tools", [])],
            tool_config=types.ToolConfig.model_validate(tool_config) if tool_config else None,
            generation=types.GenerationConfig.model_validate(generation) if generation else None,
            safety=[types.SafetySetting.model_validate(s) for s in body.get("safetySettings", [])],
            audio=audio,
        )

    # ------------------------------------------------------------------ the "model"

    def _answer(self, req: Request) -> list[types.GenerateContentResponse]:
        if req.kind == "speech":
            said = " ".join(p.text or "" for c in req.contents for p in c.parts or [])
            pcm = _tone(0.02 * len(said), self.speech_rate)
            step = self.speech_rate // 10  # 0.1 s
            mime = f"audio/L16;codec=pcm;rate={self.speech_rate}"
            return [_reply(types.Part(inline_data=types.Blob(mime_type=mime, data=pcm[i:i + 2 * step])))
                    for i in range(0, len(pcm), 2 * step)]
        if req.kind == "transcription":
            samples = np.frombuffer(req.audio, "<i2").astype(np.float64)
            voiced = samples.size and np.sqrt(np.mean(samples**2)) > 300
            return [_reply(types.Part(text=self.heard if voiced else ""))]
        last = req.contents[-1]
        responses = [p.function_response for p in last.parts or [] if p.function_response is not None]
        if responses:
            found = json.dumps(responses[0].response, sort_keys=True)
            return [_reply(types.Part(text="Here is what I found: ")), _reply(types.Part(text=found))]
        text = " ".join(p.text or "" for p in last.parts or [])
        names = [d.name for t in req.tools for d in t.function_declarations or [] if d.name]
        for name in names:
            if re.search(rf"\b({re.escape(name)}|{re.escape(name.removeprefix('get_'))})\b", text, re.I):
                call = types.FunctionCall(name=name, args=self.tool_arguments.get(name, {}))
                return [_reply(types.Part(function_call=call))]
        return [_reply(types.Part(text="You said: ")), _reply(types.Part(text=text))]


def _reply(part: types.Part) -> types.GenerateContentResponse:
    return types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=[part]))],
        response_id="fake-response",
    )


def _dump(response: types.GenerateContentResponse) -> dict[str, Any]:
    dumped: dict[str, Any] = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _tone(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * 32767 * np.sin(2 * np.pi * 440.0 * t)).astype("<i2").tobytes()
