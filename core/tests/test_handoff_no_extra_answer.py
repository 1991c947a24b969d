"""A handoff as VideoSDK does it: the tool's result is recorded, the new agent's ``on_enter`` speaks, and no
model answer follows (before, the new agent spoke twice in a cascade)."""

from __future__ import annotations

from agentsession import Agent, function_tool
from agentsession.testing import FakeRealtimeModel, FakeResponse, FakeToolCall, virtual_clock
from core_helpers import settle, started


class Billing(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are billing.")

    async def on_enter(self) -> None:
        await self.session.say("Billing here.")


class Intake(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are intake.")

    @function_tool
    async def transfer(self) -> Agent:
        """Hand the caller to billing."""
        return Billing()


@virtual_clock
async def test_a_handoff_records_the_result_and_only_the_new_agent_speaks() -> None:
    model = FakeRealtimeModel([FakeResponse(audio=0.2, tool_calls=[FakeToolCall("transfer")],
                                            then=FakeResponse("an extra answer", audio=1.0))])
    session, transport, rec = await started(Intake(), model)
    model.user_starts_speaking()
    await settle(0.3)
    model.user_stops_speaking("transfer me")
    await settle(3.0)
    assert isinstance(session.agent, Billing)
    assert [[r.name for r in results] for results in model.tool_results] == [["transfer"]]
    said = [t["text"] for t in rec.of("agent_transcript") if t["final"]]
    assert said == ["Billing here."]  # not followed by "an extra answer"
    assert model.agents[-1][0] == "You are billing."
    await session.close()
