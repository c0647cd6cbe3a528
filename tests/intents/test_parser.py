"""``parse``: the shipped car grammar on typed questions and on the loose text a recogniser produces."""

from __future__ import annotations

import pytest

from edge_assistant.intents import INTENTS, Intent, parse


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
    assert isinstance(got, Intent)
    assert got.name == intent, got
    assert got.name in INTENTS
    assert got.text == text
    assert 0.0 <= got.confidence <= 1.0
    assert (got.confidence > 0) == (intent != "unknown")


@pytest.mark.parametrize(
    ("text", "wheel"),
    [("front left tyre", "Row1.Left"), ("the rear right tire", "Row2.Right"), ("back left wheel", "Row2.Left"),
     ("is the left rear tyre losing air", "Row2.Left"), ("what is the pressure in the front right tyre", "Row1.Right")],
)
def test_wheel_slot(text: str, wheel: str) -> None:
    got = parse(text)
    assert got.name == "vehicle.tyres" and got.slots["wheel"] == wheel


@pytest.mark.parametrize(
    ("text", "km"),
    [
        ("can I make it 120 km", 120.0),
        ("can I make it 120 kilometres", 120.0),
        ("can I drive one hundred and twenty miles", 193.121),
        ("can I drive two thousand five hundred kilometers", 2500.0),
        ("can I go 12.5 km", 12.5),
        ("can I do 2,500 km", 2500.0),
    ],
)
def test_distance_slot_in_km(text: str, km: float) -> None:
    got = parse(text)
    assert got.name == "vehicle.range"
    assert got.slots["distance_km"] == pytest.approx(km, abs=1e-3)
    assert isinstance(got.slots["distance_km"], (int, float))


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


def test_charging_slots_are_typed_numbers() -> None:
    slots = parse("how long to charge from 20 % to 80 per cent on a 150 kW charger").slots
    assert slots == {"power_kw": 150, "from_pct": 20, "target_pct": 80}
    assert all(type(v) is int for v in slots.values())


def test_every_intent_name_is_namespaced() -> None:
    assert INTENTS[-1] == "unknown"
    assert all(n.split(".")[0] in {"vehicle", "travel", "climate", "charging", "navigation"} for n in INTENTS[:-1])
