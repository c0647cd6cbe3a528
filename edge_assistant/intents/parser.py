"""``parse(text)``: the shipped car domain's matcher, loaded once on first use.

The car's intents live in sentence files (``sentences/car/*.yaml``, Home Assistant's format); another
product's domain is another folder given to :class:`~edge_assistant.intents.matcher.IntentMatcher`,
with no code change.
"""

from __future__ import annotations

import threading

from edge_assistant.intents.grammar import car_sentences
from edge_assistant.intents.matcher import Intent, IntentMatcher

__all__ = ["Intent", "car_matcher", "parse"]  # and INTENTS, loaded on first use

_lock = threading.Lock()
_car: IntentMatcher | None = None


def car_matcher() -> IntentMatcher:
    """The matcher of the shipped car domain (loaded, checked and warmed up on the first call: call it at
    start-up so that the first request does not pay for it)."""
    global _car
    with _lock:
        if _car is None:
            matcher = IntentMatcher.from_paths(car_sentences())
            matcher.warm_up()
            _car = matcher
        return _car


def parse(text: str) -> Intent:
    """Map a question or command to an :class:`Intent` of the car domain; ``unknown`` when none fits."""
    return car_matcher().match(text)


def __getattr__(name: str) -> object:
    if name == "INTENTS":  # the car domain's intent names, ``unknown`` last (needs the grammar loaded)
        return car_matcher().names
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
