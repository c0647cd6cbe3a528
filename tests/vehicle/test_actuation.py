"""Comfort actuation on python-can's virtual bus: the request encoded through the demo DBC (cantools decodes
it back as the oracle), sent, applied by the virtual comfort ECU and confirmed by its status frames decoded
into the state; refusals (move-the-car functions, doors while moving), range checks, the rate limit and the
time-out when no ECU answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import VehicleState
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, decoder_for
from edge_assistant.vehicle.actuation import (
    CONFIRMED,
    NOT_CONFIRMED,
    OUT_OF_RANGE,
    RATE_LIMITED,
    REFUSED,
    UNSUPPORTED,
    Actuator,
    denied_reason,
    encode_command,
    load_actuators,
)
from edge_assistant.vehicle.bus import BusConfig, BusReader, open_bus
from edge_assistant.vehicle.comfort_ecu import VirtualComfortEcu
from edge_assistant.vehicle.dbc import load_dbcs
from edge_assistant.vehicle.simulate import COMFORT_STATUS

TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
FAN = "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed"
AC = "Vehicle.Cabin.HVAC.IsAirConditioningActive"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


@pytest.fixture(scope="module")
def dbcs():
    return load_dbcs([DEMO_DBC])


@pytest.fixture(scope="module")
def specs(dbcs):
    return load_actuators(DEMO_MAPPING, dbcs)


class Car:
    """The head unit's view of a live bus: the state decoded from it by a reader, an actuator sending over the
    reader's own bus object, and frames counted as they are sent."""

    def __init__(self, channel: str, specs, dbcs, **kw) -> None:
        self.cfg = BusConfig("virtual", channel)
        self.state = VehicleState(clock=VehicleState.wall_clock)
        self.decoder = decoder_for(DEMO_DBC, DEMO_MAPPING, self.state)
        self.reader = BusReader(lambda: open_bus(self.cfg), self.decoder.feed_messages, name="test").start()
        assert self.reader.wait_connected(2.0)
        self.sent: list = []
        self.actuator = Actuator(specs, dbcs, self._send, self.state, **kw)

    def _send(self, msg) -> None:
        self.sent.append(msg)
        self.reader.bus.send(msg)

    def stop(self) -> None:
        self.reader.stop()


@pytest.fixture
def car(channel: str, specs, dbcs) -> Iterator[Car]:
    c = Car(channel, specs, dbcs, confirm_timeout_s=2.0)
    yield c
    c.stop()


@pytest.fixture
def ecu(car: Car) -> Iterator[VirtualComfortEcu]:
    with VirtualComfortEcu(lambda: open_bus(car.cfg), period_s=0.2) as e:
        yield e


def test_demo_mapping_lists_the_comfort_actuators(specs) -> None:
    assert set(specs) == {TEMP, FAN, AC, LIMIT, "Vehicle.Cabin.Seat.Row1.DriverSide.Heating",
                          "Vehicle.Cabin.Seat.Row1.PassengerSide.Heating", "Vehicle.Cabin.HVAC.IsFrontDefrosterActive",
                          "Vehicle.Cabin.HVAC.IsRearDefrosterActive"}
    t = specs[TEMP]
    assert (t.message, t.signal, t.minimum, t.maximum, t.resolution, t.mux) == \
        ("HU_ComfortCmd", "DriverTempRequest", 16.0, 28.0, 0.5, ("ComfortCmdId", 0))
    assert specs[AC].is_bool and not specs[FAN].is_bool and specs[LIMIT].mux is None


@pytest.mark.parametrize(("path", "value"), [(TEMP, 21.5), (TEMP, 16.0), (FAN, 71), (AC, False), (AC, True),
                                             (LIMIT, 90), ("Vehicle.Cabin.Seat.Row1.PassengerSide.Heating", 67)])
def test_command_frame_decodes_back_with_cantools(dbcs, specs, path: str, value) -> None:
    """cantools (the oracle) reads our command frame as the request: the signal's value and its multiplexer."""
    db = dbcs[0].database
    spec = specs[path]
    frame_id, ext, data = encode_command(db, spec, value)
    msg = db.get_message_by_name(spec.message)
    assert (frame_id, ext, len(data)) == (msg.frame_id, False, msg.length)
    decoded = db.decode_message(frame_id, data, decode_choices=False)
    assert decoded[spec.signal] == pytest.approx(float(value))
    if spec.mux is not None:
        assert decoded[spec.mux[0]] == spec.mux[1]
        assert set(decoded) == {spec.mux[0], spec.signal}  # the frame carries exactly the one request


def test_command_frame_bytes(dbcs, specs) -> None:
    """21.5 degC at (0.5, +10) is raw 23 in byte 1, multiplexer 0 in byte 0; the charge limit sits in byte 0."""
    db = dbcs[0].database
    assert encode_command(db, specs[TEMP], 21.5)[2] == bytes([0, 23, 0, 0, 0, 0, 0, 0])
    assert encode_command(db, specs[AC], True)[2] == bytes([4, 1, 0, 0, 0, 0, 0, 0])
    assert encode_command(db, specs[LIMIT], 90)[2] == bytes([90, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(("path", "value", "seen"), [(TEMP, 23.5, 23.5), (FAN, 71, 71), (AC, False, False),
                                                     (LIMIT, 90, 90), (TEMP, 22.3, 22.5)])
def test_request_is_confirmed_over_the_bus(car: Car, ecu: VirtualComfortEcu, path: str, value, seen) -> None:
    res = car.actuator.request(path, value)
    assert res.status == CONFIRMED, res
    assert res.confirmed_value == seen and car.state.snapshot().value(path) == seen
    assert len(car.sent) == 1 and ecu.applied == 1
    assert car.actuator.history[-1] is res


def test_unchanged_value_is_confirmed_by_the_next_status(car: Car, ecu: VirtualComfortEcu) -> None:
    already = COMFORT_STATUS["HVAC_Comfort"]["DriverTempSetpoint"]
    assert car.actuator.request(TEMP, already).status == CONFIRMED


def test_no_ecu_means_not_confirmed(channel: str, specs, dbcs) -> None:
    c = Car(channel, specs, dbcs, confirm_timeout_s=0.3)
    try:
        res = c.actuator.request(TEMP, 22.0)
    finally:
        c.stop()
    assert res.status == NOT_CONFIRMED and res.value == 22.0 and len(c.sent) == 1
    assert res.reason == "the car did not confirm within 0.3 s" and res.elapsed_s >= 0.3


@pytest.mark.parametrize(("path", "why"), [
    ("Vehicle.Powertrain.Transmission.SelectedGear", "gear"),
    ("Vehicle.Chassis.Brake.PedalPosition", "braking"),
    ("Vehicle.Chassis.SteeringWheel.Angle", "steering"),
    ("Vehicle.Chassis.Accelerator.PedalPosition", "accelerator"),
    ("Vehicle.Speed", "speed"),
    ("Vehicle.ADAS.CruiseControl.IsActive", "driver assistance"),
])
def test_move_the_car_functions_are_refused(car: Car, path: str, why: str) -> None:
    res = car.actuator.request(path, 1)
    assert res.status == REFUSED and why in res.reason and "never actuated" in res.reason
    assert car.sent == []
    assert denied_reason(path) is not None and denied_reason(TEMP) is None


def test_doors_are_refused_while_moving_or_speed_unknown(car: Car) -> None:
    door = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
    unknown = car.actuator.request(door, True)
    assert unknown.status == REFUSED and "unknown" in unknown.reason
    car.state.update("Vehicle.Speed", 42.0, "km/h", car.state.now_s(), "test")
    moving = car.actuator.request(door, True)
    assert moving.status == REFUSED and "42 km/h" in moving.reason
    car.state.update("Vehicle.Speed", 0.0, "km/h", car.state.now_s(), "test")
    standing = car.actuator.request(door, True)
    assert standing.status == UNSUPPORTED  # not refused for moving: the demo car has no door actuator
    assert car.sent == []


@pytest.mark.parametrize(("path", "value"), [(TEMP, 35.0), (TEMP, 15.5), (FAN, 101), (LIMIT, 40), (LIMIT, 101),
                                             (TEMP, float("nan")), (TEMP, True), (AC, 1), (FAN, "high")])
def test_out_of_range_or_wrong_type_is_not_sent(car: Car, path: str, value) -> None:
    res = car.actuator.request(path, value)
    assert res.status == OUT_OF_RANGE and res.reason
    assert car.sent == []


def test_rate_limit_per_path(channel: str, specs, dbcs) -> None:
    now = [1000.0]
    c = Car(channel, specs, dbcs, confirm_timeout_s=2.0, max_per_window=2, window_s=60.0, clock=lambda: now[0])
    try:
        with VirtualComfortEcu(lambda: open_bus(c.cfg)):
            assert c.actuator.request(FAN, 14).status == CONFIRMED
            assert c.actuator.request(FAN, 29).status == CONFIRMED
            limited = c.actuator.request(FAN, 43)
            assert limited.status == RATE_LIMITED and "at most 2" in limited.reason
            assert c.actuator.request(TEMP, 20.0).status == CONFIRMED  # another path has its own budget
            now[0] += 60.0
            assert c.actuator.request(FAN, 43).status == CONFIRMED
    finally:
        c.stop()
    assert [m.arbitration_id for m in c.sent] == [0x3A0] * 4


def test_bus_failure_is_reported(car: Car, specs, dbcs) -> None:
    def broken(msg) -> None:
        raise OSError("no buffer space")

    res = Actuator(specs, dbcs, broken, car.state).request(TEMP, 22.0)
    assert res.status == "failed" and "no buffer space" in res.reason


def test_ecu_ignores_a_request_beyond_its_status_range() -> None:
    """A raw value the command signal can carry but the HVAC's status range does not (fan 127 %) is ignored."""
    ecu = VirtualComfortEcu(lambda: None)
    msg = ecu._db.get_message_by_name("HU_ComfortCmd")
    data = msg.encode({"ComfortCmdId": 1, "FanSpeedRequest": 127}, strict=False)
    assert ecu.apply(msg.frame_id, data) is None and ecu.ignored == 1
    assert ecu.value("FanSpeed") == COMFORT_STATUS["HVAC_Comfort"]["FanSpeed"]
    ok = msg.encode({"ComfortCmdId": 2, "SeatHeatDriverRequest": 33})
    assert ecu.apply(msg.frame_id, ok) == "HVAC_Comfort" and ecu.value("SeatHeatDriver") == 33


def _mapping_with(tmp_path: Path, actuators) -> Path:
    data = json.loads(DEMO_MAPPING.read_text(encoding="utf-8"))
    data["actuators"] = actuators
    p = tmp_path / "m.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


@pytest.mark.parametrize(("entries", "says"), [
    ([{"vss": "Vehicle.Powertrain.Transmission.SelectedGear", "message": "HU_ComfortCmd", "signal": "ACRequest"}],
     "actuators[0]: key 'vss' is Vehicle.Powertrain.Transmission.SelectedGear, which is never actuated by design"),
    ([{"vss": TEMP, "message": "HU_Nope", "signal": "ACRequest"}], "actuators[0]: key 'message': 'HU_Nope'"),
    ([{"vss": TEMP, "message": "HU_ComfortCmd", "signal": "Nope"}], "actuators[0]: key 'signal': 'Nope'"),
    ([{"vss": TEMP, "message": "HU_ComfortCmd"}], "actuators[0]: key 'signal' must be a non-empty string"),
    ([{"vss": AC, "message": "HU_ComfortCmd", "signal": "ACRequest"}] * 2, "actuators[1]: key 'vss'"),
    ({"vss": AC}, "key 'actuators' must be a list"),
])
def test_bad_actuator_section_names_file_entry_and_key(tmp_path: Path, dbcs, entries, says: str) -> None:
    p = _mapping_with(tmp_path, entries)
    with pytest.raises(ConfigError) as err:
        load_actuators(p, dbcs)
    assert str(p) in str(err.value) and says in str(err.value)
