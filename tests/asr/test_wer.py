"""The WER normaliser and number words."""

from __future__ import annotations

import pytest

from edge_assistant.asr.wer import edit_distance, normalize, number_to_words, ordinal_words, wer


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"), (100, "one hundred"),
    (101, "one hundred one"), (999, "nine hundred ninety nine"), (1000, "one thousand"),
    (1984, "one thousand nine hundred eighty four"), (2_000_005, "two million five"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_ordinals():
    assert [ordinal_words(n) for n in (1, 2, 3, 5, 12, 20, 21, 100)] == [
        "first", "second", "third", "fifth", "twelfth", "twentieth", "twenty first", "one hundredth"]


@pytest.mark.parametrize(("text", "norm"), [
    ("HE HOPED THERE WOULD BE STEW", "he hoped there would be stew"),
    ("Look, the seam is now broken, it couldn't stand the jerk.", "look the seam is now broken it couldnt stand the jerk"),
    ("Among the 12 dead were the Doctor", "among the twelve dead were the doctor"),
    ("a loud \u201cdid-he-do-it\u201d call", "a loud did he do it call"),
    ("It costs 2.5% & 1,200 dollars on the 21st", "it costs two point five percent and one thousand two hundred dollars on the twenty first"),
    ("Never put off \u2019til tomorrow", "never put off til tomorrow"),
])
def test_normalize(text, norm):
    assert normalize(text) == norm


def test_wer_counts():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    rate, errors, words = wer([("The cat sat.", "the cat sat"), ("one two", "1 2 3")])
    assert (errors, words) == (1, 5) and rate == pytest.approx(0.2)
    assert wer([])[0] == 0.0


_PAIRS = [
    ("The cat sat on the mat.", "the cat sat on a mat"),
    ("HE HOPED THERE WOULD BE STEW FOR DINNER", "he hoped there would be stew for dinner turnips"),
    ("It costs 2.5% & 1,200 dollars on the 21st", "it cost two point five percent and 1200 dollars on the twenty first"),
    ("Ask not what your country can do for you", "ask what your country can do"),
    ("Look, the seam is now broken, it couldn't stand the jerk.", "look the seem is broken it could not stand jerk"),
    ("one two three", ""),
]


def test_wer_equals_jiwer():
    """Our edit distance and corpus WER equal jiwer's (S + D + I) on the same normalised words."""
    import jiwer

    for ref, hyp in _PAIRS:
        out = jiwer.process_words(normalize(ref), normalize(hyp))
        assert edit_distance(normalize(ref).split(), normalize(hyp).split()) == \
            out.substitutions + out.deletions + out.insertions, (ref, hyp)
    rate, errors, words = wer(_PAIRS)
    out = jiwer.process_words([normalize(r) for r, _ in _PAIRS], [normalize(h) for _, h in _PAIRS])
    assert errors == out.substitutions + out.deletions + out.insertions
    assert words == out.substitutions + out.deletions + out.hits
    assert rate == pytest.approx(out.wer)


def test_bench_wer_counts_break_errors_down():
    """The benchmark's jiwer counts: S/D/I per normaliser, summing to our errors under ours."""
    from edge_assistant.bench.asr import normalisers, wer_counts

    norms = normalisers()
    refs, hyps = [r for r, _ in _PAIRS], [h for _, h in _PAIRS]
    ours = wer_counts(refs, hyps, norms["ours"])
    assert ours["errors"] == wer(_PAIRS)[1] == ours["substitutions"] + ours["deletions"] + ours["insertions"]
    assert ours["words"] == wer(_PAIRS)[2]
    assert wer_counts(["the cat sat"], ["the cat sat down"], norms["ours"])["insertions"] == 1
    assert wer_counts(["the cat sat"], ["the sat"], norms["ours"])["deletions"] == 1
    # Whisper's normaliser: digits, contractions expanded, British spelling Americanised.
    whisper = norms["whisper"]
    assert whisper("It couldn't cost twenty-one dollars, colour!") == whisper("it could not cost $21 color")
    assert wer_counts(["Twenty one colours"], ["21 colors"], whisper)["errors"] == 0
    assert wer_counts(["Twenty one colours"], ["21 colors"], norms["ours"])["errors"] == 1  # colours/colors
