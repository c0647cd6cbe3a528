"""Seeded random sentences from a grammar, with the intent and slots each one should give.

A random walk over the templates: one alternative of each group, each optional part half of the time,
a random value of each list or range (whole numbers as digits), a free-text slot filled from
``wildcard_values``. Used to check that every intent's sentences come back as that intent (no two
intents claim the same sentence) and, later, to measure the matcher on noisy versions of them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edge_assistant.intents.grammar import Grammar

#: Free text for wildcard slots (place names and the like).
WILDCARD_VALUES = ("Munich", "Lake Garda", "the airport", "Stuttgart main station", "Boston", "Berlin")


@dataclass(frozen=True)
class Sample:
    """One generated sentence and what matching it should give."""

    text: str
    intent: str
    slots: dict[str, object]


def sample_grammar(grammar: Grammar, per_intent: int, seed: int = 0,
                   wildcard_values: Sequence[str] = WILDCARD_VALUES) -> list[Sample]:
    """``per_intent`` sentences of every intent, in a reproducible order."""
    rng = random.Random(seed)
    out: list[Sample] = []
    intents = grammar.intents
    for intent in intents.intents.values():
        for _ in range(per_intent):
            data = rng.choice(intent.data)
            sentence = rng.choice(data.sentences)
            rules = {**intents.expansion_rules, **data.expansion_rules}
            lists = {**intents.slot_lists, **data.slot_lists}
            slots: dict[str, object] = {}
            words = list(_walk(sentence.expression, rng, rules, lists, slots, wildcard_values))
            slots.update(data.slots)
            text = " ".join("".join(words).split())
            out.append(Sample(text, intent.name, slots))
    return out


def _walk(expr: Any, rng: random.Random, rules: dict, lists: dict, slots: dict[str, object],
          wild: Sequence[str]) -> Iterator[str]:
    from hassil import (
        Alternative,
        ListReference,
        Permutation,
        RangeSlotList,
        RuleReference,
        TextChunk,
        TextSlotList,
        WildcardSlotList,
    )
    from hassil import (
        Sequence as Seq,
    )

    if isinstance(expr, TextChunk):
        yield expr.text
    elif isinstance(expr, Alternative):
        items = list(expr.items)
        if expr.is_optional and rng.random() < 0.5:
            return
        yield from _walk(rng.choice(items), rng, rules, lists, slots, wild)
    elif isinstance(expr, Permutation):
        items = list(expr.items)
        rng.shuffle(items)
        for item in items:
            yield from _walk(item, rng, rules, lists, slots, wild)
            yield " "
    elif isinstance(expr, Seq):
        for item in expr.items:
            yield from _walk(item, rng, rules, lists, slots, wild)
    elif isinstance(expr, RuleReference):
        yield from _walk(rules[expr.rule_name].expression, rng, rules, lists, slots, wild)
    elif isinstance(expr, ListReference):
        if expr.is_inline_range:
            start, stop, step = expr.get_inline_range()  # type: ignore[misc]
            lst: Any = RangeSlotList(name=None, start=start, stop=stop, step=step)
        else:
            lst = lists[expr.list_name]
        if isinstance(lst, RangeSlotList):
            n = rng.randrange(lst.start, lst.stop + 1, lst.step)
            value = n * lst.multiplier if lst.multiplier is not None else n
            slots[expr.slot_name] = round(value, 6) if isinstance(value, float) else value
            yield f" {n} "
        elif isinstance(lst, TextSlotList):
            v = rng.choice(lst.values)
            slots[expr.slot_name] = v.value_out
            yield " "
            yield from _walk(v.text_in, rng, rules, lists, {}, wild)
            yield " "
        elif isinstance(lst, WildcardSlotList):
            text = rng.choice(list(wild))
            slots[expr.slot_name] = text
            yield f" {text} "
