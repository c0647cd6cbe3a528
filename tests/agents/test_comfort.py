"""Comfort commands end to end on python-can's virtual bus: spoken-style text -> intent -> router -> comfort
agent -> actuator -> command frame -> virtual comfort ECU -> status frame -> decoder -> state -> the answer
says what the car confirmed (or that it did not, or why it was not done)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from edge_assistant.agents.car_genius import CarGenius
from edge_assistant.agents.comfort import FAN_LEVELS, ComfortAgent
from edge_assistant.agents.router import AgentRouter
from edge_assistant.core.state import VehicleState
from edge_assistant.intents import parse
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, decoder_for
from edge_assistant.vehicle.actuation import Actuator, load_actuators
from edge_assistant.vehicle.bus import BusConfig, BusReader, open_bus
from edge_assistant.vehicle.comfort_ecu import VirtualComfortEcu
from edge_assistant.vehicle.dbc import load_dbcs

_channels = itertools.count()
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


class LiveCar:
    """A head unit on a virtual bus: state decoded by a reader, actuator sending on the reader's bus."""

    def __init__(self, ecu: bool, confirm_timeout_s: float = 2.0) -> None:
        self.cfg = BusConfig("virtual", f"comfort-agent-{next(_channels)}")
        self.state = VehicleState(clock=VehicleState.wall_clock)
        dec = decoder_for(DEMO_DBC, DEMO_MAPPING, self.state)
        self.reader = BusReader(lambda: open_bus(self.cfg), dec.feed_messages, name="test").start()
        assert self.reader.wait_connected(2.0)
        self.ecu = VirtualComfortEcu(lambda: open_bus(self.cfg)).start() if ecu else None
        dbcs = load_dbcs([DEMO_DBC])
        self.actuator = Actuator(load_actuators(DEMO_MAPPING, dbcs), dbcs, lambda m: self.reader.bus.send(m),
                                 self.state, confirm_timeout_s=confirm_timeout_s)
        self.router = AgentRouter(CarGenius(self.state), commands=ComfortAgent(self.state, self.actuator))

    def wait_for(self, path: str) -> None:
        from edge_assistant.vehicle.bus import wait_until

        assert wait_until(lambda: self.state.snapshot().value(path) is not None, 2.0)

    def stop(self) -> None:
        if self.ecu is not None:
            self.ecu.stop()
        self.reader.stop()


@pytest.fixture
def car() -> Iterator[LiveCar]:
    c = LiveCar(ecu=True)
    c.wait_for(TEMP)  # the ECU's first status frames are in
    yield c
    c.stop()


@pytest.mark.parametrize(("text", "said", "path", "value"), [
    ("set the temperature to 23 degrees", "The driver's side is now set to 23 degrees.", TEMP, 23.0),
    ("set the temperature to 22.5 degrees", "The driver's side is now set to 22.5 degrees.",
     TEMP, 22.5),
    ("set the temperature to 72 degrees fahrenheit", "The driver's side is now set to 22 degrees.", TEMP, 22.0),
    ("set the fan to 5", f"The fan is now at level 5 of {FAN_LEVELS}.", "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed",
     71),
    ("turn on the passenger seat heating", "The passenger seat heating is now at level 2 of 3.",
     "Vehicle.Cabin.Seat.Row1.PassengerSide.Heating", 67),
    ("set the driver's seat heating to level 3", "The driver's seat heating is now at level 3 of 3.",
     "Vehicle.Cabin.Seat.Row1.DriverSide.Heating", 100),
    ("turn off the ac", "The air conditioning is now off.", "Vehicle.Cabin.HVAC.IsAirConditioningActive", False),
    ("defrost the rear window", "The rear window defroster is now on.", "Vehicle.Cabin.HVAC.IsRearDefrosterActive",
     True),
    ("only charge to 90%", "The charge limit is now 90 %.", "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
     90),
])
def test_command_is_done_and_confirmed_by_the_car(car: LiveCar, text: str, said: str, path: str, value) -> None:
    intent = parse(text)
    ans = car.router.answer(intent)
    assert (ans.agent, ans.text) == ("comfort", said), intent
    assert car.state.snapshot().value(path) == value  # the car's own status frame says so
    assert ans.values[0].path == path and ans.values[0].value == value and ans.values[0].source == "actuation"


def test_relative_commands_step_from_what_the_car_reports(car: LiveCar) -> None:
    start = car.state.snapshot().value(TEMP)
    assert car.router.answer(parse("make it warmer")).text == f"The driver's side is now set to {start + 1:g} degrees."
    assert car.router.answer(parse("make it cooler")).text == f"The driver's side is now set to {start:g} degrees."
    car.router.answer(parse("set the fan to 2"))
    assert car.router.answer(parse("turn up the fan")).text == f"The fan is now at level 3 of {FAN_LEVELS}."
    assert car.router.answer(parse("turn down the fan")).text == f"The fan is now at level 2 of {FAN_LEVELS}."


def test_out_of_range_and_unsupported_are_said(car: LiveCar) -> None:
    hot = car.router.answer(parse("set the temperature to 31 degrees"))
    assert hot.text == "I can't set the cabin to 31 degrees: 31 is outside 16 to 28 degrees."
    rear = car.router.answer(parse("turn on the rear left seat heating"))
    assert rear.text == ("I understood: turn the rear left seat heating on, but this car offers me no control "
                         "for it.")
    low = car.router.answer(parse("only charge to 30%"))
    assert low.text == "I can't set the charge limit to 30 %: 30 is outside 50 to 100 %."
    assert not (hot.values or rear.values or low.values)


def test_the_car_not_confirming_is_said() -> None:
    c = LiveCar(ecu=False, confirm_timeout_s=0.5)
    try:
        ans = c.router.answer(parse("set the temperature to 21 degrees"))
    finally:
        c.stop()
    assert ans.text == ("I asked the car to set the cabin to 21 degrees, but the car did not confirm within "
                        "0.5 s.")
    assert not ans.values


def test_relative_command_without_a_known_setting_asks_for_a_value() -> None:
    c = LiveCar(ecu=False, confirm_timeout_s=0.5)
    try:
        ans = c.router.answer(parse("make it warmer"))
    finally:
        c.stop()
    assert ans.text.startswith("I cannot tell the current temperature setting") and ans.missing


def test_without_an_actuator_commands_stay_honest() -> None:
    """Replayed logs and buses without actuators: Car Genius still says it cannot, nothing is pretended."""
    router = AgentRouter(CarGenius(VehicleState()))
    ans = router.answer(parse("set the temperature to 21 degrees"))
    assert ans.agent == "car_genius" and "cannot control the climate yet" in ans.text


def test_charging_start_stop_is_not_an_actuation(car: LiveCar) -> None:
    ans = car.router.answer(parse("stop charging"))
    assert ans.agent == "car_genius" and "cannot change the charging settings yet" in ans.text
