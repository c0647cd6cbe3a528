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
