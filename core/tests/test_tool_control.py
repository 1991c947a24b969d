"""say() and interrupt() from inside a running tool (DESIGN 6: safe at any time, from tools too)."""

from __future__ import annotations

import pytest

from agentsession import Agent, ChatMessage, function_tool
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, virtual_clock
from core_helpers import settle, started

HOLD_ON = "One moment, I am looking it up."


class ChattyToolAgent(Agent):
    def __init__(self, action: str) -> None:
        super().__init__(instructions="You are a test agent.")
        self.action = action
        self.finished = False

    @function_tool
    async def lookup(self, city: str) -> dict[str, object]:
        """Look up the weather.

        Args:
            city: the city
        """
        if self.action == "say":
            await self.session.say(HOLD_ON)
        elif self.action == "say and wait":
            await self.session.say(HOLD_ON, wait_for_playback=True)
        else:
            await self.session.interrupt()
        self.finished = True
        return {"city": city, "temp": 21}


def tool_then_answer() -> FakeRealtimeModel:
    return FakeRealtimeModel([
        FakeResponse(audio=0.3, tool_calls=[FakeToolCall("lookup", {"city": "Paris"})],
                     then=FakeResponse(text="21 degrees in Paris.", audio=1.0))
    ])


def said(session: object) -> list[str]:
    return [i.text for i in session.history.items  # type: ignore[attr-defined]
            if isinstance(i, ChatMessage) and i.role == "assistant" and i.text]


@pytest.mark.parametrize("action", ["say", "say and wait"])
@virtual_clock
async def test_say_from_a_tool_is_spoken_and_the_answer_follows(action: str) -> None:
    model = tool_then_answer()
    agent = ChattyToolAgent(action)
    session, transport, rec = await started(agent, model)
    result = await session.run(user_input="Weather in Paris?")
    await settle(3)
    assert agent.finished and model.said == [HOLD_ON]
    assert said(session) == [HOLD_ON, "21 degrees in Paris."]
    assert "21 degrees in Paris." in result.text
    assert rec.agent_states()[-1] == "idle"
    if action == "say and wait":  # the tool waited for its words to be heard before returning
        assert rec.agent_states() == ["idle", "thinking", "speaking", "thinking", "speaking", "idle"]
    assert transport.output.shape[0] / 24000 == pytest.approx(0.3 + 0.06 * len(HOLD_ON) + 1.0, abs=0.05)
    await session.close()


@virtual_clock
async def test_interrupt_from_a_tool_does_not_stop_the_tool() -> None:
    model = tool_then_answer()
    agent = ChattyToolAgent("interrupt")
    session, _, rec = await started(agent, model)
    await session.run(user_input="Weather in Paris?")
    await settle(3)
    assert agent.finished and model.tool_results[0][0].output == '{"city": "Paris", "temp": 21}'
    assert rec.agent_states()[-1] == "idle"
    await session.close()
