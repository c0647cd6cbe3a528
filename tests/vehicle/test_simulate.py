"""The demo-car simulator: deterministic, and the scenario's events show up in the decoded log."""

from __future__ import annotations

import pytest

from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, DemoScenario, decoder_for, write_demo_log
from edge_assistant.vehicle.logs import read_log
from edge_assistant.vehicle.simulate import CONFIRMED, PENDING, WARNING_INDICATOR, obd_code_to_int


def test_same_seed_same_bytes_other_seed_other_drive(tmp_path):
    from edge_assistant.vehicle.logs import format_candump_line
    from edge_assistant.vehicle.simulate import simulate_frames

    def fresh(seed):  # simulate from scratch (write_demo_log reuses a per-process cache)
        return "".join(format_candump_line(m) + "\n" for m in simulate_frames(DemoScenario(duration_s=90, seed=seed)))

    a, c = tmp_path / "a.log", tmp_path / "c.log"
    write_demo_log(a, duration_s=90, seed=7)
    write_demo_log(c, duration_s=90, seed=8)
    assert a.read_text() == fresh(7) == fresh(7)
    assert a.read_bytes() != c.read_bytes()
    assert len(list(read_log(a))) == len(list(read_log(c)))  # same schedule, different drive


def _series(log, key):
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING)
    t0, out = None, []
    for msg in read_log(log):
        t0 = msg.timestamp if t0 is None else t0
        v = dec.decode_frame(msg.arbitration_id, bytes(msg.data)).get(key)
        if v is not None:
            out.append((msg.timestamp - t0, v))
    return out


def test_scenario_events_in_the_log(demo_log, demo_scenario):
    sc = demo_scenario
    lamp = _series(demo_log, "Vehicle.Private.TellTale.TirePressure.IsOn")
    first_on = next(t for t, v in lamp if v)
    assert first_on == pytest.approx(sc.tpms_lamp_on_at_s(), abs=1.01)
    mil = _series(demo_log, "Vehicle.OBD.Status.IsMILOn")
    assert next(t for t, v in mil if v) == pytest.approx(sc.dtc.confirmed_at_s, abs=1.01)
    soc = _series(demo_log, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    driving = [v for t, v in soc if t > sc.drive_start_s]
    assert driving[0] - driving[-1] > 1.0  # energy used on the drive
    speed = [v for t, v in _series(demo_log, "Vehicle.Speed")]
    assert max(speed) > 90 and speed[0] == 0 and speed[-1] == 0
    rl = _series(demo_log, "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure")
    fr = _series(demo_log, "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure")
    leak_kpa_per_min = (rl[60][1] - rl[-1][1]) / ((rl[-1][0] - rl[60][0]) / 60)
    assert 2.5 < leak_kpa_per_min < sc.leak_rate_kpa_per_min + 0.5
    assert abs(fr[-1][1] - fr[0][1]) < 8  # the others only warm up a little
    odo = _series(demo_log, "Vehicle.TraveledDistance")
    assert 5 < odo[-1][1] - odo[0][1] < 30


def test_dtcs_at():
    sc = DemoScenario()
    assert sc.dtcs_at(0) == [] and sc.dtcs_at(sc.dtc.pending_at_s - 0.01) == []
    [(code, status)] = sc.dtcs_at(sc.dtc.pending_at_s)
    assert code == "P0AA6" and status & PENDING and not status & CONFIRMED
    [(code, status)] = sc.dtcs_at(sc.dtc.confirmed_at_s + 1)
    assert status & CONFIRMED and status & WARNING_INDICATOR
    assert obd_code_to_int("P0AA6") == 0x0AA6 and obd_code_to_int("C0750") == 0x4750
    assert obd_code_to_int("U0100") == 0xC100 and sc.dtc.uds_id == 0x0AA600


def test_demo_log_decodes_cleanly(demo_log):
    dec = decoder_for(DEMO_DBC)
    dec.feed_messages(read_log(demo_log))
    s = dec.stats
    assert s.frames == s.decoded > 80_000
    assert not s.out_of_range and not s.dlc_mismatch and not s.unknown_ids and not s.decode_errors
