"""VehicleState: live time from an injected clock, refused timestamps (counted), and listeners."""

from __future__ import annotations

import logging
import math

import pytest

from edge_assistant.core.state import SignalReading, VehicleState

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


class Clock:
    """A clock the test sets by hand (the state calls it like ``time.time``)."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_live_values_age_on_the_clock_when_updates_stop() -> None:
    clock = Clock(1000.0)
    st = VehicleState(clock=clock)
    st.update(SPEED, 50.0, "km/h", 1000.0, "can:0x100")
    assert st.snapshot().age_s(SPEED) == 0.0
    clock.now_s = 1040.0  # the bus went silent 40 s ago
    snap = st.snapshot()
    assert snap.now_s == 1040.0 and snap.age_s(SPEED) == 40.0 and snap.is_stale(SPEED, 10.0)
    assert st.now_s() == 1040.0


def test_replay_time_follows_the_readings_and_set_time() -> None:
    st = VehicleState()
    st.update_many([(SPEED, 50.0, "km/h", 100.0, "log")])
    assert st.now_s() == 100.0 and st.snapshot().age_s(SPEED) == 0.0
    st.set_time(130.0)
    assert st.snapshot().age_s(SPEED) == 30.0
    st.update(SOC, 60.0, "percent", 1e9, "log")  # no clock: no "future" in log time
    assert st.stats.rejected_future == 0 and st.now_s() == 1e9


@pytest.mark.parametrize("clock", [None, Clock(1000.0)], ids=["replay", "live"])
def test_non_finite_timestamps_are_refused_and_counted(clock, caplog: pytest.LogCaptureFixture) -> None:
    st = VehicleState(clock=clock)
    st.update(SPEED, 10.0, "km/h", 900.0, "can:0x100")
    with caplog.at_level(logging.WARNING, logger="edge_assistant.core.state"):
        st.update(SPEED, 99.0, "km/h", math.nan, "can:0x100")
        st.update_many([(SPEED, 98.0, "km/h", math.inf, "can:0x100"), (SOC, 50.0, "percent", -math.inf, "can:0x200"),
                        (SOC, 51.0, "percent", 950.0, "can:0x200")])
    assert st.stats.rejected_non_finite == 3 and st.stats.rejected == 3
    snap = st.snapshot()
    assert snap.value(SPEED) == 10.0 and snap.value(SOC) == 51.0  # the good rows of the batch are kept
    assert math.isfinite(snap.now_s) and snap.now_s == (950.0 if clock is None else 1000.0)
    warned = [r for r in caplog.records if "not a finite time" in r.getMessage()]
    assert len(warned) == 1 and "can:0x100" in warned[0].getMessage()  # the first one, naming its source


def test_future_timestamps_beyond_the_tolerance_are_refused_and_counted() -> None:
    clock = Clock(1000.0)
    st = VehicleState(clock=clock, future_tolerance_s=0.5)
    st.update(SPEED, 10.0, "km/h", 1000.4, "can:0x100")  # within the tolerance: kept
    st.update(SPEED, 20.0, "km/h", 1000.6, "can:0x100")
    st.update_many([(SOC, 50.0, "percent", 4600.0, "can:0x200")])
    assert st.stats.rejected_future == 2 and st.stats.rejected_non_finite == 0
    assert st.stats.as_dict() == {"rejected_non_finite": 0, "rejected_future": 2, "listener_errors": 0}
    snap = st.snapshot()
    assert snap.value(SPEED) == 10.0 and snap.get(SOC) is None
    clock.now_s = 5000.0  # the same time is accepted once the clock has reached it
    st.update(SOC, 50.0, "percent", 4600.0, "can:0x200")
    assert st.snapshot().value(SOC) == 50.0 and st.stats.rejected_future == 2


def test_listeners_get_the_new_readings_of_their_paths_and_may_snapshot() -> None:
    st = VehicleState()
    got: list[list[SignalReading]] = []
    seen_in_snapshot: list[object] = []

    def on_speed(readings) -> None:
        got.append(list(readings))
        seen_in_snapshot.append(st.snapshot().value(SPEED))  # the lock is free: no deadlock

    remove = st.add_listener([SPEED], on_speed)
    st.update_many([(SOC, 50.0, "percent", 1.0, "t")])
    assert got == []  # another path
    st.update_many([(SOC, 51.0, "percent", 2.0, "t"), (SPEED, 30.0, "km/h", 2.0, "t"),
                    (SPEED, 31.0, "km/h", math.nan, "t")])  # refused readings never reach a listener
    assert [[(r.path, r.value, r.timestamp_s) for r in batch] for batch in got] == [[(SPEED, 30.0, 2.0)]]
    assert seen_in_snapshot == [30.0]
    remove()
    st.update(SPEED, 40.0, "km/h", 3.0, "t")
    assert len(got) == 1


def test_a_failing_listener_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    st = VehicleState()
    got: list[float] = []

    def broken(_readings) -> None:
        raise RuntimeError("consumer bug")

    st.add_listener([SPEED], broken)
    st.add_listener([SPEED], lambda rs: got.extend(float(r.value) for r in rs))
    with caplog.at_level(logging.ERROR, logger="edge_assistant.core.state"):
        for t in range(1, 21):
            st.update(SPEED, 12.0, "km/h", float(t), "t")  # does not raise into the producer
    assert got == [12.0] * 20 and st.snapshot().value(SPEED) == 12.0
    assert st.stats.listener_errors == 20
    assert len([r for r in caplog.records if "listener" in r.getMessage()]) == 10  # bounded, not one per update
