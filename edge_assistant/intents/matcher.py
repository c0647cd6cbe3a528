"""Text -> :class:`Intent` with typed slots, by a sentence grammar (hassil) behind the tolerant layer.

Three tries, each only when the one before found nothing: the text as given (hassil ignores case and
punctuation; confidence 1.0), the cleaned text (number words as digits, fillers dropped) and the cleaned
text with near-miss words corrected to grammar words. Each repair lowers the confidence; below
``min_confidence`` the request is not guessed and the intent is ``unknown``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_assistant.intents.grammar import Grammar, load_grammar
from edge_assistant.intents.tolerant import NearMiss, Repaired, TolerantConfig, clean, formatted

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Intent:
    """What the speaker asked for.

    ``slots`` are typed: numbers as int when whole, else float (the car grammar converts miles to
    ``distance_km``), wheel positions as VSS ``Row2.Left``, places as text, on/off as bool: as the
    grammar's lists give them. ``confidence`` is
    1.0 for text the grammar matches as it is and lower for each repair the tolerant layer made.
    """

    name: str
    text: str
    confidence: float
    slots: dict[str, object] = field(default_factory=dict)
    spoken: dict[str, str] = field(default_factory=dict, compare=False)
    """The words of ``text`` (as matched: number words as digits) that filled the slots the speaker's own words
    make, numbers and free text, as opposed to a choice from a list ("degrees" → celsius)."""


class IntentMatcher:
    """Matches text against one :class:`Grammar`; ``from_paths`` loads one from sentence files."""

    def __init__(self, grammar: Grammar, config: TolerantConfig | None = None,
                 lists: Mapping[str, Iterable[str] | Mapping[str, object]] | None = None) -> None:
        """``lists``: values of lists the product supplies at run time (``{"name": ["kitchen light"]}``,
        or text -> slot value); one replaces a file's top-level list of the same name."""
        from hassil import TextSlotList

        self.grammar = grammar
        self.config = config or TolerantConfig()
        self._lists = {
            name: (TextSlotList.from_tuples(values.items(), name=name) if isinstance(values, Mapping)
                   else TextSlotList.from_strings(values, name=name))
            for name, values in (lists or {}).items()
        }
        words = {w for lst in (lists or {}).values() for text in lst for w in str(text).lower().split()}
        self._near = NearMiss(grammar.vocabulary | words, self.config)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path] | str | Path, config: TolerantConfig | None = None,
                   lists: Mapping[str, Iterable[str] | Mapping[str, object]] | None = None) -> IntentMatcher:
        """Load the sentence files under ``paths`` (see :func:`load_grammar`) with run-time ``lists``."""
        return cls(load_grammar(paths, provided_lists=(lists or {}).keys()), config, lists)

    def warm_up(self, per_intent: int = 2) -> None:
        """Match a few sentences of every intent once, so that hassil's lazy caches are built before the
        first real request rather than during it."""
        from edge_assistant.intents.sample import sample_grammar

        for s in sample_grammar(self.grammar, per_intent, seed=0):
            self.match(s.text)

    @property
    def names(self) -> tuple[str, ...]:
        """The intent names this matcher can return, ``unknown`` last."""
        return (*self.grammar.names, UNKNOWN)

    def match(self, text: str) -> Intent:
        """The best intent for ``text``, or ``unknown`` (confidence 0) when none is good enough."""
        if not text or not text.strip():
            return Intent(UNKNOWN, text, 0.0)
        exact = Repaired(formatted(text))
        cleaned = clean(text, self.config)
        best: tuple[Repaired, Any] | None = None
        for attempt in self._attempts(exact, cleaned):
            if attempt.confidence < self.config.min_confidence:
                break  # each attempt costs at least as much as the one before
            found = self._recognize(attempt.text)
            if found is None:
                continue
            if best is None or _wild(found, attempt is cleaned) < _wild(best[1], attempt is cleaned):
                best = (attempt, found)
            if not _wild(best[1]):
                break
            # A free-text slot may have swallowed words that a repaired text reads as grammar ("to Munich,
            # it's one hundred km", "navigate to next chrage point"): go on while a repair may leave it less.
        if best is None:
            log.debug("no intent for %r (cleaned %r)", text, cleaned.text)
            return Intent(UNKNOWN, text, 0.0)
        return self._intent(text, *best)

    def _attempts(self, exact: Repaired, cleaned: Repaired) -> Iterator[Repaired]:
        """The text as given, then cleaned, then with near-miss words corrected (made only when reached)."""
        yield exact
        if cleaned.text and cleaned.text != exact.text:
            yield cleaned
        fixed = self._near.correct(cleaned)
        if fixed is not None:
            yield fixed

    def _recognize(self, text: str) -> Any:
        """hassil's best result whose free-text slots start and end on word boundaries (hassil 3.13 may
        end a wildcard inside a word when an optional template word follows: "Lake Gard" + "a 50 kW") and
        hold a letter: a place, a name or a trouble code ("U0100") does, while what noise leaves in a
        recogniser's text after "let's go to" ("5, 2") does not, and ends no command."""
        from hassil import recognize_ranked

        for result in recognize_ranked(text, self.grammar.intents, slot_lists=self._lists or None):
            wild = [e for e in result.entities.values() if e.is_wildcard]
            if all(_on_word_bounds(text, e.text_span) and _LETTER.search(str(e.text)) for e in wild):
                return result
        return None

    def _intent(self, text: str, attempt: Repaired, result: Any) -> Intent:
        slots: dict[str, object] = {}
        spoken: dict[str, str] = {}
        for name, ent in result.entities.items():
            slots[name] = _typed(ent)
            if ent.is_wildcard or (isinstance(ent.value, (int, float)) and not isinstance(ent.value, bool)):
                spoken[name] = str(ent.text).strip()
        if attempt.repairs:
            log.debug("%r matched %s after: %s", text, result.intent.name, "; ".join(attempt.repairs))
        return Intent(result.intent.name, text, attempt.confidence, slots, spoken)


_LETTER = re.compile(r"[^\W\d_]")  # a letter


def _on_word_bounds(text: str, span: tuple[int, int] | None) -> bool:
    if span is None:
        return True
    start, end = span
    return (start == 0 or not text[start - 1].isalnum()) and (end >= len(text) or not text[end].isalnum())


def _wild(result: Any, chars: bool = False) -> tuple[int, int]:
    """Words (then, with ``chars``, characters) that free-text (wildcard) slots took. Words, so that a
    near-miss correction inside a place name never counts as better; characters only for the cleaned
    text, whose rewrites are numbers and fillers ("code P zero four" -> "code P 0 4")."""
    taken = [e.text for e in result.entities.values() if e.is_wildcard]
    return sum(len(t.split()) for t in taken), sum(len(t) for t in taken) if chars else 0


def _typed(entity: Any) -> object:
    """Numbers as int when whole, else float (rounded to 6 places); wildcard text stripped; others as the
    grammar's lists give them (text, bool, ...)."""
    value = entity.value
    if entity.is_wildcard and isinstance(value, str):
        return entity.text_clean or value.strip()
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 6)
    return value
