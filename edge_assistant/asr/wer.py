"""Word error rate with a stated text normaliser.

Normaliser (applied to reference and hypothesis alike):

1. Unicode NFKC, lower case; curly quotes to straight;
2. ``&`` -> "and", ``%`` -> "percent"; "mr"/"mrs"/"dr"/"st" abbreviations are left as written;
3. numbers written as words: integers ("1984" -> "one thousand nine hundred eighty four"), decimals
   ("2.5" -> "two point five"), ordinals ("21st" -> "twenty first"), thousands separators removed;
4. hyphens and every other punctuation character become spaces, apostrophes are dropped inside words
   ("don't" -> "dont"), whitespace is collapsed.

WER = (substitutions + deletions + insertions) / reference words, from a word-level Levenshtein alignment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: One-line statement of the normaliser, for reports.
NORMALISER = ("NFKC, lower case, numbers as words (cardinals, ordinals, decimals; separators dropped), "
              "& -> and, % -> percent, apostrophes inside words dropped, other punctuation and hyphens -> space")

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer (no "and": "one hundred one")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


_NUM_RE = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?")


def _spell(match: re.Match) -> str:
    token = match.group(0)
    suffix = ""
    if token[-2:] in ("st", "nd", "rd", "th"):
        token, suffix = token[:-2], token[-2:]
    token = token.replace(",", "")
    if suffix:
        return f" {ordinal_words(int(token))} "
    if "." in token:
        whole, frac = token.split(".", 1)
        return f" {number_to_words(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)} "
    return f" {number_to_words(int(token))} "


def normalize(text: str) -> str:
    """The normaliser described in the module docstring."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = text.replace("&", " and ").replace("%", " percent ")
    text = _NUM_RE.sub(_spell, text)
    text = re.sub(r"(?<=\w)'(?=\w)", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(pairs: Iterable[tuple[str, str]]) -> tuple[float, int, int]:
    """Corpus WER over (reference, hypothesis) pairs: (wer, errors, reference words), both normalised."""
    errors = words = 0
    for ref, hyp in pairs:
        r, h = normalize(ref).split(), normalize(hyp).split()
        errors += edit_distance(r, h)
        words += len(r)
    return (errors / words if words else 0.0), errors, words
