"""End-of-turn detection: how likely the user is done, and how long to wait after they stop before answering.

A ``TurnDetector`` scores the transcript so far, or the user's audio (0: surely more to come, 1: surely done).
``Endpointing``
turns the score into a wait, the way LiveKit Agents does: after the user stops speaking, wait
``min_endpointing_delay`` when the detector thinks the turn is over (or when there is no detector), and up
to ``max_endpointing_delay`` when it thinks the user is unlikely to be done. Speech resuming during the
wait cancels it. ``TextTurnDetector`` is a dependency-free detector from the words alone.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._audio import AudioFrame
from ._chat import ChatContext, ChatMessage

__all__ = [
    "EndOfTurnReason",
    "EndpointDecision",
    "Endpointing",
    "TextTurnDetector",
    "TurnDetector",
]

EndOfTurnReason: TypeAlias = Literal["silence", "turn_detector", "max_delay"]
"""Why a turn was judged over: a plain silence (no detector), the detector said so, or the longest wait ran out."""


class TurnDetector(ABC):
    """Scores how likely the user has finished their turn, from the conversation and the transcript so far, or
    from the sound of the user's turn (``audio_window`` > 0)."""

    unlikely_threshold: float = 0.3
    """Below this probability the user is judged unlikely to be done (``Endpointing`` then waits longer)."""

    audio_window: float = 0.0
    """Seconds of the user's audio the detector hears; 0: none (it reads the words). When it is more, a cascade
    keeps the audio of the user's turn (from just before they started, at most this long, up to where they
    stopped) and passes it as ``audio``. A detector that hears nothing may leave ``audio`` out of its signature:
    it is only passed to one that asks for it."""

    audio_silence: float | None = None
    """With an ``audio_window``: the most silence after the speech the detector hears (the audio passed ends
    this long after the VAD's end of speech), so that it hears the same whatever silence the VAD waits for
    before it reports a stop; ``None``: all of that silence."""

    @abstractmethod
    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str, *,
                                      audio: AudioFrame | None = None) -> float:
        """The probability (0..1) that the user, having said ``transcript`` after ``chat_ctx``, is done;
        ``audio``: the end of the user's turn, for a detector with an ``audio_window``."""

    async def aclose(self) -> None:
        """Release resources (optional)."""


@dataclass(frozen=True, slots=True)
class EndpointDecision:
    """How long after the user stopped speaking the turn is judged over, and why."""

    delay: float
    reason: EndOfTurnReason
    probability: float | None = None

    def remaining(self, since_stop: float) -> float:
        """What is left of the wait when ``since_stop`` seconds have already passed since the user stopped."""
        return max(0.0, self.delay - since_stop)


@dataclass(frozen=True, slots=True)
class Endpointing:
    """LiveKit's endpointing delays: ``min_endpointing_delay`` when the turn looks over (or nothing is known
    but the silence), ``max_endpointing_delay`` when the detector says the user is unlikely to be done."""

    min_endpointing_delay: float = 0.5
    max_endpointing_delay: float = 6.0
    #: scale the wait between the two by the detector's certainty (VideoSDK's ``EOUConfig(mode="ADAPTIVE")``)
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_endpointing_delay <= self.max_endpointing_delay:
            raise ValueError(
                "need 0 <= min_endpointing_delay <= max_endpointing_delay, got "
                f"{self.min_endpointing_delay!r} and {self.max_endpointing_delay!r}"
            )

    def decide(self, probability: float | None, unlikely_threshold: float = TurnDetector.unlikely_threshold,
               ) -> EndpointDecision:
        """The wait after the user stops: ``probability`` is the detector's score, ``None`` without a detector.

        ``reason`` is what ends the turn if the user stays silent for the whole wait: ``"silence"`` (no
        detector), ``"turn_detector"`` (it judged the turn over) or ``"max_delay"`` (it judged the user not
        done, and the longest wait ran out).
        """
        if probability is None:
            return EndpointDecision(self.min_endpointing_delay, "silence")
        if self.adaptive:
            span = self.max_endpointing_delay - self.min_endpointing_delay
            delay = self.max_endpointing_delay - span * min(1.0, max(0.0, probability))
            return EndpointDecision(delay, "max_delay" if probability < unlikely_threshold else "turn_detector",
                                    probability)
        if probability < unlikely_threshold:
            return EndpointDecision(self.max_endpointing_delay, "max_delay", probability)
        return EndpointDecision(self.min_endpointing_delay, "turn_detector", probability)


# --------------------------------------------------------------------------- the text detector

_WORD = re.compile(r"[a-z']+|\d+")

# Words after which English speech almost never stops: the sentence is still being built.
_CONTINUING = frozenset(
    """and but or nor because cause cuz although unless whereas whether if than plus
    the a an my your our their his its to of for with from at into onto about by toward towards
    um uh uhm umm uhh er erm hmm mm very really some every each several whose""".split()
)
# Subjects and auxiliaries: unfinished at the end of a statement, finished at the end of a question
# ("Where is she?") or as a short reply ("Yes, we are.").
_PRONOUNS = frozenset("i we they he she you it there that".split())
_AUXILIARIES = frozenset(
    """is are was were am be been being will would could should can can't won't shall must may might
    i'm we're they're he's she's it's there's that's i'd we'd i'll we'll you'll i've we've do does did
    have has had""".split()
)
# Weaker hints: often but not always mid-sentence.
_LEANING = frozenset(
    """like so then that this these those in on as when where what how who why just also actually
    want need wanna gonna gotta trying going think mean guess wonder know feel hope means
    do does did have has had get got let""".split()
)
# Word pairs ending in a _CONTINUING/_LEANING word that still finish a sentence ("I think so", "go on").
_COMPLETE_ENDINGS = frozenset(
    e.strip()
    for e in """think so|hope so|guess so|believe so|suppose so|said so|do so|or so|and so|not so|more so|let me|
    like that|like this|that's that|and that|is that|was that|about that|for that|do that|do this|that's it|
    this is|it is|i am|i do|i did|i have|i can|i will|i was|you do|we do|they do|we can|you can|we are|they are|
    you are|it was|i would|i could|i should|i might|which one|so what|or what|you what|what about|how about|
    then what|carry on|go on|come on|hold on|log in|come in|turn on|turn off|check in|sign in|log on|
    right now|for now|go ahead|by the way|me too|you too|just that|in that|see you then|since when|how come|
    of course|so far|as well|at all|and all|like it|as usual|or not|or something|and stuff|and everything""".split("|")
)
# Hedges that close a sentence ("It's on Tuesday, I think.") but more often open one ("I think we should").
_HEDGES = frozenset("i think|i guess|i know|you know|i mean|i suppose|i believe|i feel|i hope|i wonder".split("|"))
# Opening words of a subordinate clause: without a main clause (no comma) the sentence is unfinished.
_SUBORDINATE = frozenset("if when because although though unless while since whenever once before after".split())
# Short answers that are whole turns by themselves.
_SHORT_ANSWERS = frozenset(
    e.strip()
    for e in """yes|yeah|yep|yup|no|nope|nah|ok|okay|sure|right|correct|exactly|fine|great|good|thanks|thank you|
    hello|hi|hey|bye|goodbye|stop|wait|please|perfect|cool|nice|absolutely|definitely|maybe|sorry|what|why|
    pardon|done|both|neither|none|no thanks|yes please|not really|of course|sounds good|thanks a lot|
    never mind|all right|alright|got it|that's all|no problem""".split("|")
)
_QUESTION_OPENERS = frozenset(
    """what what's where where's when when's why who who's whom whose which how how's can could would will
    should shall do does did is are was were am have has may might""".split()
)


@dataclass
class TextTurnDetector(TurnDetector):
    """End of turn from the words alone: no model, no dependencies, microseconds per call.

    What it looks at, on the transcript as a streaming STT writes it (often punctuated):

    - how the text ends: ``.``, ``!`` or ``?`` lean towards done; a comma, a dash or an ellipsis towards more;
    - the last word: a conjunction, article, preposition, subject pronoun, auxiliary or filler ("and",
      "the", "to", "I", "is", "um") means the sentence is still being built, whatever punctuation the STT
      added; weaker hints ("want", "like", "then") lower the score less; common finished endings ("I
      think so", "go on") are recognised;
    - a subordinate clause with no main clause ("If it rains tomorrow") and a question word left hanging
      ("Can you tell me what") are unfinished;
    - very short fragments are unfinished unless they are short answers ("yes", "okay") or the agent has
      just asked a question (then "Paris." is an answer).
    """

    unlikely_threshold: float = 0.3

    async def end_of_turn_probability(self, chat_ctx: ChatContext, transcript: str, *,
                                      audio: AudioFrame | None = None) -> float:
        return self.score(transcript, agent_asked=_agent_asked_question(chat_ctx))

    def score(self, transcript: str, *, agent_asked: bool = False) -> float:
        """The probability for ``transcript``; ``agent_asked``: the agent's last message was a question."""
        text = transcript.strip()
        words = _WORD.findall(text.lower())
        if not words:
            return 0.5
        tail = text.rstrip("\"')] ")
        last = words[-1]
        pair = " ".join(words[-2:])
        question = tail.endswith("?")
        terminal = tail.endswith((".", "!", "?")) and not tail.endswith(("..", "\u2026"))
        if tail.endswith((",", ";", ":", "-", "\u2014", "\u2013", "..", "\u2026")):
            return 0.05
        if words[0] in _SUBORDINATE and "," not in text and not question and last not in _SHORT_ANSWERS:
            if not (agent_asked and words[0] == "because"):  # "Because I said so." answers a "why?"
                return 0.1
        if pair in _HEDGES:
            return 0.85 if terminal and len(words) > 2 else 0.1
        if pair in _COMPLETE_ENDINGS or (len(words) <= 3 and " ".join(words) in _SHORT_ANSWERS):
            return 0.9 if terminal or len(words) <= 3 else 0.6
        if last in _CONTINUING:
            return 0.15 if question else 0.05
        if len(words) >= 2 and words[-2] in _AUXILIARIES and last in _PRONOUNS and not question:
            return 0.1  # a question that has not got to its verb: "What do you", "Can I"
        if last in _PRONOUNS - {"you", "it", "that", "there"} or last in _AUXILIARIES:
            if question:
                return 0.9
            if terminal and len(words) >= 2 and words[-2] in _PRONOUNS and last in _AUXILIARIES:
                return 0.8  # "Yes, we are."
            return 0.05
        if last in ("what", "where", "when", "why", "how", "who", "which", "whom") and not question:
            return 0.1
        if last in _LEANING:
            # a weak hint: the STT's full stop ("I don't know.") outweighs it, a bare ending does not
            return 0.5 if question else (0.4 if terminal else 0.2)
        if len(words) <= 2 and not question:
            # a fragment: an answer if the agent just asked something, otherwise probably a start
            return 0.8 if agent_asked else (0.35 if terminal else 0.2)
        if question:
            return 0.95
        if terminal:
            return 0.9
        if words[0] in _QUESTION_OPENERS:
            return 0.7  # a question the STT left unpunctuated
        return 0.6


def _agent_asked_question(chat_ctx: ChatContext) -> bool:
    for item in reversed(chat_ctx.items):
        if isinstance(item, ChatMessage) and item.role == "assistant" and item.text.strip():
            return item.text.strip().endswith("?")
        if isinstance(item, ChatMessage) and item.role == "user":
            return False
    return False
