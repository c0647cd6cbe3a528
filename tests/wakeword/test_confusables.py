"""Confusables come from the phrase, a pronunciation dictionary and a word list, never an evaluation set."""

from __future__ import annotations

import pytest

from edge_assistant.core.errors import ConfigError
from edge_assistant.modelbuild.wakeword.confusables import compound, derive, distance, phonemes


def test_distance_weights_sound_classes() -> None:
    assert distance(("AH", "L"), ("AH", "L")) == 0.0
    assert distance(("AH", "L"), ("EH", "L")) == 0.5  # vowel for vowel
    assert distance(("AH", "L"), ("AH", "K")) == 1.0  # liquid for stop
    assert distance(("AH",), ()) == 1.0
    assert distance(("K", "AE", "T"), ("B", "AE", "T", "S")) == distance(("B", "AE", "T", "S"), ("K", "AE", "T"))


def test_alexa_confusables_sound_like_it() -> None:
    c = derive("Alexa")
    assert c.phonemes == ("AH", "L", "EH", "K", "S", "AH")
    assert {"alexis", "lexus", "election"} <= set(c.neighbours)
    assert {"lex", "likes"} <= set(c.partials)
    assert "a lexus" in c.splits
    assert "alexa" not in c.near and not any("alexa" in text.split() for text in c.near)
    assert len(c.common_words) > 2000 and c.common_words[:3] == ("the", "to", "and")
    for text in c.near:  # every sound-alike is near the phrase or a part of it by construction
        assert all(w.isalpha() for w in text.split())


def test_derivation_is_deterministic() -> None:
    assert derive("hey jarvis").digest() == derive("hey jarvis").digest()
    assert derive("hey jarvis").digest() != derive("Alexa").digest()


def test_bad_phrases_are_named() -> None:
    with pytest.raises(ConfigError, match="'qzxv' is not in the CMU"):
        phonemes("hey qzxv")
    with pytest.raises(ConfigError, match="needs at least 3"):
        derive("a")


def test_a_compound_of_two_dictionary_words_is_spoken_as_both() -> None:
    """"snowboy" is not in the dictionary; "snow" + "boy" are. Its parts stay negatives (partial phrases), but
    never the two words that together are the phrase itself."""
    assert compound("snowboy") == ("snow", "boy") and phonemes("snowboy") == phonemes("snow boy")
    assert compound("qzxvqzxv") is None and compound("ab") is None
    c = derive("snowboy")
    assert {"snow", "boy"} <= set(c.partials)
    assert "snow boy" not in c.splits and c.splits
    assert all(phonemes(text) != c.phonemes for text in c.near)
