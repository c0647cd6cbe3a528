"""The active grammar, handed to the stages before the matcher that can use it.

The recogniser takes a grammar as plain expressions (:mod:`edge_assistant.asr.grammar_bias`: it knows nothing
of intents) and the end-of-turn judge asks whether the words so far can still become a sentence of it. Both
come from the matcher's hassil grammar here, the one place that knows both sides. Nothing is expanded: the
car domain's templates stand for millions of sentences.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from edge_assistant.asr import grammar_bias as gb
from edge_assistant.intents.tolerant import TolerantConfig, clean


def grammar_expression(grammar: Any, known: Mapping[str, Sequence[str]] | None = None) -> list:
    """The grammar's sentence templates as expressions for :class:`~edge_assistant.asr.grammar_bias.GrammarBias`
    (range slots become NUMBER, wildcard slots ANY, text lists their values). ``known``: wildcard lists narrowed
    to known values (list name -> values, e.g. ``{"place": gazetteer}``). The other sentences stay as they are:
    a text that needs no unknown value is a sentence of both, so only a text with an unknown value starts the
    narrowed search. (Keeping only the sentences with a place was measured: every command then started a
    search, and "Can I make it to Munich?" in the e2e scene was lost to "New York"; benchmarks/RESULTS.md.)"""
    intents = grammar.intents
    narrowed = {name: gb.names(values) for name, values in (known or {}).items()}
    out: list = []
    for intent in intents.intents.values():
        for data in intent.data:
            rules = {**intents.expansion_rules, **data.expansion_rules}
            lists = {**intents.slot_lists, **data.slot_lists}
            out += [_expr(s.expression, rules, lists, narrowed) for s in data.sentences]
    return out


def _expr(e: Any, rules: dict, lists: dict, narrowed: dict | None = None) -> Any:
    from hassil import (
        Alternative,
        ListReference,
        Permutation,
        RangeSlotList,
        RuleReference,
        TextChunk,
        TextSlotList,
    )
    from hassil import Sequence as Seq

    if isinstance(e, TextChunk):
        return e.text
    if isinstance(e, Alternative):
        items = [_expr(i, rules, lists, narrowed) for i in e.items]
        return gb.alt(*items, "") if e.is_optional else gb.alt(*items)
    if isinstance(e, Permutation):
        parts = [_expr(i, rules, lists, narrowed) for i in e.items]
        return gb.alt(*(gb.seq(*[x for p in order for x in (p, " ")]) for order in itertools.permutations(parts)))
    if isinstance(e, Seq):
        return gb.seq(*(_expr(i, rules, lists, narrowed) for i in e.items))
    if isinstance(e, RuleReference):
        return _expr(rules[e.rule_name].expression, rules, lists, narrowed)
    if isinstance(e, ListReference):
        if narrowed and e.list_name in narrowed and not e.is_inline_range:
            return gb.seq(" ", narrowed[e.list_name], " ")
        lst = None if e.is_inline_range else lists[e.list_name]
        if lst is None or isinstance(lst, RangeSlotList):
            return gb.seq(" ", gb.NUMBER, " ")
        if isinstance(lst, TextSlotList):
            return gb.seq(" ", gb.alt(*(_expr(v.text_in, rules, lists) for v in lst.values)), " ")
        return gb.seq(" ", gb.ANY, " ")
    raise TypeError(f"unknown hassil expression {type(e).__name__}")


def recognition_grammar(matcher: Any, tokenizer: Any, config: gb.GrammarBiasConfig | None = None,
                        known: Mapping[str, Sequence[str]] | None = None) -> gb.GrammarBias:
    """The matcher's grammar compiled for the recogniser (``tokenizer``: the recogniser's).

    A free transcript is kept with no constrained search when, read as the matcher reads it (number words as
    digits, "80%" as "80 percent", fillers dropped), it is a sentence of the grammar. ``known``: wildcard lists
    with known values (``{"place": gazetteer}``); a transcript whose free text is none of them is searched again
    with the slot narrowed to them (:meth:`~edge_assistant.asr.grammar_bias.GrammarBias.choose`)."""
    tolerant = getattr(matcher, "config", None) or TolerantConfig()

    def compiled(values: Mapping[str, Sequence[str]] | None, narrowed: gb.GrammarBias | None) -> gb.GrammarBias:
        bias: gb.GrammarBias

        def fits(text: str) -> bool:
            return bias.accepts_text(clean(text, tolerant).text)

        bias = gb.GrammarBias(grammar_expression(matcher.grammar, values), tokenizer, config, fits=fits,
                              known=narrowed)
        return bias

    return compiled(None, compiled(known, None) if known else None)


class GrammarShape:
    """Where a transcript stands in the grammar, read as the matcher reads it (number words as digits, fillers
    dropped): :meth:`is_prefix` ("set the temperature to" can still become a sentence) and
    :meth:`continues_word` (a sentence goes on inside its last word: "turn on the heat" → "heated")."""

    def __init__(self, bias: gb.GrammarBias, tolerant: TolerantConfig | None = None) -> None:
        self.bias = bias
        self.tolerant = tolerant or TolerantConfig()

    def is_prefix(self, text: str) -> bool:
        return self.bias.is_prefix(clean(text, self.tolerant).text)

    def holds(self, text: str, words: str) -> bool:
        """True when ``text`` (a transcript), read as the matcher reads it, holds ``words`` read the same way, as
        whole words in a row ("Set the fan to level 3." holds "three"; "set the fan to let walk" holds no "0")."""
        have = clean(text, self.tolerant).text.lower().split()
        want = clean(words, self.tolerant).text.lower().split()
        n = len(want)
        return n > 0 and any(have[i : i + n] == want for i in range(len(have) - n + 1))

    def continues_word(self, text: str) -> bool:
        """With known values for the free-text slots (the gazetteer), a slot filled with one of them goes on only
        where a known value does: "can I make it to Munich" is complete, "to York" may still be "Yorkshire".
        A value the list does not hold may be any word cut short, as without the list."""
        words = clean(text, self.tolerant).text.rstrip(".?!, ")
        known = self.bias.known
        if known is not None and known.accepts_text(words):
            return known.continues_word(words)
        return self.bias.continues_word(words)
