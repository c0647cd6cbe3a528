"""Random sentences of every intent come back as that intent with the same slots: no two intents claim
one sentence, and every list, range and rule of the grammar is reachable and typed as sampled."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.intents import IntentMatcher, car_matcher
from edge_assistant.intents.sample import sample_grammar


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_car_grammar_sentences_come_back(seed: int) -> None:
    m = car_matcher()
    samples = sample_grammar(m.grammar, per_intent=25, seed=seed)
    assert {s.intent for s in samples} == set(m.names) - {"unknown"}
    wrong = [(s, m.match(s.text)) for s in samples]
    wrong = [(s.text, s.intent, s.slots, got.name, got.slots) for s, got in wrong
             if (got.name, got.slots, got.confidence) != (s.intent, s.slots, 1.0)]
    assert not wrong, wrong[:5]


def test_samples_are_reproducible_and_vary_with_the_seed() -> None:
    g = car_matcher().grammar
    assert sample_grammar(g, 5, seed=7) == sample_grammar(g, 5, seed=7)
    assert sample_grammar(g, 5, seed=7) != sample_grammar(g, 5, seed=8)


def test_another_domain_samples_come_back() -> None:
    m = IntentMatcher.from_paths(Path(__file__).parent / "data" / "kitchen")
    for s in sample_grammar(m.grammar, per_intent=20, seed=3):
        got = m.match(s.text)
        assert (got.name, got.slots) == (s.intent, s.slots), s
