"""The agent interface: text in, :class:`AgentAnswer` out, every value used named with its age."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ValueUsed:
    """One input an answer relied on. ``age_s`` None means the value was never seen (missing)."""

    path: str                  # VSS path or a diagnostics source ("diag:0x7EC 19 02")
    label: str                 # words used in the answer ("state of charge")
    value: object | None
    unit: str | None
    age_s: float | None
    stale: bool
    source: str | None = None  # where the reading came from (CAN frame/signal, OBD PID, UDS service)
    plausible: bool = True     # False: outside the physically possible range, so not used

    def to_dict(self) -> dict:
        return {"path": self.path, "label": self.label, "value": self.value, "unit": self.unit,
                "age_s": None if self.age_s is None else round(self.age_s, 3), "stale": self.stale,
                "missing": self.age_s is None, "plausible": self.plausible, "source": self.source}


@dataclass(frozen=True)
class AgentAnswer:
    """What an agent says and what it said it from."""

    text: str
    intent: str
    agent: str
    values: tuple[ValueUsed, ...] = field(default_factory=tuple)
    missing: tuple[str, ...] = ()   # labels of data the answer needed but did not have
    stale: tuple[str, ...] = ()     # labels of data that was too old to trust
    implausible: tuple[str, ...] = ()  # labels of data outside the physically possible range

    def to_dict(self) -> dict:
        return {"agent": self.agent, "intent": self.intent, "text": self.text,
                "values": [v.to_dict() for v in self.values], "missing": list(self.missing),
                "stale": list(self.stale), "implausible": list(self.implausible)}


class Agent(ABC):
    """An agent answers one question at a time from the state it can read."""

    name: str = "agent"

    @abstractmethod
    def answer(self, question: str) -> AgentAnswer:
        """Answer ``question``; never invent a value that is missing or stale."""


def age_words(age_s: float) -> str:
    """How old a reading is, as said in an answer: "just now", "40 s ago", "12 min ago", "2.5 h ago"."""
    if age_s < 1.0:
        return "just now"
    if age_s < 90:
        return f"{age_s:.0f} s ago"
    if age_s < 5400:
        return f"{age_s / 60:.0f} min ago"
    return f"{age_s / 3600:.1f} h ago"
