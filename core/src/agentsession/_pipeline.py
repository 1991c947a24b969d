"""``Pipeline``: VideoSDK 1.0's unified pipeline. The components a user picks, the hooks on them, and the
engine they make: a realtime model (speech to speech), a realtime model speaking through a TTS (hybrid), or
a cascade of VAD, STT, LLM and TTS. ``RealTimePipeline`` and ``CascadingPipeline`` are the 0.0.x names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ._cascade import Cascade, ConversationFlow, TurnPredicate, _PredicateDetector
from ._context_window import ContextWindow
from ._hybrid import HybridEngine
from ._models import LLM, STT, TTS, VAD, PipelineEngine, RealtimeModel
from ._pipeline_hooks import PipelineHooks
from ._turn_detection import Endpointing, TurnDetector

logger = logging.getLogger("agentsession.pipeline")

#: VideoSDK ``Pipeline`` arguments agentsession accepts but has no feature for (logged once when given)
UNSUPPORTED = ("avatar", "denoise", "conversational_graph", "voice_mail_detector")
_warned: set[str] = set()


@dataclass
class EOUConfig:
    """When the user's turn is over (VideoSDK's ``EOUConfig``).

    ``min_max_speech_wait_timeout``: the wait after the user stops speaking, ``[min, max]`` seconds: ``min``
    when the turn detector judges the turn over (or there is none), ``max`` when it judges the user not done.
    ``eou_certainty_threshold``: the turn detector's probability below which the user is judged not done.
    ``mode``: ``"DEFAULT"`` uses those waits as given; ``"ADAPTIVE"`` scales the wait between them by how sure
    the detector is.
    """

    mode: Literal["ADAPTIVE", "DEFAULT"] = "DEFAULT"
    min_max_speech_wait_timeout: list[float] | tuple[float, float] = field(default_factory=lambda: [0.5, 0.8])
    eou_certainty_threshold: float = 0.75
    backchannel_classification: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("ADAPTIVE", "DEFAULT"):
            raise ValueError(f"EOUConfig.mode must be 'ADAPTIVE' or 'DEFAULT', got {self.mode!r}")
        waits = self.min_max_speech_wait_timeout
        if not (isinstance(waits, list | tuple) and len(waits) == 2
                and all(isinstance(w, int | float) and not isinstance(w, bool) for w in waits)):
            raise ValueError("min_max_speech_wait_timeout must be two numbers [min, max] in seconds")
        if min(waits) < 0 or waits[0] > waits[1]:
            raise ValueError(f"min_max_speech_wait_timeout needs 0 <= min <= max, got {list(waits)}")
        if not 0.0 <= self.eou_certainty_threshold <= 1.0:
            raise ValueError("eou_certainty_threshold must be between 0 and 1")

    def endpointing(self) -> Endpointing:
        return Endpointing(min_endpointing_delay=float(self.min_max_speech_wait_timeout[0]),
                           max_endpointing_delay=float(self.min_max_speech_wait_timeout[1]),
                           adaptive=self.mode == "ADAPTIVE")


@dataclass
class InterruptConfig:
    """When the user's speech interrupts the agent (VideoSDK's ``InterruptConfig``).

    The user must speak ``interrupt_min_duration`` seconds (``"VAD_ONLY"``, ``"HYBRID"``), or say
    ``interrupt_min_words`` words (``"STT_ONLY"``, ``"HYBRID"``: whichever comes first) before the agent stops.
    With ``resume_on_false_interrupt`` the agent's audio pauses as soon as the user starts speaking and resumes
    where it was if the user stops before it counts as an interruption (within
    ``false_interrupt_pause_duration``); without it the agent speaks on meanwhile.
    """

    mode: Literal["VAD_ONLY", "STT_ONLY", "HYBRID"] = "HYBRID"
    interrupt_min_duration: float = 0.5
    interrupt_min_words: int = 2
    interrupt_min_confidence: float = 0.0
    false_interrupt_pause_duration: float = 2.0
    resume_on_false_interrupt: bool = False
    interrupt_fade_duration: float = 0.4

    def __post_init__(self) -> None:
        if self.mode not in ("VAD_ONLY", "STT_ONLY", "HYBRID"):
            raise ValueError(f"InterruptConfig.mode must be 'VAD_ONLY', 'STT_ONLY' or 'HYBRID', got {self.mode!r}")
        if self.interrupt_min_duration <= 0:
            raise ValueError("interrupt_min_duration must be greater than 0")
        if self.interrupt_min_words <= 0:
            raise ValueError("interrupt_min_words must be greater than 0")
        if not 0.0 <= self.interrupt_min_confidence <= 1.0:
            raise ValueError("interrupt_min_confidence must be between 0.0 and 1.0")
        if self.false_interrupt_pause_duration <= 0:
            raise ValueError("false_interrupt_pause_duration must be greater than 0")
        if self.interrupt_fade_duration < 0:
            raise ValueError("interrupt_fade_duration must be >= 0")


class Pipeline:
    """The components of a conversation and the hooks on them (VideoSDK 1.0's ``Pipeline``).

    - ``Pipeline(llm=OpenAIRealtime())``: speech to speech, the realtime model hears and speaks;
    - ``Pipeline(llm=GeminiRealtime(...), tts=SomeTTS())``: the realtime model hears and answers in text, the
      TTS speaks (hybrid; the model must support text output);
    - ``Pipeline(stt=..., llm=..., tts=..., vad=..., turn_detector=..., eou_config=..., interrupt_config=...)``:
      the cascade.

    ``@pipeline.on("user_turn_start" | "user_turn_end" | "agent_turn_start" | "agent_turn_end" | "llm" | "tts" |
    "stt" | "turn_state")`` registers hooks (see ``agentsession._pipeline_hooks``).
    """

    def __init__(
        self,
        stt: STT | None = None,
        llm: LLM | RealtimeModel | None = None,
        tts: TTS | None = None,
        vad: VAD | None = None,
        turn_detector: TurnDetector | TurnPredicate | None = None,
        eou_config: EOUConfig | None = None,
        interrupt_config: InterruptConfig | None = None,
        *,
        context_window: ContextWindow | None = None,
        endpointing: Endpointing | None = None,
        conversation_flow: ConversationFlow | None = None,
        streaming_stt: bool | None = None,
        **videosdk_only: Any,
    ) -> None:
        """``endpointing`` (ours) and ``eou_config`` (VideoSDK's) both set the wait after the user stops;
        ``conversation_flow`` runs between the cascade's transcript and its LLM; ``context_window`` keeps the
        history within a budget before each of the cascade's LLM turns (``ContextWindow``); ``streaming_stt``: transcribe
        while the user speaks (default: when the STT can). VideoSDK arguments without a feature here (avatar,
        denoise, ...) are accepted and logged once."""
        for name in videosdk_only:
            if name not in UNSUPPORTED and name not in ("realtime_config", "text_chunking", "text_filtering",
                                                        "chunker", "text_filter", "chunking_language"):
                raise TypeError(f"Pipeline() got an unexpected keyword argument {name!r}")
            if videosdk_only[name] is not None and name in UNSUPPORTED and name not in _warned:
                _warned.add(name)
                logger.warning("Pipeline(%s=...) is not supported by agentsession and is ignored", name)
        if llm is None:
            raise ValueError("a Pipeline needs an llm: a realtime model (Pipeline(llm=OpenAIRealtime())) or a chat "
                             "model with stt= and tts= (a cascade)")
        if isinstance(llm, RealtimeModel):
            if stt is not None:
                logger.warning("Pipeline(stt=...) is ignored: the realtime model hears the user itself")
            if tts is not None and not llm.supports_text_output:
                raise ValueError(f"{type(llm).__name__} cannot answer in text, so it cannot speak through a "
                                 "separate TTS: drop tts= (or use a model that supports text output)")
        elif isinstance(llm, LLM):
            missing = [name for name, value in (("stt", stt), ("tts", tts)) if value is None]
            if missing:
                raise ValueError(f"a cascade Pipeline needs {' and '.join(missing)}= besides llm= "
                                 f"({type(llm).__name__} is a chat model; or give a realtime model as llm=)")
        else:
            raise TypeError(f"Pipeline(llm=...) takes a RealtimeModel or an LLM, got {type(llm).__name__}")
        if endpointing is not None and eou_config is not None:
            raise ValueError("give endpointing= or eou_config=, not both")
        self.stt, self.llm, self.tts, self.vad = stt, llm, tts, vad
        if turn_detector is not None and not isinstance(turn_detector, TurnDetector):
            if not callable(turn_detector):
                raise TypeError(f"turn_detector must be a TurnDetector, got {type(turn_detector).__name__}")
            turn_detector = _PredicateDetector(turn_detector)
        if turn_detector is not None and eou_config is not None:
            turn_detector.unlikely_threshold = eou_config.eou_certainty_threshold
        self.turn_detector: TurnDetector | None = turn_detector
        self.eou_config = eou_config
        self.interrupt_config = interrupt_config
        self.endpointing = endpointing if endpointing is not None else (eou_config or EOUConfig()).endpointing()
        self.conversation_flow = conversation_flow
        if context_window is not None and not isinstance(context_window, ContextWindow):
            raise TypeError(f"context_window must be a ContextWindow, got {type(context_window).__name__}")
        if context_window is not None and isinstance(llm, RealtimeModel):
            logger.warning("Pipeline(context_window=...) is ignored: the realtime model keeps its own context")
        self.context_window = context_window
        self.streaming_stt = streaming_stt
        self.hooks = PipelineHooks()
        self._engine: PipelineEngine | None = None

    @property
    def model(self) -> RealtimeModel | None:
        """The realtime model, if this is a speech-to-speech (or hybrid) pipeline."""
        return self.llm if isinstance(self.llm, RealtimeModel) else None

    @property
    def is_realtime(self) -> bool:
        return isinstance(self.llm, RealtimeModel)

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        """Register a pipeline hook (usable as a decorator): ``"user_turn_start"``, ``"llm"``, ``"tts"``, ..."""
        return self.hooks.on(event, callback)

    @property
    def engine(self) -> PipelineEngine:
        """What the session drives: made once, on first use."""
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> PipelineEngine:
        llm = self.llm
        if isinstance(llm, RealtimeModel):
            if self.tts is None:
                return llm
            return HybridEngine(llm, self.tts, self.hooks)
        assert isinstance(llm, LLM) and self.stt is not None and self.tts is not None
        return Cascade(stt=self.stt, llm=llm, tts=self.tts, vad=self.vad, turn_detector=self.turn_detector,
                       endpointing=self.endpointing, streaming_stt=self.streaming_stt, hooks=self.hooks,
                       conversation_flow=self.conversation_flow, context_window=self.context_window)

    def __repr__(self) -> str:
        parts = [f"{name}={type(value).__name__}" for name, value in
                 (("stt", self.stt), ("llm", self.llm), ("tts", self.tts), ("vad", self.vad)) if value is not None]
        return f"<{type(self).__name__} {' '.join(parts)}>"


class RealTimePipeline(Pipeline):
    """The 0.0.x name: a speech-to-speech model behind the session (``Pipeline(llm=model)``)."""

    def __init__(self, model: RealtimeModel) -> None:
        if not isinstance(model, RealtimeModel):
            raise TypeError(f"RealTimePipeline needs a RealtimeModel, got {type(model).__name__}")
        super().__init__(llm=model)


class CascadingPipeline(Pipeline):
    """The 0.0.x name of a cascade: ``Pipeline(stt=, llm=, tts=, vad=, turn_detector=)``.

    ``turn_hold`` is the older name of ``max_endpointing_delay``.
    """

    def __init__(
        self,
        *,
        stt: STT,
        llm: LLM,
        tts: TTS,
        vad: VAD | None = None,
        turn_detector: TurnDetector | TurnPredicate | None = None,
        endpointing: Endpointing | None = None,
        turn_hold: float | None = None,
        streaming_stt: bool | None = None,
        eou_config: EOUConfig | None = None,
        interrupt_config: InterruptConfig | None = None,
    ) -> None:
        if turn_hold is not None:
            if endpointing is not None:
                raise ValueError("give endpointing= or turn_hold=, not both")
            endpointing = Endpointing(max_endpointing_delay=turn_hold)
        elif endpointing is None and eou_config is None:
            endpointing = Endpointing()  # the 0.0.x cascade's waits (0.5 s, up to 6 s when not done)
        super().__init__(stt=stt, llm=llm, tts=tts, vad=vad, turn_detector=turn_detector, endpointing=endpointing,
                         streaming_stt=streaming_stt, eou_config=eou_config, interrupt_config=interrupt_config)
