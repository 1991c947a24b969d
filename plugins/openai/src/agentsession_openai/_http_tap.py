"""The OpenAI HTTP APIs' traffic (chat completions, speech) shown to the session's link taps, for cassettes.

``tapped_http_client()`` is the SDK's own default client (``DefaultAsyncHttpxClient``, its documented
``http_client=``) over a transport that, when the request runs in a session with taps (a recorder), shows each
request and each chunk of its streamed response to them as link ``OpenAI HTTP`` messages:

- sent ``{"id": n, "method": "POST", "path": "/v1/chat/completions", "body": <JSON, or text>}``
- received ``{"id": n, "status": 200, "headers": {"content-type": ...}}``, then ``{"id": n, "chunk": <text, or
  base64 of a body that is not text: audio>, "binary": bool}`` per chunk, then ``{"id": n, "end": true}``.
"""

from __future__ import annotations

import base64
import itertools
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from openai import DefaultAsyncHttpxClient

from agentsession.plugin import LinkTap, current_link_taps, tap_message

#: the link name the HTTP traffic is tapped under
HTTP_LINK = "OpenAI HTTP"
#: the response headers a cassette keeps (what a replay must send back)
KEPT_HEADERS = ("content-type", "content-encoding")
_ids = itertools.count()


def tapped_http_client(verify: ssl.SSLContext | bool = True) -> httpx2.AsyncClient:
    """The SDK's default async client, its requests shown to the running session's link taps."""
    return DefaultAsyncHttpxClient(transport=TappedTransport(verify))


def _body(content: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(content).decode("ascii")}


class TappedTransport(httpx2.AsyncBaseTransport):
    """``httpx2.AsyncHTTPTransport`` (httpx2's default limits and settings), each exchange shown to the link taps."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._inner = httpx2.AsyncHTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        taps = current_link_taps()
        if not taps:
            return await self._inner.handle_async_request(request)
        rid = next(_ids)
        content = await request.aread()
        tap_message(taps, HTTP_LINK, 0, "sent", json.dumps({
            "id": rid, "method": request.method, "path": request.url.raw_path.decode("ascii"),
            "body": _body(content, request.headers.get("content-type", ""))}))
        response = await self._inner.handle_async_request(request)
        headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
        tap_message(taps, HTTP_LINK, 0, "received",
                    json.dumps({"id": rid, "status": response.status_code, "headers": headers}))
        kind = headers.get("content-type", "")
        text = not headers.get("content-encoding") and any(t in kind for t in ("json", "text", "event-stream"))
        return httpx2.Response(response.status_code, headers=response.headers,
                               stream=_TappedStream(response.stream, taps, rid, text), extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, taps: tuple[LinkTap, ...], rid: int, text: bool) -> None:
        self._inner = inner
        self._taps = taps
        self._rid = rid
        self._text = text

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            try:
                part: dict[str, Any] = {"chunk": chunk.decode("utf-8") if self._text else None, "binary": False}
            except UnicodeDecodeError:
                part = {"chunk": None}
            if part["chunk"] is None:
                part = {"chunk": base64.b64encode(chunk).decode("ascii"), "binary": True}
            tap_message(self._taps, HTTP_LINK, 0, "received", json.dumps({"id": self._rid, **part}))
            yield chunk
        tap_message(self._taps, HTTP_LINK, 0, "received", json.dumps({"id": self._rid, "end": True}))

    async def aclose(self) -> None:
        await self._inner.aclose()
