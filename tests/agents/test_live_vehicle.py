"""The agents on a live bus: python-can virtual buses, the bus reader and the demo decoder writing one
VehicleState whose listeners feed the tyre history and the trip computer as frames arrive (nothing calls
``observe()``); ``listen --live`` runs its state on the wall clock and refuses frames from the future.

Every step synchronises on a reading arriving in the state (a listener) or on a counter, never on sleeps.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import can
import pytest

from edge_assistant.agents.car_genius import CarGenius
from edge_assistant.agents.travel_companion import TravelCompanion
from edge_assistant.agents.vss import SPEED
from edge_assistant.core.state import VehicleState
from edge_assistant.intents import parse
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, decoder_for, load_dbc
from edge_assistant.vehicle.bus import BusReader, open_bus, parse_bus_spec, wait_until

RL = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"
T0 = 1_767_225_600.0
_channels = itertools.count()


class Clock:
    """A live clock the test sets by hand (the state calls it like ``time.time``)."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


class Arrivals:
    """Counts stored readings of ``path``. Added after the agents, so it runs after their listeners."""

    def __init__(self, state: VehicleState, path: str) -> None:
        self._sem = threading.Semaphore(0)
        state.add_listener([path], lambda _readings: self._sem.release())

    def wait(self, timeout_s: float = 5.0) -> bool:
        return self._sem.acquire(timeout=timeout_s)


@pytest.fixture
def channel() -> str:
    return f"test-live-{next(_channels)}"


@pytest.fixture(scope="module")
def db():
    return load_dbc(DEMO_DBC).database


@pytest.fixture
def tx(channel: str) -> Iterator[can.BusABC]:
    """The car's side of the bus: frames keep the timestamps the test gives them."""
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()


def _frame(db, name: str, timestamp_s: float, **signals) -> can.Message:
    m = db.get_message_by_name(name)
    return can.Message(arbitration_id=m.frame_id, data=m.encode(signals), is_extended_id=False,
                       timestamp=timestamp_s)


def _tpms(db, timestamp_s: float, rl_kpa: float, others_kpa: float = 250.0) -> can.Message:
    return _frame(db, "TPMS_Status", timestamp_s, TirePressureFL=others_kpa, TirePressureFR=others_kpa,
                  TirePressureRL=rl_kpa, TirePressureRR=others_kpa, TireLowFL=0, TireLowFR=0,
                  TireLowRL=int(rl_kpa < 187.5), TireLowRR=0, TPMSLamp=int(rl_kpa < 187.5))


def _drive(db, timestamp_s: float, kmh: float) -> can.Message:
    return _frame(db, "VCU_Drive", timestamp_s, VehicleSpeed=kmh, GearSelected=3, AccelPedal=10.0, BrakePressed=0,
                  DriveReady=1, VCU_Counter=0)


def _live(channel: str, clock: Clock) -> tuple[VehicleState, BusReader]:
    """A state on ``clock`` fed by a bus reader on ``channel`` through the demo decoder."""
    state = VehicleState(clock=clock)
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING, state)
    cfg = parse_bus_spec(f"virtual:{channel}")
    reader = BusReader(lambda: open_bus(cfg), dec.feed_messages, name="test").start()
    assert reader.wait_connected(5.0)
    return state, reader


def test_tyre_history_is_fed_by_the_frames_not_by_observe(channel: str, tx: can.BusABC, db) -> None:
    clock = Clock(T0 + 600.0)
    state, reader = _live(channel, clock)
    try:
        genius = CarGenius(state)
        arrivals = Arrivals(state, RL)
        for k in range(61):  # ten minutes of a rear-left leak of 4 kPa/min, a TPMS frame every 10 s
            tx.send(_tpms(db, T0 + 10.0 * k, 250.0 - 4.0 * k * 10.0 / 60.0))
            assert arrivals.wait(), f"frame {k} did not reach the state"
    finally:
        reader.stop()
    rate = genius.leak_rate_kpa_per_min("rear left")  # before any answer: the state fed the history
    assert rate is not None and rate[0] == pytest.approx(4.0, abs=0.1) and rate[1] == pytest.approx(600.0)
    assert genius.leak_rate_kpa_per_min("front left")[0] == pytest.approx(0.0, abs=1e-9)
    a = genius.answer(parse("why is the tyre light on?"))
    assert "The rear left tyre is low at 210.0 kPa" in a.text and "dropping about 4.0 kPa per minute" in a.text


def test_trip_computer_is_fed_by_the_frames_not_by_observe(channel: str, tx: can.BusABC, db) -> None:
    clock = Clock(T0)
    state, reader = _live(channel, clock)
    try:
        travel = TravelCompanion(state)
        arrivals = Arrivals(state, SPEED)
        for k in range(121):  # two minutes at 72 km/h, a frame a second (sampled at the clock's "now")
            clock.now_s = T0 + k
            tx.send(_drive(db, T0 + k, 72.0))
            assert arrivals.wait(), f"frame {k} did not reach the state"
    finally:
        reader.stop()
    s = travel.trip.stats()  # before any answer: the state fed the trip computer
    assert s.distance_source == "speed" and s.distance_km == pytest.approx(2.4, rel=1e-6)
    assert s.duration_s == pytest.approx(120.0) and s.gaps == 0
    assert "Trip so far: 2.4 km (from speed) in 2 min" in travel.answer(parse("how was my trip?")).text


def _listen_agents(argv: list[str]):
    """(Car Genius, Travel Companion, CAN reader or None) as ``listen`` wires them through the composition root."""
    from edge_assistant.cli import build_parser
    from edge_assistant.cli.listen import _config, _router

    args = build_parser().parse_args(["listen", *argv])
    router, vehicle = _router(args, _config(args))
    return router.car_genius, router.travel, None if vehicle is None else _Stoppable(vehicle)


class _Stoppable:
    """The vehicle side seen as the reader these tests stop."""

    def __init__(self, vehicle) -> None:
        self.vehicle = vehicle

    def stop(self) -> None:
        self.vehicle.stop()


def test_listen_live_state_ages_on_the_wall_clock_and_refuses_future_frames(channel: str, tx: can.BusABC,
                                                                            db) -> None:
    genius, travel, reader = _listen_agents(["--live", "--bus", f"virtual:{channel}", "--dbc", str(DEMO_DBC),
                                             "--mapping", str(DEMO_MAPPING)])
    try:
        sent_s = time.time() - 40.0
        tx.send(_tpms(db, sent_s, 200.0))  # the last frame before the bus went silent, 40 s ago
        assert wait_until(lambda: genius.snapshot().get(RL) is not None, 5.0)
        a = genius.answer(parse("is a tyre low?"))
        pressure = next(v for v in a.values if v.path == RL)
        assert 40.0 <= pressure.age_s < 120.0 and pressure.stale  # "now" is the wall clock, not the newest frame
        assert "All tyre readings are stale" in a.text and "rear left tyre is low" not in a.text

        state = genius.state
        assert state is not None and travel.state is state and state.clock is not None
        tx.send(_tpms(db, time.time() + 3600.0, 180.0))  # an adapter whose clock is an hour ahead
        assert wait_until(lambda: state.stats.rejected_future > 0, 5.0)
        tx.send(_tpms(db, math.nan, 170.0))
        assert wait_until(lambda: state.stats.rejected_non_finite > 0, 5.0)
    finally:
        reader.stop()
    kept = genius.snapshot().get(RL)  # refused frames are never stored
    assert kept.value == 200.0 and kept.timestamp_s == pytest.approx(sent_s)


def test_listen_replay_feeds_both_agents_from_one_state(tmp_path: Path) -> None:
    from edge_assistant.vehicle import write_demo_log

    log_path = tmp_path / "drive.log"
    write_demo_log(log_path, duration_s=240.0, seed=2)
    genius, travel, reader = _listen_agents(["--replay", str(log_path), "--dbc", str(DEMO_DBC),
                                             "--mapping", str(DEMO_MAPPING)])
    assert reader is None and genius.state is not None and travel.state is genius.state
    assert genius.leak_rate_kpa_per_min("rear left") is not None
    assert travel.trip.stats().distance_km > 1.0  # the trip computer saw the drive unfold
