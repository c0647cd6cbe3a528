"""The agent interface: an :class:`Intent` (typed slots) in, :class:`AgentAnswer` out, every value used named
with its age."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from edge_assistant.core.state import VehicleSnapshot
from edge_assistant.intents import Intent


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
    def answer(self, intent: Intent) -> AgentAnswer:
        """Answer ``intent`` from its name and slots (never by re-reading its text); never invent a value
        that is missing or stale."""


def age_words(age_s: float) -> str:
    """How old a reading is, as said in an answer: "just now", "40 s ago", "12 min ago", "2.5 h ago"."""
    if age_s < 1.0:
        return "just now"
    if age_s < 90:
        return f"{age_s:.0f} s ago"
    if age_s < 5400:
        return f"{age_s / 60:.0f} min ago"
    return f"{age_s / 3600:.1f} h ago"


@dataclass
class SnapshotReader:
    """Reads a snapshot for one answer and records every value used, missing, stale or implausible.

    Subclasses set ``labels`` (path -> words used in answers) and, where sensors can report nonsense,
    ``plausible`` (path -> (low, high)).
    """

    snap: VehicleSnapshot
    used: list[ValueUsed] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    implausible: list[str] = field(default_factory=list)

    labels: ClassVar[Mapping[str, str]] = {}
    plausible: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def get(self, path: str, max_age_s: float, label: str | None = None, optional: bool = False) -> ValueUsed:
        """Look ``path`` up and record it. ``optional``: a value the car may simply not have, which is
        then neither listed as used nor as missing."""
        label = label or self.labels.get(path, path.rsplit(".", 1)[-1])
        r = self.snap.get(path)
        if r is None:
            v = ValueUsed(path, label, None, None, None, False)
            if optional:
                return v
            self.missing.append(label)
        else:
            age = self.snap.age_s(path) or 0.0
            lo_hi = self.plausible.get(path)
            plausible = lo_hi is None or not isinstance(r.value, (int, float)) or isinstance(r.value, bool) \
                or lo_hi[0] <= float(r.value) <= lo_hi[1]
            v = ValueUsed(path, label, r.value, r.unit, age, age > max_age_s, r.source, plausible)
            if v.stale:
                self.stale.append(label)
            if not plausible:
                self.implausible.append(label)
        self.used.append(v)
        return v

    def first_seen(self, paths: tuple[str, ...], max_age_s: float) -> ValueUsed:
        """The first of ``paths`` the car reports (e.g. SoC, then displayed SoC); the first is recorded as
        missing when none is."""
        for path in paths:
            v = self.get(path, max_age_s, optional=True)
            if v.age_s is not None:
                return v
        return self.get(paths[0], max_age_s)
