"""Parameter descriptions reach a tool's schema from Google, reST and NumPy docstrings (VideoSDK reads all
three through ``docstring-parser``; code written for it keeps its descriptions here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentsession import Agent, function_tool


def props(tool: Any) -> dict[str, Any]:
    properties: dict[str, Any] = tool.parameters["properties"]
    return properties


def test_google_style() -> None:
    @function_tool
    async def book(city: str, nights: int = 1) -> str:
        """Book a hotel.

        Args:
            city: Where to stay,
                a city name.
            nights (int): How many nights.
        """
        return city

    assert book.description == "Book a hotel."
    assert props(book)["city"]["description"] == "Where to stay, a city name."
    assert props(book)["nights"]["description"] == "How many nights."


def test_rest_style() -> None:
    @function_tool
    async def book(city: str, nights: int = 1) -> str:
        """Book a hotel.

        Stays are paid on arrival.

        :param city: Where to stay.
        :param nights: How many
            nights.
        :type nights: int
        :returns: a booking reference
        """
        return city

    assert book.description == "Book a hotel.\n\nStays are paid on arrival."
    assert props(book)["city"] == {"type": "string", "description": "Where to stay."}
    assert props(book)["nights"]["description"] == "How many nights."


def test_numpy_style() -> None:
    @function_tool
    async def book(city: str, nights: int = 1) -> str:
        """Book a hotel.

        Parameters
        ----------
        city : str
            Where to stay.
        nights : int, optional
            How many nights.

        Returns
        -------
        str
            A booking reference.
        """
        return city

    assert book.description == "Book a hotel."
    assert props(book)["city"]["description"] == "Where to stay."
    assert props(book)["nights"]["description"] == "How many nights."
    assert "Parameters" not in book.description


@dataclass
class Room:
    """A room.

    :param beds: beds in the room
    """

    beds: int


def test_method_tool_on_an_agent_and_a_dataclass_argument() -> None:
    class Desk(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Front desk.")

        @function_tool
        async def reserve(self, room: Room, guest: str) -> str:
            """Reserve a room.

            :param room: the room wanted
            :param guest: the guest's name
            """
            return guest

    (tool,) = Desk().tools
    assert props(tool)["guest"]["description"] == "the guest's name"
    assert props(tool)["room"]["description"] == "the room wanted"
    assert props(tool)["room"]["properties"]["beds"]["description"] == "beds in the room"
