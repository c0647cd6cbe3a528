"""End of turn: has the driver finished the command? Decided at each pause from the words so far.

A fixed trailing silence makes every reply wait for it, and a long one cuts nobody off but makes every
answer late. Instead, when a command pauses for ``pause_ms`` (the endpointer's :class:`SpeechPause`), its
audio so far is recognised at once, speculatively, and judged:

* **complete**: the recogniser's own text (before the grammar had a say) matches an intent with at least
  ``min_confidence``: the command ends here and its recognition is the one answered (no second ASR). When a
  sentence of the grammar could go on inside the last word ("turn on the heat" of "turn on the heated
  seats", a number, a place name that is no known place or that a known one extends), the pause may have
  split a word: the command ends after another ``pause_ms`` of quiet instead, with the same recognition,
  unless speech resumes;
* **incomplete**: no intent yet, and that text is the beginning of a sentence of the grammar ("set the
  temperature to", "navigate to"): wait ``hold_silence_ms`` instead of the usual trailing silence, so that
  a driver who pauses mid-sentence is not cut off;
* **complete by the grammar**: the free text is neither, but the grammar-aware recognition found a sentence
  of the grammar that matches an intent ("Why is the title I song?" → "Why is the tire light on?"): ended,
  provided the free text holds the numbers and free-text values of that sentence. The grammar may mend words
  the recogniser misheard, but a value it supplied unheard is what a search over the grammar makes of a
  command cut at a pause ("Set the charge limit to … ninety percent" heard "Set, I'll change, leave it to…",
  searched to "Set the charge limit to 0"). Such a command waits ``hold_silence_ms`` for the speaker to go on,
  and if nobody does, ends with this recognition (a search over the audio with the silence added may read it
  otherwise);
* **left open**: none of these, and Whisper did not close the text as a sentence (no final ``.``, ``?`` or
  ``!``, or a trailing ``...``: its language model ends what sounds finished, and noise often garbles the
  first half of a paused command, "Sad, look and preach your two"): held as incomplete;
* otherwise the usual trailing silence decides (speech that is no command ends as it always did).

The free text is asked first because grammar-constrained decoding turns unfinished audio into the nearest
whole sentence ("set the temperature to" → "… to 20"); an unfinished sentence is recognised as such by its
free text. A speaker who pauses after a complete command and then goes on ("turn on the seat heating … on
the left") is answered after the first part: the price of a reply the moment the command is complete.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_assistant.core.errors import ConfigError
from edge_assistant.intents.matcher import UNKNOWN, Intent
from edge_assistant.vad.endpoint import (
    PAUSE_CONTINUE,
    PAUSE_END,
    PAUSE_END_AFTER_HOLD,
    PAUSE_END_LATER,
    PAUSE_HOLD,
)

log = logging.getLogger(__name__)


class GrammarShape(Protocol):
    """Where a transcript stands in the grammar (:class:`~edge_assistant.pipeline.grammar_link.GrammarShape`)."""

    def is_prefix(self, text: str) -> bool: ...

    def continues_word(self, text: str) -> bool: ...

    def holds(self, text: str, words: str) -> bool: ...


@dataclass(frozen=True)
class EndOfTurnConfig:
    min_confidence: float = 0.8
    """Intent confidence (1.0 = the grammar matched the text as it is) needed to end a command at a pause."""

    def __post_init__(self) -> None:
        if not 0.0 < self.min_confidence <= 1.0:
            raise ConfigError(f"end of turn min_confidence={self.min_confidence!r}: expected 0 < value <= 1")


class EndOfTurn:
    """``judge(audio)`` → (decision, heard): :data:`PAUSE_END`, :data:`PAUSE_END_LATER` or
    :data:`PAUSE_END_AFTER_HOLD` with the recognition to answer, :data:`PAUSE_HOLD` or :data:`PAUSE_CONTINUE`
    with None.

    ``hear``: audio → :class:`~edge_assistant.pipeline.assistant.Heard` (the responder's); ``match``: text →
    :class:`Intent` (the matcher's); ``shape``: where a text stands in the grammar
    (:class:`~edge_assistant.pipeline.grammar_link.GrammarShape`; None: never hold, never wait for a word).
    """

    def __init__(self, hear: Callable[[np.ndarray], object], match: Callable[[str], Intent],
                 shape: GrammarShape | None = None, config: EndOfTurnConfig | None = None) -> None:
        self.hear = hear
        self.match = match
        self.shape = shape
        self.config = config or EndOfTurnConfig()
        self.judged = 0
        self.ended = 0
        self.ended_later = 0
        self.held = 0
        self.unheard = 0  # ended after a hold: a sentence of the grammar with values the free text does not hold

    def judge(self, audio: np.ndarray) -> tuple[str, object | None]:
        self.judged += 1
        heard = self.hear(audio)
        free = heard.free_text
        if self._sure(heard.intent if free == heard.text else self.match(free)):
            if self.shape is not None and self.shape.continues_word(free):
                self.ended_later += 1
                log.debug("pause after %r: complete, unless the last word goes on", free)
                return PAUSE_END_LATER, heard
            return self._end(heard, free)
        if free and self.shape is not None and self.shape.is_prefix(free):
            return self._hold(free)
        if free != heard.text and self._sure(heard.intent):
            if self.shape is not None and not all(self.shape.holds(free, w) for w in heard.intent.spoken.values()):
                self.unheard += 1
                log.debug("pause after %r: the grammar's %r has values not heard; waiting", free, heard.text)
                return PAUSE_END_AFTER_HOLD, heard
            return self._end(heard, free)
        if free and _open_ended(free):
            return self._hold(free)
        log.debug("pause after %r: no command, the usual trailing silence decides", free)
        return PAUSE_CONTINUE, None

    def _hold(self, free: str) -> tuple[str, None]:
        self.held += 1
        log.debug("pause after %r: incomplete, waiting longer", free)
        return PAUSE_HOLD, None

    def _sure(self, intent: Intent) -> bool:
        return intent.name != UNKNOWN and intent.confidence >= self.config.min_confidence

    def _end(self, heard: object, free: str) -> tuple[str, object]:
        self.ended += 1
        log.debug("pause after %r: complete (%s: %r)", free, heard.intent.name, heard.text)
        return PAUSE_END, heard


class JudgeThread:
    """Runs pause judgements one after another on a thread of their own, so that the stream's thread goes on
    with the wake word and the VAD while a paused command is recognised (the endpointer applies each decision
    at its pause once it is in: :attr:`~edge_assistant.vad.endpoint.Endpointer.on_pause`)."""

    def __init__(self, name: str = "end-of-turn") -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], str]) -> Future:
        """``fn()`` on the thread; its result (or exception) arrives in the returned future."""
        future: Future = Future()
        self._jobs.put((future, fn))
        return future

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish the judgement under way, cancel those not started, and end the thread."""
        self._closed.set()
        self._jobs.put(None)
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            if self._closed.is_set():
                future.cancel()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the stream's thread, which raises it where it would have
                future.set_exception(exc)


def _open_ended(text: str) -> bool:
    """Whisper left the sentence open: no final full stop, question or exclamation mark, or an ellipsis."""
    t = text.rstrip()
    return not t.endswith((".", "?", "!")) or t.endswith(("...", "…"))
