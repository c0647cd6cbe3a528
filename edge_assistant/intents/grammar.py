"""Sentence grammars in Home Assistant's YAML format, loaded and checked before anything is matched.

A domain is one or more YAML files (or folders of them) in the format of Home Assistant's intent
sentences: ``language``, ``intents`` -> ``data`` -> ``sentences`` templates with ``(a|b)``, ``[optional]``,
``(a; b)`` permutations, ``{list}`` / ``{list:slot}`` references, ``<rule>`` expansions, plus ``lists``
(values, ranges, wildcards), ``expansion_rules`` and ``skip_words``. The ``hassil`` package does the
matching; this module only reads the files and refuses a bad one with a :class:`DataFormatError` naming
``file:line``, the key and what was expected (hassil itself parses templates lazily and fails at match
time with a bare message).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from edge_assistant.core.errors import DataFormatError

log = logging.getLogger(__name__)

#: Top-level keys of a Home Assistant sentence file; ``responses`` (spoken replies) is read and ignored.
TOP_KEYS = frozenset({"language", "intents", "lists", "expansion_rules", "skip_words", "settings", "responses"})
DATA_KEYS = frozenset({"sentences", "slots", "requires_context", "excludes_context", "expansion_rules", "lists",
                       "response", "metadata", "required_keywords", "inferred_domain", "name_domains", "settings"})
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Grammar:
    """The loaded domain: hassil's ``Intents`` plus what the tolerant layer needs.

    ``vocabulary`` is every literal word the templates and list values can match (for near-miss
    correction); ``wildcard_lists`` names the lists that take free text (place names, ...).
    """

    intents: Any                   # hassil.Intents
    files: tuple[Path, ...]
    vocabulary: frozenset[str]
    wildcard_lists: frozenset[str]

    @property
    def names(self) -> tuple[str, ...]:
        """Intent names in file order."""
        return tuple(self.intents.intents)


def car_sentences() -> Path:
    """The folder of the shipped car domain."""
    return Path(str(resources.files("edge_assistant.intents") / "sentences" / "car"))


def yaml_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """Files named, and the ``*.yaml``/``*.yml`` files of folders named (sorted), in the order given."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise DataFormatError(str(p), "folder holds no sentence files (expected *.yaml)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataFormatError(str(p), "no such sentence file or folder")
    return out


def load_grammar(paths: Iterable[str | Path] | str | Path, provided_lists: Iterable[str] = ()) -> Grammar:
    """Read, check and merge the sentence files under ``paths`` into one :class:`Grammar`.

    ``provided_lists``: names of ``{lists}`` the product supplies at run time rather than in a file (Home
    Assistant's ``{name}``, ``{area}``: the entities of one installation); other undefined lists are errors.
    """
    from hassil import Intents
    from hassil.util import merge_dict

    files = yaml_files(paths)
    merged: dict[str, Any] = {}
    for f in files:
        data, node = _read_yaml(f)
        _check_file(f, data, node)
        merge_dict(merged, data)
    where = ", ".join(map(str, files))
    if not merged.get("intents"):
        raise DataFormatError(where, "no intents defined (expected an 'intents:' mapping in at least one file)")
    merged.setdefault("language", "en")
    try:
        intents = Intents.from_dict(merged)
    except (ValueError, KeyError, TypeError, AssertionError) as e:  # checked above; a last line of defence
        raise DataFormatError(where, f"not a valid sentence grammar: {e}") from e
    _check_references(intents, files, frozenset(provided_lists))
    wild = frozenset(n for n, lst in _all_lists(intents) if type(lst).__name__ == "WildcardSlotList")
    return Grammar(intents, tuple(files), frozenset(_vocabulary(intents)), wild)


# ------------------------------------------------------------------------------------------ reading
def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataFormatError(str(path), f"cannot read sentence file: {e}") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise DataFormatError(where, f"not valid YAML ({getattr(e, 'problem', None) or e})") from e
    return data, node


def _line(node: yaml.Node | None, *keys: str | int) -> int | None:
    """1-based line of the entry at ``keys`` (a mapping key's own line, a list item's line) in a composed
    YAML node tree; the deepest entry found when the path ends early."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _fail(path: Path, node: yaml.Node | None, keys: tuple[str | int, ...], reason: str) -> DataFormatError:
    line = _line(node, *keys)
    dotted = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    return DataFormatError(f"{path}:{line}" if line else str(path), f"{dotted}: {reason}" if dotted else reason)


# ------------------------------------------------------------------------------------------ checks
def _check_file(path: Path, data: Any, node: yaml.Node | None) -> None:
    if not isinstance(data, Mapping):
        raise _fail(path, node, (), f"expected a mapping with 'language' and 'intents', got {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(path, node, (key,), f"unknown key (expected one of {', '.join(sorted(TOP_KEYS))})")
    if "language" in data and not isinstance(data["language"], str):
        raise _fail(path, node, ("language",), "expected a language code such as 'en'")
    if not isinstance(data.get("skip_words", []), list):
        raise _fail(path, node, ("skip_words",), "expected a list of words")
    _check_lists(path, node, data.get("lists", {}), ("lists",))
    _check_rules(path, node, data.get("expansion_rules", {}), ("expansion_rules",))
    intents = data.get("intents", {})
    if not isinstance(intents, Mapping):
        raise _fail(path, node, ("intents",), "expected a mapping of intent name -> {data: [...]}")
    for name, body in intents.items():
        keys: tuple[str | int, ...] = ("intents", name)
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list) or not body["data"]:
            raise _fail(path, node, keys, "expected 'data:' with a list of sentence blocks")
        for i, block in enumerate(body["data"]):
            bkeys = (*keys, "data", i)
            if not isinstance(block, Mapping):
                raise _fail(path, node, bkeys, "expected a mapping with 'sentences:'")
            for key in block:
                if key not in DATA_KEYS:
                    raise _fail(path, node, (*bkeys, key), f"unknown key (expected one of {', '.join(sorted(DATA_KEYS))})")
            sentences = block.get("sentences")
            if not isinstance(sentences, list) or not sentences:
                raise _fail(path, node, (*bkeys, "sentences"), "expected a non-empty list of sentence templates")
            for j, template in enumerate(sentences):
                _check_template(path, node, (*bkeys, "sentences", j), template)
            if not isinstance(block.get("slots", {}), Mapping):
                raise _fail(path, node, (*bkeys, "slots"), "expected a mapping of slot name -> fixed value")
            _check_lists(path, node, block.get("lists", {}), (*bkeys, "lists"))
            _check_rules(path, node, block.get("expansion_rules", {}), (*bkeys, "expansion_rules"))


def _check_template(path: Path, node: yaml.Node | None, keys: tuple[str | int, ...], template: Any) -> None:
    from hassil import parse_sentence

    if not isinstance(template, str) or not template.strip():
        raise _fail(path, node, keys, f"expected a sentence template (text), got {template!r}")
    try:
        parse_sentence(template, keep_text=True)
    except Exception as e:  # hassil raises ParseError, IndexError, ... on malformed templates
        raise _fail(path, node, keys, f"malformed template {template!r}: expected balanced (a|b), [optional], "
                                      f"{{list}} and <rule> syntax ({type(e).__name__}: {e})") from e


def _check_rules(path: Path, node: yaml.Node | None, rules: Any, keys: tuple[str | int, ...]) -> None:
    if not isinstance(rules, Mapping):
        raise _fail(path, node, keys, "expected a mapping of rule name -> template")
    for name, body in rules.items():
        _check_template(path, node, (*keys, name), body)


def _check_lists(path: Path, node: yaml.Node | None, lists: Any, keys: tuple[str | int, ...]) -> None:
    if not isinstance(lists, Mapping):
        raise _fail(path, node, keys, "expected a mapping of list name -> {values|range|wildcard}")
    for name, body in lists.items():
        lkeys = (*keys, name)
        if not isinstance(body, Mapping):
            raise _fail(path, node, lkeys, "expected 'values:', 'range:' or 'wildcard: true'")
        if "values" in body:
            if not isinstance(body["values"], list) or not body["values"]:
                raise _fail(path, node, (*lkeys, "values"), "expected a non-empty list")
            for i, v in enumerate(body["values"]):
                if isinstance(v, Mapping):
                    if not isinstance(v.get("in"), str):
                        raise _fail(path, node, (*lkeys, "values", i), "expected 'in:' text (and 'out:' value)")
                elif not isinstance(v, str):
                    raise _fail(path, node, (*lkeys, "values", i), f"expected text or {{in, out}}, got {v!r}")
        elif "range" in body:
            r = body["range"]
            rkeys = (*lkeys, "range")
            if not isinstance(r, Mapping) or "from" not in r or "to" not in r:
                raise _fail(path, node, rkeys, "expected 'from:' and 'to:' integers")
            try:
                lo, hi, step = int(r["from"]), int(r["to"]), int(r.get("step", 1))
                if "multiplier" in r:
                    float(r["multiplier"])
            except (TypeError, ValueError) as e:
                raise _fail(path, node, rkeys, f"expected integer from/to/step and a number multiplier ({e})") from e
            if lo > hi or step <= 0:
                raise _fail(path, node, rkeys, f"expected from <= to and step > 0, got {lo}..{hi} step {step}")
            if r.get("type", "number") not in ("number", "percentage", "temperature"):
                raise _fail(path, node, (*rkeys, "type"), "expected number, percentage or temperature")
            if r.get("fractions") not in (None, "halves", "tenths"):
                raise _fail(path, node, (*rkeys, "fractions"), "expected halves or tenths")
        elif body.get("wildcard") is not True:
            raise _fail(path, node, lkeys, "expected 'values:', 'range:' or 'wildcard: true'")


def _walk(expr: Any) -> Iterator[Any]:
    yield expr
    for item in getattr(expr, "items", ()):
        yield from _walk(item)


def _all_lists(intents: Any) -> Iterator[tuple[str, Any]]:
    yield from intents.slot_lists.items()
    for intent in intents.intents.values():
        for data in intent.data:
            yield from data.slot_lists.items()


def _check_references(intents: Any, files: list[Path], provided: frozenset[str]) -> None:
    """Every ``{list}`` and ``<rule>`` a template reaches (through the rules it uses) is defined, globally,
    in its block or (lists) by the product at run time."""
    from hassil import ListReference, RuleReference

    where = ", ".join(map(str, files))
    for intent in intents.intents.values():
        for i, data in enumerate(intent.data):
            rules = {**intents.expansion_rules, **data.expansion_rules}
            lists = {**intents.slot_lists, **data.slot_lists}
            for sentence in data.sentences:
                sentence.get_required_clauses(rules)  # hassil's prefilter, computed now instead of at a match
                todo, seen = [sentence.expression], set()
                while todo:
                    for e in _walk(todo.pop()):
                        what = None
                        if isinstance(e, RuleReference):
                            if e.rule_name not in rules:
                                what = (f"<{e.rule_name}>", "no expansion_rules define", sorted(rules))
                            elif e.rule_name not in seen:
                                seen.add(e.rule_name)
                                todo.append(rules[e.rule_name].expression)
                        elif (isinstance(e, ListReference) and not e.is_inline_range and e.list_name not in lists
                              and e.list_name not in provided):
                            what = (f"{{{e.list_name}}}", "no lists define", sorted(lists))
                        if what:
                            raise DataFormatError(where, f"intents.{intent.name}.data[{i}]: template "
                                                         f"{sentence.text!r} uses {what[0]}, which {what[1]} "
                                                         f"(expected one of: {', '.join(what[2]) or 'none'})")


def _vocabulary(intents: Any) -> set[str]:
    """Literal words of every template, rule and text-list value."""
    from hassil import TextChunk, TextSlotList

    exprs = list(intents.expansion_rules.values())
    for intent in intents.intents.values():
        for data in intent.data:
            exprs += data.sentences + list(data.expansion_rules.values())
    roots = [s.expression for s in exprs]
    for _, lst in _all_lists(intents):
        if isinstance(lst, TextSlotList):
            roots += [v.text_in for v in lst.values]
    words: set[str] = set()
    for root in roots:
        for e in _walk(root):
            if isinstance(e, TextChunk):
                words.update(_WORD.findall(e.text.lower()))
    words.update(w.lower() for w in intents.skip_words)
    return words
