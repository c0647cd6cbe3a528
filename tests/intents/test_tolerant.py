"""ASR-style text: number words, punctuation, fillers and near-miss words are repaired at a cost in
confidence; gibberish and requests outside the grammar are not guessed."""

from __future__ import annotations

import pytest

from edge_assistant.intents import parse
from edge_assistant.intents.matcher import IntentMatcher
from edge_assistant.intents.parser import car_matcher
from edge_assistant.intents.tolerant import (
    NearMiss,
    Repaired,
    TolerantConfig,
    clean,
    numbers_to_digits,
    osa_distance,
)


@pytest.mark.parametrize(("words", "digits"), [
    ("one hundred and twenty miles", "120 miles"),
    ("two thousand five hundred km", "2500 km"),
    ("twenty one point five degrees", "21.5 degrees"),
    ("a hundred km", "100 km"),
    ("which one is low", "which one is low"),  # a lone "one" is a word
    ("from twenty to eighty", "from 20 to 80"),
    ("two three", "2 3"),
])
def test_number_words_become_digits(words: str, digits: str) -> None:
    assert " ".join(numbers_to_digits(words.split())[0]) == digits


def test_clean_records_each_repair_and_its_cost() -> None:
    got = clean("Uh, set the the temperature to Twenty-One degrees!")
    assert got.text == "set the temperature to 21 degrees"
    assert len(got.repairs) == 3 and got.confidence == pytest.approx(0.85)
    assert clean("Why is the tyre light on?!").confidence == 1.0  # punctuation alone costs nothing
    assert clean("charge to 80% on 2,500 km").text == "charge to 80 percent on 2500 km"


def test_osa_distance_counts_a_swap_as_one_edit() -> None:
    assert osa_distance("tyer", "tyre", 2) == 1
    assert osa_distance("tyre", "tire", 2) == 1
    assert osa_distance("battery", "bakery", 1) == 2  # over the limit: limit + 1


def test_near_miss_refuses_ties_and_short_words() -> None:
    near = NearMiss(frozenset({"lamp", "lamb", "tyre", "is"}))
    assert near.closest("lams") is None  # one edit from both 'lamp' and 'lamb'
    assert near.closest("iz") is None  # too short to correct
    assert near.closest("tyer") == ("tyre", 1)
    assert near.correct(Repaired("tyer lamz")) is not None
    assert near.correct(Repaired("nothing near here")) is None


@pytest.mark.parametrize(("text", "intent", "slots"), [
    ("set the temperature to twenty one degrees", "climate.set_temperature", {"temperature": 21, "unit": "celsius"}),
    ("set the temperature to twenty-one degrees", "climate.set_temperature", {"temperature": 21, "unit": "celsius"}),
    ("um can I make it one hundred and twenty kilometres", "vehicle.range", {"distance_km": 120}),
    ("uh why is the the tyre light on", "vehicle.tyres", {}),
    ("why is the tyer light on", "vehicle.tyres", {}),
    ("is the front left tyre lowe", "vehicle.tyres", {"wheel": "Row1.Left"}),
    ("how long to charge to eighty percent on a fifty kilowatt charger", "travel.charge_time",
     {"target_pct": 80, "power_kw": 50}),
    ("navigate to, uh, Marienplatz", "navigation.navigate", {"place": "Marienplatz"}),
])
def test_asr_noise_matches_with_lower_confidence(text: str, intent: str, slots: dict) -> None:
    got = parse(text)
    assert (got.name, got.slots) == (intent, slots), got
    assert 0.6 <= got.confidence < 1.0


def test_clean_text_is_matched_at_full_confidence_and_each_repair_costs() -> None:
    clean_text = parse("set the temperature to 21 degrees")
    words = parse("set the temperature to twenty one degrees")
    words_and_filler = parse("uh set the temperature to twenty one degrees")
    one_miss = parse("why is the tyer light on")
    two_misses = parse("why is the tyer lihgt on")
    assert clean_text.confidence == 1.0
    assert 1.0 > words.confidence > words_and_filler.confidence
    assert one_miss.name == two_misses.name == "vehicle.tyres"
    assert 1.0 > one_miss.confidence > two_misses.confidence
    assert parse("Why is the tyre light on?!").confidence == 1.0


@pytest.mark.parametrize("text", [
    "blorp flibber wagga", "asdf qwerty zxcv", "the the the", "uh um", "...", "Thank you.",
    "What's the weather like in Paris?", "play some jazz", "call my mother", "what is the capital of France",
    "tell me a joke", "order a pizza", "how tall is mount everest", "set an alarm for seven",
    "turn on the living room lights", "open the garage door",
])
def test_gibberish_and_out_of_domain_are_not_guessed(text: str) -> None:
    got = parse(text)
    assert (got.name, got.confidence, got.slots) == ("unknown", 0.0, {}), got


def test_too_many_repairs_are_not_guessed() -> None:
    assert parse("whyy iss thee tyer lihgt onn").name == "unknown"  # more unknown words than max_corrections


def test_below_the_threshold_the_request_is_not_guessed() -> None:
    strict = IntentMatcher(car_matcher().grammar, TolerantConfig(min_confidence=0.9))
    assert strict.match("why is the tyre light on").name == "vehicle.tyres"
    assert strict.match("why is the tyer light on").name == "unknown"  # 0.85 < 0.9


def test_a_repair_wins_over_a_wildcard_only_when_it_leaves_it_fewer_words() -> None:
    charger = parse("navigate to the next chrage point")  # 'chrage' swallowed by {place} as heard
    assert (charger.name, charger.slots) == ("navigation.charger", {}) and charger.confidence < 1.0
    place = parse("navigate to Lamps")  # one letter from the grammar's 'lamp': a place name, left alone
    assert (place.name, place.slots, place.confidence) == ("navigation.navigate", {"place": "Lamps"}, 1.0)
