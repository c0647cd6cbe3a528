"""The assistant's streaming loop: one audio stream in, events out.

Every chunk goes to the wake-word engine and to the endpointer (which keeps a look-back buffer while
idle), so both keep one clock: stream seconds since the first sample. A wake word arms the endpointer
at the detection time; when the utterance ends it is transcribed, parsed into an intent and answered
by the agent the router picks. Vehicle state is not touched here: agents read their own snapshots.

Not thread-safe: one Assistant per audio stream. By default ASR runs inline in :meth:`Assistant.feed`, so
the call that completes an utterance takes the recogniser's time (files, benchmarks: deterministic). On the
device the audio must never wait for ASR: with ``defer_answers=True`` a finished utterance comes out as a
:class:`CommandHeard` event and the caller hands it to a :class:`Responder` on a worker thread. The reply
latency is measured from the end-of-utterance decision to the reply and reported with every :class:`Replied`.

Spoken replies (the caller plays them; see :mod:`edge_assistant.app.speech_out`): between
:meth:`Assistant.speaking_started` and :meth:`Assistant.speaking_ended` plus ``speech_tail_s`` the cabin's
speakers feed the assistant's own voice into the microphone. Wake detections then need
``barge_in_threshold`` (a :class:`WakeHeard` with ``barge_in=True``: the caller stops playback); lesser ones
are dropped and counted in :attr:`Assistant.suppressed_wakes`. Why a threshold and not a gate: gating the
audio would make barge-in impossible, and comparing with the played reference (echo cancellation) needs that
reference aligned in time with the capture, which two independent ALSA streams do not give without a shared
clock and a delay estimate (not built yet). A reply seldom says the wake word, so its echo raises at most
middling scores; a driver who says the wake word over it, close to the microphone, scores high.
:meth:`Assistant.follow_up` then opens a window in which a command needs no wake word.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge_assistant.agents.base import AgentAnswer
from edge_assistant.core.errors import ConfigError
from edge_assistant.intents import Intent, parse

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000


class Router(Protocol):
    """Maps an intent (with its typed slots) to an answer: :class:`~edge_assistant.agents.router.AgentRouter`."""

    def answer(self, intent: Intent) -> AgentAnswer: ...


class WakeStage(Protocol):
    """Wake-word detection on int16 16 kHz chunks: :class:`~edge_assistant.wakeword.engine.WakeWordEngine`.
    Detections carry ``time_s`` (stream time), ``model`` and ``score``."""

    def process(self, pcm: np.ndarray) -> list[Any]: ...


class EndpointStage(Protocol):
    """Start and end of a command: :class:`~edge_assistant.vad.endpoint.Endpointer` (``listening=False``).
    Events have ``kind`` "utterance" (with ``audio``, ``start_s``, ``speech_end_s``, ``detected_s``),
    "listen_timeout" or "speech_discarded"."""

    def process(self, pcm: np.ndarray) -> list[Any]: ...

    def listen(self, at_s: float, timeout_s: float) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


class Recognizer(Protocol):
    """Speech to text: :class:`~edge_assistant.asr.recognizer.WhisperRecognizer` (``.text`` on the result)."""

    def transcribe(self, audio: np.ndarray) -> Any: ...



@dataclass(frozen=True)
class AssistantConfig:
    """Pipeline settings (the engines keep their own configs)."""

    listen_timeout_s: float = 6.0
    """After a wake word, give up when no speech starts within this many seconds."""
    listen_offset_s: float = 0.0
    """Start listening this long after (negative: before) the wake detection's stream time."""
    speech_tail_s: float = 0.3
    """After the assistant stops speaking, wake words stay suppressed this long (echo, capture lag)."""
    barge_in_threshold: float | None = 0.9
    """Wake score needed while the assistant speaks (barge-in); None: every wake word then is suppressed."""

    def __post_init__(self) -> None:
        if not self.listen_timeout_s > 0:
            raise ConfigError(f"listen_timeout_s={self.listen_timeout_s!r}: expected seconds > 0")
        if not self.speech_tail_s >= 0:
            raise ConfigError(f"speech_tail_s={self.speech_tail_s!r}: expected seconds >= 0")
        if self.barge_in_threshold is not None and not 0 < self.barge_in_threshold <= 1:
            raise ConfigError(f"barge_in_threshold={self.barge_in_threshold!r}: expected a score in (0, 1] or None")


@dataclass(frozen=True)
class WakeHeard:
    """A wake word was detected; the assistant now listens for a command."""

    time_s: float
    model: str
    score: float
    barge_in: bool = False
    """Said while the assistant spoke: the caller stops the reply."""
    kind: str = field(default="wake", init=False)

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.kind, "time_s": round(self.time_s, 3), "model": self.model,
             "score": round(self.score, 4)}
        return d | {"barge_in": True} if self.barge_in else d


@dataclass(frozen=True)
class ListenTimedOut:
    """No command followed the wake word (or, ``follow_up``, the spoken reply)."""

    time_s: float
    follow_up: bool = False
    kind: str = field(default="listen_timeout", init=False)

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.kind, "time_s": round(self.time_s, 3)}
        return d | {"follow_up": True} if self.follow_up else d


@dataclass(frozen=True)
class FollowUpOpened:
    """After a spoken reply the assistant listens for a command without a wake word until ``timeout_s`` later."""

    time_s: float
    timeout_s: float
    kind: str = field(default="follow_up", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "time_s": round(self.time_s, 3), "timeout_s": round(self.timeout_s, 3)}


@dataclass(frozen=True)
class Replied:
    """A command was heard, understood and answered."""

    speech_start_s: float
    speech_end_s: float
    text: str
    intent: Intent
    answer: AgentAnswer
    asr_ms: float
    reply_latency_ms: float
    """Processing time from the end-of-utterance decision to the answer (ASR + intent + agent)."""
    endpoint_delay_s: float
    """Stream time from the last speech to the end-of-utterance decision (the trailing silence)."""
    kind: str = field(default="reply", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind, "speech_start_s": round(self.speech_start_s, 3),
            "speech_end_s": round(self.speech_end_s, 3), "heard": self.text, "intent": self.intent.name,
            "slots": self.intent.slots, "answer": self.answer.to_dict(), "asr_ms": round(self.asr_ms, 1),
            "reply_latency_ms": round(self.reply_latency_ms, 1),
            "endpoint_delay_s": round(self.endpoint_delay_s, 3),
        }


@dataclass(frozen=True)
class CommandHeard:
    """An utterance after a wake word ended; its answer is still to come (``defer_answers=True`` only)."""

    utterance: Any
    """The endpointer's utterance: ``audio`` (float32, 16 kHz), ``start_s``, ``speech_end_s``, ``detected_s``."""
    kind: str = field(default="command", init=False)

    def to_dict(self) -> dict[str, Any]:
        u = self.utterance
        return {"event": self.kind, "speech_start_s": round(u.start_s, 3), "speech_end_s": round(u.speech_end_s, 3),
                "detected_s": round(u.detected_s, 3)}


PipelineEvent = WakeHeard | ListenTimedOut | FollowUpOpened | CommandHeard | Replied


class Responder:
    """Utterance → ASR → intent → agent: the slow half of the pipeline, safe to run on its own thread
    (one call at a time: the recogniser's sessions are not shared with another caller)."""

    def __init__(self, recognizer: Recognizer, router: Router, parse_text: Any = None) -> None:
        self.recognizer = recognizer
        self.router = router
        self.parse_text = parse_text or parse

    def respond(self, utterance: Any) -> Replied:
        t0 = time.perf_counter()
        transcript = self.recognizer.transcribe(utterance.audio)
        t1 = time.perf_counter()
        text = transcript.text.strip()
        intent = self.parse_text(text)
        answer = self.router.answer(intent)
        t2 = time.perf_counter()
        log.info("heard %r -> %s", text, intent.name)
        return Replied(
            speech_start_s=utterance.start_s, speech_end_s=utterance.speech_end_s, text=text, intent=intent,
            answer=answer, asr_ms=(t1 - t0) * 1e3, reply_latency_ms=(t2 - t0) * 1e3,
            endpoint_delay_s=utterance.detected_s - utterance.speech_end_s,
        )


class Assistant:
    """Wake word → endpoint → ASR → intent → agent, on one stream of 16 kHz mono audio.

    ``wake`` is a :class:`~edge_assistant.wakeword.engine.WakeWordEngine`, ``endpointer`` an
    :class:`~edge_assistant.vad.endpoint.Endpointer` created with ``listening=False``, ``recognizer``
    anything with ``transcribe(float32 audio) -> Transcript``, and ``router`` maps an intent to an answer.
    ``defer_answers``: emit :class:`CommandHeard` instead of answering inline (see the module docstring).
    """

    def __init__(self, wake: WakeStage, endpointer: EndpointStage, recognizer: Recognizer, router: Router,
                 config: AssistantConfig | None = None, *, defer_answers: bool = False) -> None:
        self.wake = wake
        self.endpointer = endpointer
        self.responder = Responder(recognizer, router)
        self.defer_answers = defer_answers
        self.config = config or AssistantConfig()
        self._capturing = False
        self._follow_up = False  # the command being captured needs no wake word (follow-up window)
        self._samples = 0
        self._speaking = False
        self._suppress_until_s = 0.0
        self.suppressed_wakes = 0
        """Wake detections dropped while the assistant spoke (its own voice from the speakers)."""

    @property
    def time_s(self) -> float:
        """Stream time: samples fed so far / 16 kHz."""
        return self._samples / SAMPLE_RATE_HZ

    @property
    def capturing(self) -> bool:
        """True between a wake word and the end (or time-out) of the command that follows."""
        return self._capturing

    @property
    def speaking(self) -> bool:
        """True between :meth:`speaking_started` and :meth:`speaking_ended` (the tail not included)."""
        return self._speaking

    def speaking_started(self) -> None:
        """The assistant's reply is playing: from now on wake words need ``barge_in_threshold``."""
        self._speaking = True

    def speaking_ended(self) -> None:
        """The reply stopped playing; wake words stay suppressed for ``speech_tail_s`` of stream."""
        if self._speaking:
            self._speaking = False
            self._suppress_until_s = self.time_s + self.config.speech_tail_s

    def follow_up(self, at_s: float | None, timeout_s: float) -> list[PipelineEvent]:
        """Listen for a command with no wake word from stream time ``at_s`` (default: now) for ``timeout_s``.

        Returns :class:`FollowUpOpened` and whatever the buffered audio already completed; nothing when a
        command is already being captured. Silence ends with :class:`ListenTimedOut` (``follow_up=True``) and
        the assistant waits for the wake word again; a wake word in the window restarts listening from it.
        """
        if self._capturing or not timeout_s > 0:
            return []
        at = self.time_s if at_s is None else max(0.0, float(at_s))
        self._capturing = True
        self._follow_up = True
        events: list[PipelineEvent] = [FollowUpOpened(at, float(timeout_s))]
        return events + self._handle_endpoint(self.endpointer.listen(at, timeout_s))

    def _suppressing(self, at_s: float) -> bool:
        return self._speaking or at_s < self._suppress_until_s

    def feed(self, pcm: np.ndarray) -> list[PipelineEvent]:
        """Push int16 PCM (any length, 16 kHz mono); return the events it completed, in stream order."""
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16:
            raise ConfigError(f"assistant input dtype {pcm.dtype}: expected int16 PCM at 16 kHz mono")
        events: list[PipelineEvent] = []
        detections = self.wake.process(pcm)
        ep_events = self.endpointer.process(pcm)
        self._samples += int(pcm.size)
        events.extend(self._handle_endpoint(ep_events))
        for det in detections:
            barge_in = False
            if self._suppressing(det.time_s):
                threshold = self.config.barge_in_threshold
                if threshold is None or det.score < threshold:
                    self.suppressed_wakes += 1
                    log.debug("wake word at %.2f s (score %.2f) suppressed: the assistant is speaking",
                              det.time_s, det.score)
                    continue
                barge_in = True
            if self._capturing and not self._follow_up:
                log.debug("wake word at %.2f s ignored: a command is being captured", det.time_s)
                continue
            if barge_in:  # the caller stops the reply; its echo ends with it
                self._speaking = False
                self._suppress_until_s = 0.0
            events.append(WakeHeard(det.time_s, det.model, det.score, barge_in=barge_in))
            self._capturing = True
            self._follow_up = False
            at_s = max(0.0, det.time_s + self.config.listen_offset_s)
            events.extend(self._handle_endpoint(self.endpointer.listen(at_s, self.config.listen_timeout_s)))
        return events

    def flush(self) -> list[PipelineEvent]:
        """End of stream: close a command in progress."""
        return self._handle_endpoint(self.endpointer.flush()) if self._capturing else []

    def _handle_endpoint(self, ep_events: list[Any]) -> list[PipelineEvent]:
        out: list[PipelineEvent] = []
        for ev in ep_events:
            kind = getattr(ev, "kind", "")
            if kind == "listen_timeout":
                self._capturing = False
                out.append(ListenTimedOut(ev.detected_s, follow_up=self._follow_up))
                self._follow_up = False
            elif kind == "utterance":
                self._capturing = False
                self._follow_up = False
                out.append(CommandHeard(ev) if self.defer_answers else self.responder.respond(ev))
            elif kind == "speech_discarded":
                log.debug("speech at %.2f s too short for a command; still listening", ev.start_s)
        return out
