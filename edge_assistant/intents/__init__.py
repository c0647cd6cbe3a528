"""Text → Intent with typed slots, from sentence grammars (Home Assistant's format, matched by hassil)
behind a tolerant layer for ASR text. Pure: reads only its sentence files; no models."""

from edge_assistant.intents.matcher import Intent, IntentMatcher
from edge_assistant.intents.parser import car_matcher, parse

__all__ = ["INTENTS", "Intent", "IntentMatcher", "car_matcher", "parse"]


def __getattr__(name: str) -> object:
    if name == "INTENTS":
        return car_matcher().names
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
