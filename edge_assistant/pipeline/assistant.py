"""The assistant's streaming loop: one audio stream in, events out.

Every chunk goes to the wake-word engine and to the endpointer (which keeps a look-back buffer while
idle), so both keep one clock: stream seconds since the first sample. A wake word arms the endpointer
at the detection time; when the utterance ends it is transcribed, parsed into an intent and answered
by the agent the router picks. Vehicle state is not touched here: agents read their own snapshots.

End of turn (``end_of_turn``, :mod:`edge_assistant.pipeline.end_of_turn`): at each pause in a command the
words so far are recognised; a complete intent ends the command there and that recognition is answered, an
unfinished sentence makes the endpointer wait longer. Without it a fixed trailing silence ends every command.

Not thread-safe: one Assistant per audio stream. By default ASR runs inline in :meth:`Assistant.feed`, so
the call that completes an utterance takes the recogniser's time (files, benchmarks: deterministic). On the
device the audio must never wait for ASR: with ``defer_answers=True`` a finished utterance comes out as a
:class:`CommandHeard` event and the caller hands it to a :class:`Responder` on a worker thread, and with
``judge_in_background=True`` the end-of-turn judge recognises a paused command on a thread of its own (the
same events, at the same stream times; wake words heard meanwhile are held until its decision). The reply
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
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from edge_assistant.agents.base import AgentAnswer
from edge_assistant.core.errors import ConfigError
from edge_assistant.intents import Intent, parse
from edge_assistant.vad.endpoint import PAUSE_CONTINUE, ends_as_judged

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
class Heard:
    """What the recogniser and the matcher made of an utterance's audio."""

    text: str
    """The transcript the intent was matched on (the grammar's choice when one is active)."""
    intent: Intent
    asr_ms: float
    match_ms: float
    free_text: str
    """The recogniser's own text before the grammar had a say (equal to ``text`` without a grammar)."""
    at_s: float | None = None
    """Stream time at which the recognition started, for one made at a pause before the command's end
    (None: at the end-of-utterance decision)."""


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
    """Processing time from the end-of-utterance decision to the answer (ASR + intent + agent; for a command
    ended early, the speculative ASR that decided the end, less what of it ran before the decision)."""
    endpoint_delay_s: float
    """Stream time from the last speech to the end-of-utterance decision (the trailing silence)."""
    match_ms: float = 0.0
    agent_ms: float = 0.0
    end_reason: str = "silence"
    """Why the command ended: ``silence``, ``complete`` (a complete intent at a pause), ``max_length``,
    ``end_of_stream``."""
    detected_s: float = 0.0
    """Stream time of the end-of-utterance decision."""
    kind: str = field(default="reply", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind, "speech_start_s": round(self.speech_start_s, 3),
            "speech_end_s": round(self.speech_end_s, 3), "heard": self.text, "intent": self.intent.name,
            "slots": self.intent.slots, "answer": self.answer.to_dict(), "asr_ms": round(self.asr_ms, 1),
            "match_ms": round(self.match_ms, 2), "agent_ms": round(self.agent_ms, 2),
            "reply_latency_ms": round(self.reply_latency_ms, 1),
            "endpoint_delay_s": round(self.endpoint_delay_s, 3), "end_reason": self.end_reason,
            "detected_s": round(self.detected_s, 3),
        }


@dataclass(frozen=True)
class CommandHeard:
    """An utterance after a wake word ended; its answer is still to come (``defer_answers=True`` only)."""

    utterance: Any
    """The endpointer's utterance: ``audio`` (float32, 16 kHz), ``start_s``, ``speech_end_s``, ``detected_s``."""
    heard: Heard | None = None
    """Already recognised (a command ended early on a complete intent): the responder only answers it."""
    kind: str = field(default="command", init=False)

    def to_dict(self) -> dict[str, Any]:
        u = self.utterance
        d = {"event": self.kind, "speech_start_s": round(u.start_s, 3), "speech_end_s": round(u.speech_end_s, 3),
             "detected_s": round(u.detected_s, 3), "end_reason": getattr(u, "reason", "silence")}
        return d | {"heard": self.heard.text} if self.heard is not None else d


PipelineEvent = WakeHeard | ListenTimedOut | FollowUpOpened | CommandHeard | Replied


class Responder:
    """Utterance → ASR → intent → agent: the slow half of the pipeline, safe to call from two threads (the
    recogniser serves one call at a time, under a lock: the end-of-turn judge may recognise a paused command
    speculatively while the responder thread answers the previous one).

    ``grammar``: a :class:`~edge_assistant.asr.grammar_bias.GrammarBias` the recogniser prefers when the audio
    fits one of its sentences; None: free text only.
    """

    def __init__(self, recognizer: Recognizer, router: Router, parse_text: Any = None, grammar: Any = None) -> None:
        self.recognizer = recognizer
        self.router = router
        self.parse_text = parse_text or parse
        self.grammar = grammar
        self._lock = threading.Lock()

    def hear(self, audio: np.ndarray) -> Heard:
        """Transcribe ``audio`` (float32, 16 kHz) and match the text to an intent."""
        t0 = time.perf_counter()
        with self._lock:
            if self.grammar is None:
                transcript = self.recognizer.transcribe(audio)
            else:
                transcript = self.recognizer.transcribe(audio, grammar=self.grammar)
        t1 = time.perf_counter()
        text = transcript.text.strip()
        intent = self.parse_text(text)
        t2 = time.perf_counter()
        extra = getattr(transcript, "extra", None) or {}
        free = str(extra.get("free_text", transcript.text)).strip()
        return Heard(text, intent, (t1 - t0) * 1e3, (t2 - t1) * 1e3, free)

    def respond(self, utterance: Any, heard: Heard | None = None) -> Replied:
        """Answer ``utterance``; ``heard``: its recognition when already done (a command ended early)."""
        if heard is None:
            heard = self.hear(utterance.audio)
        t0 = time.perf_counter()
        answer = self.router.answer(heard.intent)
        agent_ms = (time.perf_counter() - t0) * 1e3
        log.info("heard %r -> %s", heard.text, heard.intent.name)
        # a recognition made at a pause before the decision (a complete command that waited one more pause in
        # case its last word went on) ran while that pause's audio came in: only what it took beyond counts
        asr_after_ms = heard.asr_ms
        if heard.at_s is not None:
            asr_after_ms = max(0.0, heard.asr_ms - (utterance.detected_s - heard.at_s) * 1e3)
        return Replied(
            speech_start_s=utterance.start_s, speech_end_s=utterance.speech_end_s, text=heard.text,
            intent=heard.intent, answer=answer, asr_ms=heard.asr_ms,
            reply_latency_ms=asr_after_ms + heard.match_ms + agent_ms,
            endpoint_delay_s=utterance.detected_s - utterance.speech_end_s, match_ms=heard.match_ms,
            agent_ms=agent_ms, end_reason=getattr(utterance, "reason", "silence"), detected_s=utterance.detected_s,
        )


class Assistant:
    """Wake word → endpoint → ASR → intent → agent, on one stream of 16 kHz mono audio.

    ``wake`` is a :class:`~edge_assistant.wakeword.engine.WakeWordEngine`, ``endpointer`` an
    :class:`~edge_assistant.vad.endpoint.Endpointer` created with ``listening=False``, ``responder`` the
    :class:`Responder` (recogniser, matcher, router). ``defer_answers``: emit :class:`CommandHeard` instead of
    answering inline (see the module docstring). ``end_of_turn``: judges a command at each pause
    (:class:`~edge_assistant.pipeline.end_of_turn.EndOfTurn`): a complete intent ends it at once, an
    unfinished sentence waits longer; it needs an endpointer with ``pause_ms`` set. ``judge_in_background``:
    judge on a thread of its own (:class:`~edge_assistant.pipeline.end_of_turn.JudgeThread`), so :meth:`feed`
    never waits for the recognition of a paused command; the events are the same, they come out once the
    decision is in (call :meth:`close` at the end).
    """

    def __init__(self, wake: WakeStage, endpointer: EndpointStage, responder: Responder,
                 config: AssistantConfig | None = None, *, defer_answers: bool = False,
                 end_of_turn: Any = None, judge_in_background: bool = False) -> None:
        self.wake = wake
        self.endpointer = endpointer
        self.responder = responder
        self.defer_answers = defer_answers
        self.config = config or AssistantConfig()
        self.end_of_turn = end_of_turn
        self._early: Heard | None = None  # recognised at the pause that ended the command
        self._held_wakes: list[Any] = []  # detections that came while a pause was being judged
        lookback_ms = getattr(getattr(endpointer, "config", None), "max_lookback_ms", 2000.0)
        # how long a wake word may wait for the judge: the command after it is listened for from the look-back
        self._hold_wakes_s = max(0.0, lookback_ms / 1000.0 - self.config.listen_offset_s - 0.5)
        self._captured_until_s = 0.0  # stream time at which the last command (or its listening) ended
        self._judge_thread = None
        if end_of_turn is not None:
            endpointer.on_pause = self._on_pause
            if judge_in_background:
                from edge_assistant.pipeline.end_of_turn import JudgeThread

                self._judge_thread = JudgeThread()
        self._capturing = False
        self._follow_up = False  # the command being captured needs no wake word (follow-up window)
        self._samples = 0
        self._speaking = False
        self._suppress_until_s = 0.0
        self.suppressed_wakes = 0
        """Wake detections dropped while the assistant spoke (its own voice from the speakers)."""
        self.judge_errors = 0
        """Pause judgements that failed (logged; the command then ends by the usual trailing silence)."""

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
        judging = getattr(self.endpointer, "judging", False)
        if not (judging or self._held_wakes):
            return events + self._take_wakes(detections)
        # a pause is being judged in the background: whether a wake word starts a command or falls inside the
        # one being captured is known once the decision is in
        self._held_wakes += detections
        if judging:
            if not self._held_wakes or self.time_s - self._held_wakes[0].time_s < self._hold_wakes_s:
                return events
            # the wake word would leave the look-back it is listened from: wait for the judge
            events.extend(self._handle_endpoint(self.endpointer.settle()))
        return events + self._release_held_wakes()

    def _release_held_wakes(self) -> list[PipelineEvent]:
        """The wake words held while a pause was judged, taken now that the decision is in."""
        detections, self._held_wakes = self._held_wakes, []
        return self._take_wakes(detections, held=True)

    def _take_wakes(self, detections: list[Any], held: bool = False) -> list[PipelineEvent]:
        events: list[PipelineEvent] = []
        for det in detections:
            if held and det.time_s < self._captured_until_s and not self._capturing:
                log.debug("wake word at %.2f s ignored: it came while a command was being captured", det.time_s)
                continue
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
        """End of stream: close a command in progress (after the decision of a pause still being judged, and
        the wake words held for it)."""
        events = self._handle_endpoint(self.endpointer.flush()) if self._capturing else []
        if self._held_wakes:
            events += self._release_held_wakes()
            if self._capturing:
                events += self._handle_endpoint(self.endpointer.flush())
        return events

    def close(self) -> None:
        """End the background judge's thread (``judge_in_background``); nothing else to release."""
        if self._judge_thread is not None:
            self._judge_thread.close()

    def _on_pause(self, pause: Any) -> Any:
        """The endpointer's pause callback: the end-of-turn judge decides (a future of its decision when it
        judges in the background); a complete command's recognition is kept for its answer."""
        if not self._capturing:
            return PAUSE_CONTINUE
        if self._judge_thread is not None:
            return self._judge_thread.submit(lambda: self._judge(pause))
        return self._judge(pause)

    def _judge(self, pause: Any) -> str:
        # on the judge's thread when in the background: _early is read by the stream's thread only after the
        # endpointer has taken this decision from the future, so after it was written
        try:
            decision, heard = self.end_of_turn.judge(pause.audio)
        except Exception:  # noqa: BLE001 - a failed speculative recognition must not end the command or the stream
            log.exception("judging the pause at %.2f s failed; the usual trailing silence decides", pause.detected_s)
            self.judge_errors += 1
            self._early = None
            return PAUSE_CONTINUE
        self._early = replace(heard, at_s=pause.detected_s) if ends_as_judged(decision, pause.early) else None
        return decision

    def _handle_endpoint(self, ep_events: list[Any]) -> list[PipelineEvent]:
        out: list[PipelineEvent] = []
        for ev in ep_events:
            kind = getattr(ev, "kind", "")
            if kind in ("listen_timeout", "utterance"):
                self._captured_until_s = ev.detected_s
            if kind == "listen_timeout":
                self._capturing = False
                out.append(ListenTimedOut(ev.detected_s, follow_up=self._follow_up))
                self._follow_up = False
            elif kind == "utterance":
                self._capturing = False
                self._follow_up = False
                heard = self._early if getattr(ev, "reason", "") == "complete" else None
                self._early = None
                out.append(CommandHeard(ev, heard) if self.defer_answers else self.responder.respond(ev, heard))
            elif kind == "speech_discarded":
                log.debug("speech at %.2f s too short for a command; still listening", ev.start_s)
        return out
