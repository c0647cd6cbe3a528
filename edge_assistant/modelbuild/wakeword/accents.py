"""The wake phrase as speakers of English as a second language say it (build time only).

espeak-ng's English accents and Flite's voices all pronounce the phrase the dictionary's way; many drivers do
not. This module makes pronunciation variants of the phrase from its dictionary phonemes with substitutions that
are common in second-language English whatever the first language (they come from the general literature on L2
phonology, fixed before any measurement, never from recordings of the phrase):

- voicing: /dʒ/ → /tʃ/, a word-final voiced obstruent devoiced (/v z d b g/ → /f s t p k/);
- affricates and glides: /dʒ/ → /j/ or /ʒ/, /tʃ/ → /ʃ/;
- labials: /v/ → /b/, /w/ or /f/; /w/ → /v/;
- dental fricatives: /θ/ → /t/, /s/ or /f/; /ð/ → /d/ or /z/;
- vowels: no tense/lax contrast (/ɪ/ → /iː/, /ʊ/ → /uː/), /æ/ → /ɛ/ or /ɑ/, a reduced /ə/ said as a full
  vowel (/ɑ/, /ɛ/, /ɪ/), /ɝ/ → /ɛr/;
- /h/ dropped; /ŋ/ → /ŋg/;
- an extra vowel: after a word-final consonant (/ə/), or before a word-initial /s/ + consonant (/ɛ/).

A variant takes one or two of the substitutions that apply, and is kept only when it is closer to the phrase
than to every word the head is taught to ignore (:class:`~.confusables.Confusables`: neighbours, partials,
splits), in the same weighted edit distance that chose those words: a variant must never teach the head that a
negative is the phrase. It is spoken by espeak-ng from phonemes (``[[...]]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_assistant.modelbuild.wakeword.confusables import Confusables, distance, phonemes

VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
_DEVOICED = {"V": "F", "Z": "S", "D": "T", "B": "P", "G": "K", "JH": "CH", "ZH": "SH", "DH": "TH"}
#: Substitutions anywhere in a word: phoneme -> what it may become ("" = dropped).
_ANYWHERE: dict[str, tuple[str, ...]] = {
    "JH": ("CH", "Y", "ZH"), "CH": ("SH",), "V": ("B", "W", "F"), "W": ("V",), "TH": ("T", "S", "F"),
    "DH": ("D", "Z"), "IH": ("IY",), "UH": ("UW",), "AE": ("EH", "AA"), "AH": ("AA", "EH", "IH"),
    "HH": ("",), "NG": ("N G",), "ER": ("EH R",),
}
#: ARPAbet -> espeak-ng's English phoneme mnemonics (``[[...]]`` input).
_ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "@", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3:", "EY": "eI",
    "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:", "B": "b", "CH": "tS", "D": "d",
    "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N",
    "P": "p", "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "Z",
}

Word = tuple[str, ...]


def _edits(words: Sequence[Word]) -> list[tuple[int, int, tuple[str, ...]]]:
    """Every substitution that applies: (word, position, replacement phonemes); position ``len(word)`` appends,
    position -1 prepends."""
    out: list[tuple[int, int, tuple[str, ...]]] = []
    for w, word in enumerate(words):
        for i, p in enumerate(word):
            for new in _ANYWHERE.get(p, ()):
                out.append((w, i, tuple(new.split())))
        last = word[-1]
        if last in _DEVOICED:
            out.append((w, len(word) - 1, (_DEVOICED[last],)))
        if last not in VOWELS:
            out.append((w, len(word), ("AH",)))
        if len(word) > 1 and word[0] == "S" and word[1] not in VOWELS:
            out.append((w, -1, ("EH",)))
    return out


def _apply(words: Sequence[Word], edits: Sequence[tuple[int, int, tuple[str, ...]]]) -> tuple[Word, ...]:
    out = [list(word) for word in words]
    # right to left within a word, so earlier positions stay valid
    for w, i, new in sorted(edits, key=lambda e: (e[0], -e[1])):
        if i == -1:
            out[w][0:0] = list(new)
        elif i == len(words[w]):
            out[w].extend(new)
        else:
            out[w][i : i + 1] = list(new)
    return tuple(tuple(word) for word in out)


class L2Pronunciations:
    """Seeded pronunciation variants of ``confusables.phrase`` (see the module docstring)."""

    def __init__(self, confusables: Confusables) -> None:
        self.confusables = confusables
        self.words: tuple[Word, ...] = tuple(phonemes(w) for w in confusables.phrase.split())
        self._flat = tuple(p for word in self.words for p in word)
        self._negatives = [phonemes(t) for t in confusables.near]
        self._edits = _edits(self.words)

    def allowed(self, variant: Sequence[str]) -> bool:
        """Closer to the phrase than to every negative the head is taught."""
        own = distance(variant, self._flat)
        return all(own < distance(variant, neg) for neg in self._negatives)

    def draw(self, rng: np.random.Generator, tries: int = 20) -> tuple[Word, ...] | None:
        """One or two substitutions that apply, redrawn until the variant is :meth:`allowed` (None: no luck)."""
        if not self._edits:
            return None
        for _ in range(tries):
            k = 1 if rng.random() < 0.6 or len(self._edits) < 2 else 2
            picks = rng.choice(len(self._edits), size=k, replace=False)
            chosen = [self._edits[int(i)] for i in picks]
            if len({(w, i) for w, i, _ in chosen}) < k:
                continue  # two changes of one phoneme
            variant = _apply(self.words, chosen)
            flat = tuple(p for word in variant for p in word)
            if flat != self._flat and self.allowed(flat):
                return variant
        return None


def espeak_input(words: Sequence[Word]) -> str:
    """espeak-ng phoneme input for ``words`` (the first vowel of each word stressed, the word's own and not an
    added one before /s/): ``[[dZ'A:rv@s]]``."""
    spoken = []
    for word in words:
        out, stressed = [], False
        skip = 1 if len(word) > 2 and word[0] == "EH" and word[1] == "S" and any(p in VOWELS for p in word[2:]) else 0
        for i, p in enumerate(word):
            if p in VOWELS and not stressed and i >= skip:
                out.append("'")
                stressed = True
            out.append(_ESPEAK[p])
        spoken.append("".join(out))
    return "[[" + " ".join(spoken) + "]]"
