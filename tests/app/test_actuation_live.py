"""The device's vehicle side with the demo EV on the virtual bus: comfort commands built by ``build_agents``
go out through the vehicle bus, the demo car's virtual comfort ECU applies them, and its status frames (not
the replayed drive, whose recorded set-points it replaces) confirm them in the live state."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path

from edge_assistant.app.assemble import build_agents
from edge_assistant.app.vehicle_side import VehicleSide
from edge_assistant.core.config import default_config
from edge_assistant.intents import parse

_channels = itertools.count()
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


def _config(tmp_path: Path):
    ch = f"virtual:actuation-live-{next(_channels)}"
    base = default_config()
    return replace(base, vehicle=replace(base.vehicle, bus=ch), diagnostics=replace(base.diagnostics, bus=ch),
                   paths=replace(base.paths, cache_dir=tmp_path))


def test_demo_car_confirms_a_comfort_command_and_keeps_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.demo_car_enabled
    side = VehicleSide(config).start()
    try:
        assert side.actuator is not None and side.demo_car is not None and side.demo_car.comfort is not None
        router = build_agents(config, side)
        before = side.state.snapshot().value(TEMP)
        assert before == 21.0  # the demo car's own set-point, from its comfort ECU
        ans = router.answer(parse("set the temperature to 24 degrees"))
        assert (ans.agent, ans.text) == ("comfort", "The driver's side is now set to 24 degrees.")
        frames = side.reader.stats.frames
        time.sleep(1.5)  # more than one period of the drive's recorded HVAC frames
        assert side.reader.stats.frames > frames  # the drive goes on ...
        assert side.state.snapshot().value(TEMP) == 24.0  # ... and does not overwrite what the ECU applied
        refused = side.actuator.request("Vehicle.Powertrain.Transmission.SelectedGear", 127)
        assert refused.status == "refused"
        assert [r.status for r in side.actuator.history] == ["confirmed", "refused"]
    finally:
        side.stop()


def test_without_actuators_in_the_mapping_commands_stay_honest(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config = replace(config, vehicle=replace(config.vehicle, vss_mapping=None), demo_car=replace(
        config.demo_car, enabled=False))
    side = VehicleSide(config).start()
    try:
        assert side.actuator is None
        ans = build_agents(config, side).answer(parse("set the temperature to 24 degrees"))
        assert ans.agent == "car_genius" and "cannot control the climate yet" in ans.text
    finally:
        side.stop()
