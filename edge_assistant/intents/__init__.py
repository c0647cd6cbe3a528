"""Text → Intent. Pure: no I/O, no models; works on ASR output as well as typed text."""

from edge_assistant.intents.parser import INTENTS, Intent, parse

__all__ = ["INTENTS", "Intent", "parse"]
