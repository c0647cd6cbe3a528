"""The demo car: its drive and GNSS log replayed once into one VehicleState that both agents read."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.agents import vss
from edge_assistant.intents import parse

RL = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"


@pytest.mark.slow
def test_one_state_for_the_demo_car(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_assistant.agents.demo import demo_car

    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(tmp_path / "models"))  # the demo logs go beside it
    car = demo_car(at_s=600.0)
    assert car.genius.state is car.state and car.travel.state is car.state
    snap = car.genius.snapshot()
    assert snap.get(vss.LAT) is not None and snap.get(vss.SPEED) is not None  # GNSS and CAN in the one state
    assert snap.now_s == car.travel.snapshot().now_s
    # the one replay fed both agents' history
    rate = car.genius.leak_rate_kpa_per_min("rear left")
    assert rate is not None and rate[0] > 2.0 and rate[1] >= 500
    assert car.travel.trip.stats().distance_km > 8.0
    tyres = car.genius.answer(parse("why is the tyre light on?"))
    assert "rear left tyre is low" in tyres.text and "a leak" in tyres.text
    assert "P0AA6" in car.genius.answer(parse("any trouble codes?")).text
    assert car.travel.answer(parse("where am I?")).text.startswith("You are at 48.")
