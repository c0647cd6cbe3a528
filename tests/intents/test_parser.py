"""The intent parser on typed questions and on the loose text a recogniser produces."""

from __future__ import annotations

import pytest

from edge_assistant.intents import INTENTS, parse
from edge_assistant.intents.parser import normalise


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Why is the tyre light on?", "vehicle.tyres"),
        (" why is the tire light on", "vehicle.tyres"),
        ("Is the front left tire low?", "vehicle.tyres"),
        ("What is my state of charge?", "vehicle.battery"),
        ("how much battery do i have", "vehicle.battery"),
        ("How much range do I have left?", "vehicle.range"),
        ("Can I drive one hundred and twenty miles?", "vehicle.range"),
        ("what does the check engine light mean", "vehicle.warnings"),
        ("Are there any trouble codes?", "vehicle.warnings"),
        ("When will charging finish?", "vehicle.charging"),
        ("Is the car due for service?", "vehicle.service"),
        ("What's the weather like in Paris?", "unknown"),
        ("", "unknown"),
    ],
)
def test_questions_map_to_intents(text: str, intent: str) -> None:
    got = parse(text)
    assert got.name == intent, got
    assert got.name in INTENTS
    assert 0.0 <= got.confidence <= 1.0


@pytest.mark.parametrize(
    ("text", "wheel"),
    [("front left tyre", "Row1.Left"), ("the rear right tire", "Row2.Right"), ("back left wheel", "Row2.Left")],
)
def test_wheel_slot(text: str, wheel: str) -> None:
    assert parse(text).slots["wheel"] == wheel


@pytest.mark.parametrize(
    ("text", "km"),
    [
        ("can I make it 120 km", 120.0),
        ("can I make it 120 kilometres", 120.0),
        ("can I drive one hundred and twenty miles", 193.121),
        ("two thousand five hundred kilometers", 2500.0),
        ("go 12.5 km", 12.5),
    ],
)
def test_distance_slot_in_km(text: str, km: float) -> None:
    assert parse(text).slots["distance_km"] == pytest.approx(km, abs=1e-3)


def test_normalise_keeps_decimals_and_unifies_spelling() -> None:
    assert normalise("Tires at 2.4 bar. Kilometres?") == "tyres at 2.4 bar km"
    assert normalise("twenty-one") == "twenty-one"  # hyphenated forms stay words: no false number


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("How long to charge to 80 percent at 50 kW?", "travel.charge_time"),
        ("Where should I stop to charge?", "travel.charge_stop"),
        ("When should I charge on the way to Munich?", "travel.charge_stop"),
        ("Where am I?", "travel.location"),
        ("How far have I driven this trip?", "travel.trip"),
        ("When will charging finish?", "vehicle.charging"),  # the car's own charging state, not a plan
    ],
)
def test_travel_intents(text: str, intent: str) -> None:
    assert parse(text).name == intent


def test_charging_slots() -> None:
    slots = parse("how long to charge from 20 % to 80 per cent on a 150 kW charger").slots
    assert slots == {"power_kw": 150.0, "from_pct": 20.0, "target_pct": 80.0}
