"""The tolerant layer between a recogniser's text and the grammar: clean-up and near-miss words.

ASR output is not typed text: numbers come as words or digits ("twenty one", "2,500"), punctuation is
arbitrary, speakers say "uh" and repeat words, and a word can come out one letter off ("tyer"). Each
rewrite here is recorded with the confidence it costs (:class:`TolerantConfig`), so the matcher can
tell a clean match from a repaired one and refuse to guess below a threshold. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TolerantConfig:
    """What each repair costs (subtracted from a confidence of 1.0) and how far a near miss may be."""

    number_words_cost: float = 0.05   #: per run of number words read as digits ("twenty one" -> 21)
    filler_cost: float = 0.05         #: per filler word dropped ("uh", "um") or repeated word ("the the")
    near_miss_cost: float = 0.15      #: per character edit of a word corrected to a grammar word
    min_word_len: int = 4             #: shorter words are never corrected ("is" vs "it")
    max_edits_long: int = 2           #: edits allowed in words of ``long_word_len`` letters or more
    long_word_len: int = 8            #: words shorter than this may differ by one edit only
    max_corrections: int = 2          #: more unknown words than this: the text is not repaired
    min_confidence: float = 0.6       #: below this a match is not taken (the request is not guessed)
    fillers: frozenset[str] = frozenset({"uh", "uhm", "um", "umm", "er", "erm", "hmm", "hm", "mm", "ah", "eh"})


@dataclass(frozen=True)
class Repaired:
    """Text after a repair step, the repairs made (for logs) and the confidence they leave."""

    text: str
    repairs: tuple[str, ...] = ()
    confidence: float = 1.0


_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}
_TENS = {20, 30, 40, 50, 60, 70, 80, 90}
_SYMBOLS = [(re.compile(r"(\d)\s*%"), r"\1 percent "), (re.compile(r"(\d)\s*°\s*c\b", re.I), r"\1 degrees "),
            (re.compile(r"(\d)\s*°"), r"\1 degrees "), (re.compile(r"(\d),(\d{3})\b"), r"\1\2"),
            (re.compile(r"\bper cent\b", re.I), "percent")]
_PUNCT = re.compile(r"[^\w\s'.]|(?<!\d)\.|\.(?!\d)")


def formatted(text: str) -> str:
    """Only the written forms that say the same thing: "80%" -> "80 percent", "2,500" -> "2500", "21°C"."""
    for pat, repl in _SYMBOLS:
        text = pat.sub(repl, text)
    return text


def clean(text: str, cfg: TolerantConfig = TolerantConfig()) -> Repaired:
    """Symbols as words, punctuation dropped, number words as digits, fillers and stutters out (case is
    kept for free-text slots such as place names; matching ignores it)."""
    t = formatted(text.replace("’", "'").replace("`", "'"))
    t = _PUNCT.sub(" ", t.replace("-", " "))
    words = [w.strip("'") for w in t.split()]
    words = [w for w in words if w]
    repairs: list[str] = []
    cost = 0.0
    kept: list[str] = []
    for w in words:
        if w.lower() in cfg.fillers:
            repairs.append(f"dropped filler {w!r}")
            cost += cfg.filler_cost
        elif kept and w.lower() == kept[-1].lower() and not w.isdigit():
            repairs.append(f"dropped repeated {w!r}")
            cost += cfg.filler_cost
        else:
            kept.append(w)
    digits, runs = numbers_to_digits(kept)
    if runs:
        repairs += [f"read {r!r} as a number" for r in runs]
        cost += cfg.number_words_cost * len(runs)
    return Repaired(" ".join(digits), tuple(repairs), round(1.0 - cost, 6))


def numbers_to_digits(words: list[str]) -> tuple[list[str], list[str]]:
    """Runs of English number words as digits ("one hundred and twenty" -> "120", "twenty one point
    five" -> "21.5"); returns the words and the runs rewritten. A lone "one"/"oh" stays a word
    ("which one", "oh no")."""
    out: list[str] = []
    runs: list[str] = []
    raw, words = words, [w.lower() for w in words]
    i = 0
    while i < len(words):
        w = words[i]
        starts = w in _UNITS or (w == "a" and i + 1 < len(words) and words[i + 1] in _SCALES)
        if not starts or (w in ("one", "oh") and not _continues(words, i + 1)):
            out.append(raw[i])
            i += 1
            continue
        total, current, j, last = 0, 0, i, None
        while j < len(words):
            x = words[j]
            if x == "a" and j == i:
                current = 1
            elif x in _UNITS:
                v = _UNITS[x]
                if last is not None and last < 20:
                    break  # "two three", "zero four": digits one by one, not 5 or 4
                if last in _TENS and v >= 10:
                    break  # "twenty thirty"
                current += v
                last = v
            elif x in _SCALES:
                current = max(current, 1) * _SCALES[x]
                if _SCALES[x] >= 1000:
                    total, current = total + current, 0
                last = _SCALES[x]
            elif x == "and" and j > i and j + 1 < len(words) and words[j + 1] in _UNITS and last in (100, 1000):
                pass
            else:
                break
            j += 1
        value: float = total + current
        text = str(int(value))
        if j + 1 < len(words) and words[j] == "point" and words[j + 1] in _UNITS and _UNITS[words[j + 1]] < 10:
            k = j + 1
            frac = ""
            while k < len(words) and words[k] in _UNITS and _UNITS[words[k]] < 10:
                frac += str(_UNITS[words[k]])
                k += 1
            text, j = f"{text}.{frac}", k
        runs.append(" ".join(words[i:j]))
        out.append(text)
        i = j
    return out, runs


def _continues(words: list[str], i: int) -> bool:
    return i < len(words) and (words[i] in _SCALES or words[i] == "point")


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance (insert, delete, substitute, swap neighbours), or
    ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass
class NearMiss:
    """Corrects words the grammar does not know to the one grammar word within a small edit distance."""

    vocabulary: frozenset[str]
    cfg: TolerantConfig = field(default_factory=TolerantConfig)

    def __post_init__(self) -> None:
        self._by_len: dict[int, list[str]] = {}
        for w in self.vocabulary:
            if len(w) >= self.cfg.min_word_len - 1 and not w.isdigit():
                self._by_len.setdefault(len(w), []).append(w)

    def closest(self, word: str) -> tuple[str, int] | None:
        """The unique nearest grammar word and its distance; None when none is near or two tie."""
        word = word.lower()
        if len(word) < self.cfg.min_word_len or word.isdigit() or word in self.vocabulary:
            return None
        limit = self.cfg.max_edits_long if len(word) >= self.cfg.long_word_len else 1
        best: list[tuple[int, str]] = []
        for n in range(len(word) - limit, len(word) + limit + 1):
            for cand in self._by_len.get(n, ()):
                d = osa_distance(word, cand, limit)
                if d <= limit:
                    best.append((d, cand))
        if not best:
            return None
        best.sort()
        if len(best) > 1 and best[1][0] == best[0][0]:
            return None  # ambiguous: do not guess
        return best[0][1], best[0][0]

    def correct(self, text: Repaired, keep: Iterable[str] = ()) -> Repaired | None:
        """``text`` with its unknown words corrected; None when nothing could be corrected or too much
        would be. ``keep``: words to leave alone."""
        keep = set(keep)
        words = text.text.split()
        repairs = list(text.repairs)
        cost = 0.0
        n = 0
        for i, w in enumerate(words):
            if w in keep:
                continue
            hit = self.closest(w)
            if hit is None:
                continue
            words[i] = hit[0]
            repairs.append(f"heard {w!r} as {hit[0]!r}")
            cost += self.cfg.near_miss_cost * hit[1]
            n += 1
        if n == 0 or n > self.cfg.max_corrections:
            return None
        return Repaired(" ".join(words), tuple(repairs), round(text.confidence - cost, 6))
