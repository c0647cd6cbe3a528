"""A small rule-based intent parser for in-car questions.

Speech recognisers produce lower-case-insensitive, loosely punctuated text with spelling variants
("tire"/"tyre", "kilometres"/"km"), so the parser normalises first and then scores each intent by the
cue phrases it contains. Rules beat a classifier here: the vocabulary is small, every decision can be
explained, and nothing has to be trained or shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Wheel positions as (row, side) in VSS terms: Row1 is the front axle.
_WHEELS: dict[str, tuple[str, str]] = {
    "front left": ("Row1", "Left"),
    "front right": ("Row1", "Right"),
    "rear left": ("Row2", "Left"),
    "rear right": ("Row2", "Right"),
    "back left": ("Row2", "Left"),
    "back right": ("Row2", "Right"),
    "left front": ("Row1", "Left"),
    "right front": ("Row1", "Right"),
    "left rear": ("Row2", "Left"),
    "right rear": ("Row2", "Right"),
}

_SPELLING = {
    "tire": "tyre",
    "tires": "tyres",
    "kilometers": "km",
    "kilometres": "km",
    "kilometer": "km",
    "kilometre": "km",
    "miles": "mi",
    "mile": "mi",
    "check-engine": "check engine",
    "e-v": "ev",
}

#: (intent, weight, cue regex). A question gets the intent with the highest total weight.
_CUES: list[tuple[str, float, str]] = [
    ("vehicle.tyres", 3.0, r"\btyres?\b|\bpuncture\b|\bflat\b|\btpms\b"),
    ("vehicle.tyres", 1.0, r"\bpressure\b|\bwheels?\b|\bpsi\b|\bkpa\b"),
    ("vehicle.warnings", 3.0, r"\bwarning\b|\bcheck engine\b|\btrouble codes?\b|\bdtcs?\b|\bfault codes?\b|\berror codes?\b"),
    ("vehicle.warnings", 2.0, r"\b(light|lamp|symbol|icon)s? (is )?on\b|\bdashboard\b|\bwhat'?s wrong\b|\bfaults?\b"),
    ("vehicle.warnings", 1.0, r"\blights?\b|\blamps?\b"),
    ("vehicle.battery", 3.0, r"\bstate of charge\b|\bbattery\b|\bsoc\b|\bcharge level\b|\bpercent\b"),
    ("vehicle.range", 3.0, r"\brange\b|\bhow far\b|\bmake it\b|\bget to\b|\breach\b"),
    ("vehicle.range", 1.0, r"\b(km|mi) (left|remaining)\b|\bleft\b"),
    ("vehicle.range", 3.0, r"\b(drive|go|travel) (another )?\d+(\.\d+)? (km|mi)\b"),
    ("vehicle.charging", 3.0, r"\bcharging\b|\bcharger\b|\bplugged\b|\bfully charged\b|\bwhen will it be full\b"),
    ("vehicle.service", 3.0, r"\bservice\b|\bmaintenance\b|\bcoolant\b|\boil\b|\bodometer\b|\bmileage\b|\b12 ?v(olt)?\b"),
    ("vehicle.status", 2.0, r"\bhow is (my|the) car\b|\bcar status\b|\beverything (ok|okay|alright|fine)\b|\bhealth\b"),
    ("vehicle.speed", 3.0, r"\bhow fast\b|\bspeed\b"),
    ("vehicle.temperature", 3.0, r"\btemperature\b|\bhow (hot|cold)\b|\boutside\b"),
    # Trip planning (the Travel Companion): weight 4 so they win over the single words they contain.
    ("travel.charge_time", 4.0, r"\bhow long\b.*\bcharg|\bcharg\w* time\b|\btime to (charge|full)\b|"
                                r"\bhow (many minutes|long)\b.*\bkw\b|\bhow much longer\b.*\b(charg\w*|full)\b|"
                                r"\buntil (it'?s|it is|the battery is) full\b"),
    ("travel.charge_stop", 4.0, r"\b(where|which km|what km)\b.*\bcharg|\bwhen (should|must|do|can) i\b.*\bcharg|"
                                r"\bcharging stops?\b|\bstop (to|and) charge\b|\b(need|have) to (stop|charge)\b|"
                                r"\b(should|must) i (stop|charge)\b|\bstop for charg\w*\b"),
    ("travel.location", 4.0, r"\bwhere am i\b|\bwhere are we\b|\bmy (location|position)\b|\bcoordinates\b|"
                             r"\bgps\b|\bwhich way\b|\bheading\b"),
    ("travel.trip", 4.0, r"\btrip\b|\baverage speed\b|\bconsumption\b|\befficien\w*\b|\bkwh per\b|"
                         r"\bhow far (have|did)\b|\bdriven\b|\bso far\b|\bhow much energy\b"),
]

INTENTS: tuple[str, ...] = tuple(dict.fromkeys(name for name, _, _ in _CUES)) + ("unknown",)

_COMPILED = [(name, weight, re.compile(pattern)) for name, weight, pattern in _CUES]
_DISTANCE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(km|mi)\b")
_POWER = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:kw|kilowatts?)\b")
_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)")
_TO_PCT = re.compile(r"\b(?:to|until|till|up to)\s+(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)")
_FROM_PCT = re.compile(r"\bfrom\s+(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)")
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}


@dataclass(frozen=True)
class Intent:
    """What the driver asked for. ``slots`` holds extracted parameters (wheel, distance_km, ...)."""

    name: str
    text: str
    confidence: float
    slots: dict[str, object] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Lower case, unify spelling variants, drop punctuation except apostrophes and decimal points."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)
    t = re.sub(r"[^\w\s'.-]", " ", t)
    words = _numbers_to_digits([_SPELLING.get(w, w) for w in t.split()])
    return " ".join(words)


def _numbers_to_digits(words: list[str]) -> list[str]:
    """Replace runs of English number words by digits: "one hundred and twenty" → "120"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in _UNITS and not (words[i] in _SCALES and i == 0):
            out.append(words[i])
            i += 1
            continue
        total, current, j = 0, 0, i
        while j < len(words):
            w = words[j]
            if w in _UNITS:
                current += _UNITS[w]
            elif w in _SCALES:
                current = max(current, 1) * _SCALES[w]
                if _SCALES[w] >= 1000:
                    total, current = total + current, 0
            elif w == "and" and j + 1 < len(words) and words[j + 1] in _UNITS and j > i:
                pass
            else:
                break
            j += 1
        out.append(str(total + current))
        i = j
    return out


def parse(text: str) -> Intent:
    """Map a question to an :class:`Intent`; ``unknown`` when no cue matches."""
    norm = normalise(text)
    scores: dict[str, float] = {}
    for name, weight, pattern in _COMPILED:
        if pattern.search(norm):
            scores[name] = scores.get(name, 0.0) + weight
    slots = _slots(norm, text.lower().replace("per cent", "percent"))
    if not scores:
        return Intent("unknown", text, 0.0, slots)
    best = max(scores, key=lambda k: (scores[k], -INTENTS.index(k)))
    total = sum(scores.values())
    return Intent(best, text, round(scores[best] / total, 3), slots)


def _slots(norm: str, raw: str) -> dict[str, object]:
    """Wheel, distance_km, and for charging questions power_kw, target_pct, from_pct."""
    slots: dict[str, object] = {}
    for src in (raw, norm):
        if (m := _POWER.search(src)) and "power_kw" not in slots:
            slots["power_kw"] = float(m.group(1))
        if (m := _TO_PCT.search(src)) and "target_pct" not in slots:
            slots["target_pct"] = float(m.group(1))
        if (m := _FROM_PCT.search(src)) and "from_pct" not in slots:
            slots["from_pct"] = float(m.group(1))
    if "target_pct" not in slots and "from_pct" not in slots and (m := _PCT.search(raw) or _PCT.search(norm)):
        slots["target_pct"] = float(m.group(1))
    for phrase, (row, side) in _WHEELS.items():
        if phrase in norm:
            slots["wheel"] = f"{row}.{side}"
            break
    m = _DISTANCE.search(norm)
    if m:
        value = float(m.group(1))
        slots["distance_km"] = value if m.group(2) == "km" else round(value * 1.609344, 3)
    return slots
