"""Another product's domain from sentence files with no code change, and bad files refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.agents.router import AgentRouter
from edge_assistant.core.errors import DataFormatError
from edge_assistant.intents import IntentMatcher, parse
from edge_assistant.intents.grammar import car_sentences, load_grammar


@pytest.fixture(scope="module")
def kitchen_dir() -> Path:
    return Path(__file__).parent / "data" / "kitchen"


@pytest.fixture(scope="module")
def kitchen(kitchen_dir: Path) -> IntentMatcher:
    return IntentMatcher.from_paths(kitchen_dir)


@pytest.mark.parametrize(("text", "intent", "slots"), [
    ("make me a large coffee", "kitchen.brew", {"size": 3, "drink": "coffee"}),
    ("brew an espresso please", "kitchen.brew", {"drink": "espresso"}),
    ("cappuccino small to go", "kitchen.brew", {"drink": "cappuccino", "size": 1}),  # a permutation
    ("preheat the oven to 180 degrees", "kitchen.oven", {"temperature": 180}),
    ("start a timer for 45 seconds", "kitchen.timer", {"seconds": 45}),  # an inline range {1..59:seconds}
    ("remind me in 10 minutes", "kitchen.timer", {"minutes": 10}),
    ("how do I bake banana bread", "kitchen.recipe", {"recipe": "banana bread"}),  # a wildcard
])
def test_non_car_domain_loads_from_yaml(kitchen: IntentMatcher, text: str, intent: str, slots: dict) -> None:
    got = kitchen.match(text)
    assert (got.name, got.slots, got.confidence) == (intent, slots, 1.0)


def test_domains_do_not_leak_into_each_other(kitchen: IntentMatcher) -> None:
    assert kitchen.match("why is the tyre light on").name == "unknown"
    assert parse("make me a large coffee").name == "unknown"
    assert kitchen.match("set the oven to 183 degrees").name == "unknown"  # the range steps by 5
    assert set(kitchen.names) == {"kitchen.brew", "kitchen.oven", "kitchen.timer", "kitchen.recipe", "unknown"}


def test_tolerant_layer_works_for_any_domain(kitchen: IntentMatcher) -> None:
    got = kitchen.match("uh, preheat the oven to one hundred and eighty degrees")
    assert (got.name, got.slots) == ("kitchen.oven", {"temperature": 180}) and got.confidence < 1.0
    near = kitchen.match("make me a lage coffee")  # 'lage': one letter from the grammar's 'large'
    assert (near.name, near.slots["size"]) == ("kitchen.brew", 3) and near.confidence < got.confidence


def test_the_router_answers_another_domain_honestly(kitchen: IntentMatcher) -> None:
    router = AgentRouter(car_genius=None)  # type: ignore[arg-type]  # never reached for these intents
    ans = router.answer(kitchen.match("make me a large coffee"))
    assert ans.agent == "router" and "can't do that yet" in ans.text
    assert "can't do that yet" in router.answer(parse("sing me a song")).text


def test_car_files_are_package_data() -> None:
    names = sorted(p.name for p in car_sentences().glob("*.yaml"))
    assert "_common.yaml" in names and len(names) >= 7
    assert len(load_grammar(car_sentences()).names) >= 15


# ------------------------------------------------------------------------------------------ bad files
def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "line", "words"), [
    ("language: en\nintents:\n  a.b:\n    data:\n      - sentences:\n          - \"turn (on|off the light\"\n",
     6, ["intents.a.b.data[0].sentences[0]", "malformed template", "balanced"]),
    ("language: en\nintents:\n  a.b:\n    data:\n      - sentences: [\"x\"\n", None, ["not valid YAML"]),
    ("language: en\nintents:\n  a.b:\n    data:\n      - sentence:\n          - \"hi\"\n",
     5, ["intents.a.b.data[0].sentence", "unknown key", "sentences"]),
    ("language: en\nintents:\n  a.b:\n    sentences: [\"hi\"]\n", 3, ["intents.a.b", "expected 'data:'"]),
    ("language: en\nlists:\n  n:\n    range: {from: 10, to: 1}\nintents:\n  a.b:\n    data:\n      - sentences: [\"{n}\"]\n",
     4, ["lists.n.range", "from <= to"]),
    ("language: en\nlists:\n  n:\n    values: oops\nintents: {}\n", 4, ["lists.n.values", "non-empty list"]),
    ("- just\n- a list\n", None, ["expected a mapping"]),
    ("language: en\nintent:\n  a.b: {}\n", 2, ["intent", "unknown key"]),
])
def test_malformed_file_names_file_line_and_expectation(tmp_path: Path, text: str, line: int | None,
                                                        words: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError) as err:
        load_grammar(path)
    msg = str(err.value)
    assert str(path) in msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    for w in words:
        assert w in msg, msg


def test_undefined_list_or_rule_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "language: en\nintents:\n  a.b:\n    data:\n      - sentences: [\"set {thing} now\"]\n")
    with pytest.raises(DataFormatError, match=r"\{thing\}, which no lists define"):
        load_grammar(path)
    path = _write(tmp_path, "language: en\nintents:\n  a.b:\n    data:\n      - sentences: [\"<greet> you\"]\n")
    with pytest.raises(DataFormatError, match=r"<greet>, which no expansion_rules define"):
        load_grammar(path)


def test_missing_paths_and_empty_domains_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such sentence file"):
        load_grammar(tmp_path / "nope.yaml")
    with pytest.raises(DataFormatError, match=r"no sentence files \(expected \*\.yaml\)"):
        load_grammar(tmp_path)
    only_lists = _write(tmp_path, "language: en\nlists:\n  x:\n    values: [a]\n")
    with pytest.raises(DataFormatError, match="no intents defined"):
        load_grammar(only_lists)


def test_home_assistant_conventions_load_unchanged() -> None:
    """Run-time lists ({name}, {area}), ``responses``, fixed slots and a shared rule using per-intent rules."""
    folder = Path(__file__).parent / "data" / "home"
    with pytest.raises(DataFormatError, match=r"\{name\}, which no lists define"):
        load_grammar(folder)  # {name} is the installation's: it must be supplied
    m = IntentMatcher.from_paths(folder, lists={"name": {"desk lamp": "light.desk"}, "area": ["living room"]})
    assert m.match("switch on the desk lamp").slots == {"name": "light.desk"}
    on = m.match("turn on the lights in the living room")
    assert (on.name, on.slots) == ("HassTurnOn", {"area": "living room", "domain": "light"})
    assert m.match("what is the humidity in the living room").name == "HassGetHumidity"
    assert m.match("turn on the dsek lamp").confidence < 1.0  # run-time values count as grammar words
