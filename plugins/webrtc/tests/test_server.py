"""The playground server: offers, bad offers, tokens, body limits, and a whole session over HTTP + WebRTC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from agentsession import (
    Agent,
    AgentSession,
    EnergyVAD,
    JobContext,
    RealTimePipeline,
    Transport,
    function_tool,
)
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, tone
from agentsession_webrtc import PlaygroundMode, PlaygroundServer, WebRTCTransport
from agentsession_webrtc.testing import FakeBrowser

TIMEOUT = 10.0


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., Awaitable[tuple[PlaygroundServer, list[WebRTCTransport]]]]]:
    """Start a server on a free port; collects the transports it makes; closes everything after."""
    servers: list[PlaygroundServer] = []
    made: list[WebRTCTransport] = []

    async def start(**kwargs: Any) -> tuple[PlaygroundServer, list[WebRTCTransport]]:
        server = PlaygroundServer(made.append, port=0, **kwargs)
        await server.start()
        servers.append(server)
        return server, made

    yield start
    for server in servers:
        await server.close()
    for transport in made:
        await transport.close()


async def post(url: str, body: Any = None, *, data: bytes | None = None, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with http.post(url, headers=headers, **kwargs) as response:
            try:
                payload: Any = await response.json(content_type=None)
            except ValueError:
                payload = None
            return response.status, payload


async def test_serves_the_page_and_its_assets(served: Any) -> None:
    server, _ = await served()
    async with aiohttp.ClientSession() as http:
        for path, needle in (("", "agentsession playground"), ("app.js", "createDataChannel"), ("style.css", "badge")):
            async with http.get(server.url + path) as response:
                assert response.status == 200
                assert needle in await response.text()
                assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_good_offer_gets_an_answer_and_a_transport(served: Any) -> None:
    server, made = await served()
    browser = FakeBrowser()
    try:
        await browser.offer()
        status, answer = await post(server.url + "offer", browser.offer_json())
        assert status == 200, answer
        assert answer["type"] == "answer" and "m=audio" in answer["sdp"]
        assert [t.id for t in made] == [answer["id"]]
        await browser.answer(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(made[0].wait_connected(), TIMEOUT)
    finally:
        await browser.close()


@pytest.mark.parametrize(
    ("body", "raw", "expected"),
    [
        (None, b"not json", "must be JSON"),
        ([1, 2], None, "JSON object"),
        ({"type": "offer"}, None, "string \"sdp\""),
        ({"type": "answer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}, None, "expected \"type\": \"offer\""),
        ({"type": "offer", "sdp": "v=0\r\n"}, None, "no audio section"),
        ({"type": "offer", "sdp": "m=audio garbage\r\n"}, None, "could not be parsed"),
        ({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                                  "c=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"}, None, "offer"),
    ],
)
async def test_a_bad_offer_is_a_400_with_a_clear_message(served: Any, body: Any, raw: bytes | None, expected: str) -> None:
    server, made = await served()
    status, payload = await post(server.url + "offer", body, data=raw, **({"Content-Type": "application/json"}))
    assert status == 400
    assert expected in payload["error"]
    assert made == []
    assert server.transports == {}
    async with aiohttp.ClientSession() as http, http.get(server.url) as response:
        assert response.status == 200  # still serving


async def test_request_bodies_are_bounded(served: Any) -> None:
    server, made = await served(max_body=4096)
    status, _ = await post(server.url + "offer", {"type": "offer", "sdp": "m=audio " + "x" * 10_000})
    assert status == 413
    assert made == []


async def test_connections_are_bounded(served: Any) -> None:
    server, made = await served(max_connections=1)
    browsers = [FakeBrowser(), FakeBrowser()]
    try:
        for b in browsers:
            await b.offer()
        assert (await post(server.url + "offer", browsers[0].offer_json()))[0] == 200
        status, payload = await post(server.url + "offer", browsers[1].offer_json())
        assert status == 503 and "too many" in payload["error"]
    finally:
        for b in browsers:
            await b.close()


def test_a_non_loopback_address_needs_a_token() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        PlaygroundServer(lambda t: None, host="0.0.0.0")
    PlaygroundServer(lambda t: None, host="0.0.0.0", token="s3cret-t0ken-0123")
    PlaygroundServer(lambda t: None, host="::1")


async def test_the_token_is_checked_on_every_request(served: Any) -> None:
    token = "correct-horse-battery-staple"
    server, made = await served(token=token)
    assert token not in repr(server)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: IP hosts
        for path in ("", "app.js", "style.css"):
            async with http.get(server.url + path) as response:
                assert response.status == 401
        async with http.get(server.url + "?token=wrong") as response:
            assert response.status == 401
        async with http.get(server.url_with_token()) as response:  # sets the cookie the page then uses
            assert response.status == 200
        async with http.get(server.url + "app.js") as response:
            assert response.status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, payload = await post(server.url + "offer", {"type": "offer", "sdp": "v=0"}, **headers)
        assert status == 401 and "token" in payload["error"] and token not in str(payload)
    status, _ = await post(server.url + "offer", {"type": "offer", "sdp": "v=0"}, Authorization=f"Bearer {token}")
    assert status == 400  # past the token check, and then a bad offer
    status, _ = await post(server.url + "sessions/nope/close", {}, Authorization=f"Bearer {token}")
    assert status == 404
    assert made == []


async def test_cross_origin_posts_are_refused(served: Any) -> None:
    server, _ = await served()
    status, payload = await post(server.url + "offer", {"type": "offer", "sdp": "v=0"}, Origin="http://evil.example")
    assert status == 403


async def test_without_a_token_only_localhost_host_headers_are_answered(served: Any) -> None:
    server, _ = await served()
    async with aiohttp.ClientSession() as http:
        for host, status in (("attacker.example:8760", 403), ("localhost:8760", 200), ("127.0.0.1", 200),
                             ("[::1]:8760", 200)):
            async with http.get(server.url, headers={"Host": host}) as response:
                assert response.status == status, host


async def test_the_close_beacon_ends_the_transport(served: Any) -> None:
    server, made = await served()
    browser = FakeBrowser()
    try:
        await browser.offer()
        _, answer = await post(server.url + "offer", browser.offer_json())
        await browser.answer(RTCSessionDescription(answer["sdp"], "answer"))
        status, _ = await post(server.url + f"sessions/{answer['id']}/close", {})
        assert status == 204
        assert await asyncio.wait_for(made[0].wait_ended(), TIMEOUT) == "the page was closed"
    finally:
        await browser.close()


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Answer about the weather.")

    @function_tool
    async def get_weather(self, city: str) -> dict[str, Any]:
        """The weather in a city.

        Args:
            city: the city
        """
        return {"city": city, "sky": "sunny"}


async def test_a_whole_session_over_the_playground(capsys: pytest.CaptureFixture[str]) -> None:
    """Mode -> server -> offer -> job with an AgentSession -> audio both ways, events, text, interrupt, disconnect."""
    model = FakeRealtimeModel(
        [FakeResponse(text="Let me check.", audio=0.3, tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
                      then=FakeResponse(text="Sunny in Paris.", audio=0.5)),
         FakeResponse(text="A long answer.", audio=6.0, delay=0.05)],
        vad=EnergyVAD(min_silence=0.3), speed=1.5,
    )
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(WeatherAgent(), RealTimePipeline(model))
        await ctx.connect()
        await session.start()
        ended.set_result(await ctx.wait_for_shutdown())
        await session.close()
        await ctx.shutdown()

    async def run_job(transport: Transport | None) -> None:
        await entrypoint(JobContext(transport=transport))

    mode = PlaygroundMode(port=0)
    runner = asyncio.ensure_future(mode.run(run_job))
    browser = FakeBrowser()
    try:
        await asyncio.wait_for(mode.ready.wait(), TIMEOUT)
        assert mode.server is not None and "playground: open http://127.0.0.1:" in capsys.readouterr().out
        await browser.offer()
        status, answer = await post(mode.server.url + "offer", browser.offer_json())
        assert status == 200, answer
        await browser.answer(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(browser.opened.wait(), TIMEOUT)

        browser.mic.speak(tone(0.5, 48000))  # the user speaks; EnergyVAD ends the turn
        await browser.wait_message(lambda m: m["type"] == "user_state_changed" and m["state"] == "speaking")
        tool = await browser.wait_message(lambda m: m["type"] == "function_tool_called")
        assert tool["name"] == "get_weather" and "sunny" in tool["result"]
        await browser.wait_message(lambda m: m["type"] == "agent_transcript" and m["final"]
                                   and m["text"] == "Sunny in Paris.")
        metrics = await browser.wait_message(lambda m: m["type"] == "metrics_collected")
        assert metrics["trigger"] == "user" and metrics["e2e"] is not None
        await browser.wait_message(lambda m: m["type"] == "agent_state_changed" and m["state"] == "idle"
                                   and m["previous"] == "speaking")
        assert model.received_audio >= 0.5
        assert browser.received_rms() > 300, "the agent's audio did not reach the browser"

        browser.send({"type": "text", "text": "Tell me more"})  # typed text is a user turn
        await browser.wait_message(lambda m: m["type"] == "user_transcript" and m.get("typed"))
        await browser.wait_message(lambda m: m["type"] == "agent_state_changed" and m["state"] == "speaking")
        browser.send({"type": "interrupt"})
        interrupted = await browser.wait_message(lambda m: m["type"] == "metrics_collected" and m["interrupted"])
        assert interrupted["trigger"] == "text"
        assert model.texts == ["Tell me more"] and model.interrupts

        browser.send({"type": "disconnect"})
        assert await asyncio.wait_for(ended, TIMEOUT) == "disconnected from the page"
        await asyncio.wait_for(browser.wait_message(lambda m: m["type"] == "closed"), TIMEOUT)
    finally:
        await browser.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert mode.server.transports == {}


async def test_a_page_gone_without_a_goodbye_leaves_no_unretrieved_task_error() -> None:
    """The browser's peer goes away without "disconnect" (a tab killed, a crash): the session's last events
    (closing, closed) must not be sent into the dead data channel, where aiortc's flush task raised
    ConnectionError that nobody retrieved ("Task exception was never retrieved")."""
    import gc

    loop = asyncio.get_running_loop()
    unretrieved: list[str] = []
    loop.set_exception_handler(lambda _, context: unretrieved.append(str(context.get("exception") or context)))
    ended: asyncio.Future[str] = loop.create_future()

    async def run_job(transport: Transport | None) -> None:
        ctx = JobContext(transport=transport)
        session = AgentSession(WeatherAgent(), RealTimePipeline(FakeRealtimeModel()))
        await ctx.connect()
        await session.start()
        ended.set_result(await ctx.wait_for_shutdown())
        await session.close()
        await ctx.shutdown()

    mode = PlaygroundMode(port=0, announce=lambda line: None)
    runner = asyncio.ensure_future(mode.run(run_job))
    browser = FakeBrowser()
    try:
        await asyncio.wait_for(mode.ready.wait(), TIMEOUT)
        assert mode.server is not None
        await browser.offer()
        status, answer = await post(mode.server.url + "offer", browser.offer_json())
        assert status == 200, answer
        await browser.answer(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(browser.opened.wait(), TIMEOUT)
        await browser.wait_message(lambda m: m["type"] == "agent_state_changed" and m["state"] == "idle")
        # the tab is killed: no "disconnect", no SCTP goodbye; ICE consent then fails and the DTLS transport
        # closes under a data channel that still says "open" (what aiortc sees ~30 s after a crash, at once here)
        [transport] = mode.server.transports.values()
        dtls = transport.pc.sctp.transport
        dead: asyncio.Future[None] = loop.create_future()
        dtls.on("statechange", lambda: dtls.state == "closed" and not dead.done() and dead.set_result(None))
        await dtls.stop()
        await asyncio.wait_for(dead, TIMEOUT)
        assert transport._channel is not None and transport._channel.readyState == "open"
        transport.send({"type": "error", "message": "a last word", "recoverable": True})  # into nothing
        # the job ends (the connection closed), and the session's last events go nowhere either
        assert await asyncio.wait_for(ended, TIMEOUT) in ("connection closed", "the browser stopped sending audio")
    finally:
        await browser.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    for _ in range(3):  # let the transports' last tasks finish, then collect them: asyncio reports there
        await asyncio.sleep(0)
    gc.collect()
    assert unretrieved == []
