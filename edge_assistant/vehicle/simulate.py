"""A seeded simulator of the demo electric vehicle: writes a realistic candump log of one drive.

The scenario (:class:`DemoScenario`) is: parked on a charger that finishes, unplugged, then a drive of
urban and highway stretches. Along the way: state of charge falls with the energy used (simple
longitudinal model: rolling, aero, acceleration, regeneration, auxiliaries), range follows it, the pack
voltage sags under current, the cabin warms up, the rear-left tyre leaks slowly until the tyre
pressure lamp comes on, and an isolation fault trouble code (P0AA6) becomes pending, then confirmed
with the malfunction lamp on, at known times.

The same seed and duration always give the same log, byte for byte. ``DemoScenario.dtcs_at(t_s)``
gives the trouble codes a diagnostic ECU should report at time ``t_s`` since the start of the log.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

from edge_assistant.vehicle.dbc import load_dbc

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_DBC = DEMO_DIR / "ea_demo_ev.dbc"
DEMO_MAPPING = DEMO_DIR / "ea_demo_ev_vss.json"

# UDS DTC status bits (ISO 14229-1 DTCStatusMask)
TEST_FAILED = 0x01
TEST_FAILED_THIS_CYCLE = 0x02
PENDING = 0x04
CONFIRMED = 0x08
WARNING_INDICATOR = 0x80

#: The comfort settings the demo car drives with (status signals of ``HVAC_Comfort`` and ``OBC_ChargeSettings``):
#: the log sends them unchanged; the virtual comfort ECU starts from them and applies the head unit's requests.
#: Bumped whenever the frames a drive contains change, so that cached drives (agents/demo.py) are rebuilt.
SIMULATOR_VERSION = 2

COMFORT_STATUS: dict[str, dict[str, float]] = {
    "HVAC_Comfort": {"DriverTempSetpoint": 21.0, "FanSpeed": 43, "SeatHeatDriver": 0, "SeatHeatPassenger": 0,
                     "ACActive": 1, "DefrostFront": 0, "DefrostRear": 0},
    "OBC_ChargeSettings": {"ChargeLimit": 80},
}


@dataclass(frozen=True)
class DemoDtc:
    """One trouble code of the scenario.

    ``code`` is the SAE J2012 form (``P0AA6``); ``uds_id`` the 3-byte UDS DTC number (2-byte OBD code
    followed by failure-type byte 0x00); ``pending_at_s``/``confirmed_at_s`` are seconds since the log's
    first frame.
    """

    code: str
    uds_id: int
    pending_at_s: float
    confirmed_at_s: float
    ecu: str  # the ECU that stores it, e.g. "BMS" (OBD-II address 0x7E4 in the demo)


def obd_code_to_int(code: str) -> int:
    """``P0AA6`` -> 0x0AA6 (the two bytes OBD-II mode 03 returns)."""
    letters = {"P": 0, "C": 1, "B": 2, "U": 3}
    return (letters[code[0]] << 14) | (int(code[1], 16) << 12) | int(code[2:], 16)


@dataclass(frozen=True)
class DemoScenario:
    """Parameters of one simulated drive (times in seconds since the first frame)."""

    duration_s: float = 720.0
    seed: int = 1
    start_epoch_s: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the log's clock origin
    charge_end_s: float = 20.0  # charger reports complete
    unplug_s: float = 30.0
    drive_start_s: float = 45.0  # READY and gear D
    park_before_end_s: float = 25.0  # gear P this long before the end
    soc_start_pct: float = 81.0
    pack_capacity_kwh: float = 64.0
    outside_temp_c: float = 6.0
    tire_placard_kpa: float = 250.0
    leak_tire: str = "RL"
    leak_start_kpa: float = 228.0
    leak_rate_kpa_per_min: float = 4.0
    dtc: DemoDtc = DemoDtc("P0AA6", 0x0AA600, pending_at_s=300.0, confirmed_at_s=420.0, ecu="BMS")

    @property
    def tpms_lamp_threshold_kpa(self) -> float:
        """25 % below placard (the FMVSS 138 warning threshold)."""
        return 0.75 * self.tire_placard_kpa

    def tire_pressure_kpa(self, wheel: str, t_s: float) -> float:
        """Cold-ish pressure plus a slow warm-up; the leaking tyre loses ``leak_rate`` per minute."""
        base = {"FL": 251.0, "FR": 249.5, "RL": 250.5, "RR": 248.0}[wheel]
        if wheel == self.leak_tire:
            base = self.leak_start_kpa - self.leak_rate_kpa_per_min * t_s / 60.0
        warm = 6.0 * (1.0 - math.exp(-max(0.0, t_s - self.drive_start_s) / 600.0))
        return max(0.0, base + warm)

    def tpms_lamp_on_at_s(self) -> float:
        """First time the leaking tyre is below the lamp threshold (solved numerically to 0.1 s)."""
        t = 0.0
        while t < 24 * 3600:
            if self.tire_pressure_kpa(self.leak_tire, t) < self.tpms_lamp_threshold_kpa:
                return t
            t += 0.1
        return math.inf

    def dtcs_at(self, t_s: float) -> list[tuple[str, int]]:
        """Trouble codes stored at ``t_s``: ``[(code, UDS status byte)]`` (empty before it appears)."""
        d = self.dtc
        if t_s < d.pending_at_s:
            return []
        if t_s < d.confirmed_at_s:
            return [(d.code, TEST_FAILED | TEST_FAILED_THIS_CYCLE | PENDING)]
        return [(d.code, TEST_FAILED | TEST_FAILED_THIS_CYCLE | PENDING | CONFIRMED | WARNING_INDICATOR)]

    def mil_on_at(self, t_s: float) -> bool:
        return t_s >= self.dtc.confirmed_at_s


def _speed_profile(sc: DemoScenario, rng: random.Random) -> list[tuple[float, float]]:
    """Target speed segments ``(until_s, km/h)``: urban stops and a highway stretch, seeded."""
    segs: list[tuple[float, float]] = []
    t = sc.drive_start_s
    end = sc.duration_s - sc.park_before_end_s - 15.0
    plan = ["urban", "urban", "highway", "highway", "urban", "stop", "urban", "highway", "urban"]
    i = 0
    while t < end:
        kind = plan[i % len(plan)]
        i += 1
        if kind == "stop":
            dur, v = rng.uniform(10, 25), 0.0
        elif kind == "urban":
            dur, v = rng.uniform(30, 70), rng.choice([30.0, 40.0, 50.0])
        else:
            dur, v = rng.uniform(60, 120), rng.choice([100.0, 110.0, 120.0])
        t = min(end, t + dur)
        segs.append((t, v))
    segs.append((sc.duration_s, 0.0))
    return segs


def simulate_frames(sc: DemoScenario):
    """Yield ``can.Message`` of the drive in time order (deterministic for a given scenario)."""
    import can

    rng = random.Random(sc.seed)
    db = load_dbc(DEMO_DBC).database
    msgs = {m.name: m for m in db.messages}
    segs = _speed_profile(sc, rng)

    mass_kg, cda_m2, crr, eta, regen_eff = 1750.0, 0.62, 0.010, 0.90, 0.65
    wheel_r_m, ratio = 0.33, 9.0
    soc = sc.soc_start_pct
    cap_kwh = sc.pack_capacity_kwh
    v_ms = 0.0
    odo_km = 23_417.3 + rng.uniform(0, 50)
    cabin_c = sc.outside_temp_c + 2.0
    pack_c = 17.0
    consumption_kwh_per_km = 0.17
    dt = 0.02  # 50 Hz base tick
    n_ticks = int(round(sc.duration_s / dt))
    seg_i = 0
    counter = 0
    t0 = sc.start_epoch_s
    lamp_t = sc.tpms_lamp_on_at_s()

    def frame(name: str, t: float, **values) -> can.Message:
        m = msgs[name]
        data = m.encode(values, scaling=True, padding=False, strict=True)
        return can.Message(timestamp=t0 + t, arbitration_id=m.frame_id, data=data, is_extended_id=False,
                           channel="can0")

    for tick in range(n_ticks):
        t = tick * dt
        ms = tick * 20  # integer milliseconds keep the schedule exact
        driving = sc.drive_start_s <= t < sc.duration_s - sc.park_before_end_s
        while seg_i < len(segs) - 1 and t >= segs[seg_i][0]:
            seg_i += 1
        target = segs[seg_i][1] / 3.6 if driving else 0.0
        accel = max(-2.5, min(1.8, (target - v_ms) * 0.35))
        v_ms = max(0.0, v_ms + accel * dt)
        if v_ms == 0.0:
            accel = 0.0
        wheel_power_w = (mass_kg * accel + 0.5 * 1.2 * cda_m2 * v_ms**2 + crr * mass_kg * 9.81) * v_ms
        aux_w = 350.0 + (2200.0 if cabin_c < 20.5 else 600.0)
        charging = t < sc.charge_end_s
        if charging:
            batt_power_w = -7_200.0 + aux_w  # 7.2 kW AC charging
        else:
            batt_power_w = (wheel_power_w / eta if wheel_power_w >= 0 else wheel_power_w * regen_eff) + aux_w
        soc = min(100.0, max(0.0, soc - batt_power_w * dt / 3600.0 / (cap_kwh * 1000.0) * 100.0))
        ocv = 96 * (3.45 + 0.75 * soc / 100.0)
        current_a = batt_power_w / ocv
        pack_v = ocv - 0.09 * current_a
        odo_km += v_ms * dt / 1000.0
        if v_ms > 1.0 and wheel_power_w > 0:
            inst = batt_power_w / 1000.0 / (v_ms * 3.6)
            consumption_kwh_per_km += (inst - consumption_kwh_per_km) * dt / 300.0
        cabin_c += ((21.0 if t >= sc.unplug_s else cabin_c) - cabin_c) * dt / 240.0
        pack_c += (current_a * current_a * 0.09 / 400_000.0 - (pack_c - sc.outside_temp_c) / 40_000.0) * dt

        gear = 3 if driving else 0
        power_mode = 3 if t >= sc.drive_start_s - 5 and t < sc.duration_s - 5 else 2
        counter = (counter + 1) & 0xF
        motor_rpm = v_ms / wheel_r_m * ratio * 60.0 / (2 * math.pi)
        torque = (mass_kg * accel + crr * mass_kg * 9.81) * wheel_r_m / ratio if v_ms > 0 else 0.0
        yield frame("VCU_Drive", t, VehicleSpeed=round(v_ms * 3.6, 2), GearSelected=gear,
                    AccelPedal=min(100.0, max(0.0, round(accel * 40, 1))) if accel > 0 else 0.0,
                    BrakePressed=int(accel < -0.3), DriveReady=int(power_mode == 3), VCU_Counter=counter)
        yield frame("MCU_Motor", t + 0.001, MotorSpeed=int(motor_rpm), MotorTorque=round(torque, 1),
                    InverterTemp=int(pack_c + 8))
        if ms % 100 == 0:
            yield frame("BMS_Pack", t + 0.002, PackVoltage=round(pack_v, 1), PackCurrent=round(current_a, 1),
                        PackTempAvg=int(round(pack_c)), SoC=round(soc, 1))
        if ms % 500 == 0:
            page = (ms // 500) % 2
            if page == 0:
                cell = pack_v / 96
                yield frame("BMS_CellStats", t + 0.003, CellStatsPage=0, CellVoltageMin=round(cell - 0.012, 3),
                            CellVoltageMax=round(cell + 0.009, 3))
            else:
                yield frame("BMS_CellStats", t + 0.003, CellStatsPage=1,
                            CellTempMin=int(pack_c - 2), CellTempMax=int(pack_c + 3))
        if ms % 1000 == 0:
            energy = soc / 100.0 * cap_kwh
            usable = max(0.0, energy - 0.04 * cap_kwh)
            yield frame("BMS_Energy", t + 0.004, SoCDisplayed=round(soc * 2) / 2,
                        RangeEstimate=int(usable / max(0.12, consumption_kwh_per_km)),
                        EnergyRemaining=round(energy, 2), BatteryWarningLamp=int(soc < 10.0))
            pressures = {w: sc.tire_pressure_kpa(w, t) for w in ("FL", "FR", "RL", "RR")}
            low = {w: int(p < sc.tpms_lamp_threshold_kpa) for w, p in pressures.items()}
            yield frame("TPMS_Status", t + 0.005,
                        **{f"TirePressure{w}": round(p * 2) / 2 for w, p in pressures.items()},
                        **{f"TireLow{w}": v for w, v in low.items()}, TPMSLamp=int(t >= lamp_t))
            yield frame("HVAC_Temps", t + 0.006, OutsideAirTemp=round(sc.outside_temp_c * 2) / 2,
                        CabinAirTemp=round(cabin_c * 2) / 2,
                        CabinSetpoint=COMFORT_STATUS["HVAC_Comfort"]["DriverTempSetpoint"])
            yield frame("HVAC_Comfort", t + 0.0065, **COMFORT_STATUS["HVAC_Comfort"])
            yield frame("CLU_Status", t + 0.007, Odometer=round(odo_km, 1), MILOn=int(sc.mil_on_at(t)),
                        LowVoltageSupply=14.2 if power_mode == 3 else 12.6, PowerMode=power_mode)
            if t < sc.charge_end_s:
                state, cable = 2, 1
            elif t < sc.unplug_s:
                state, cable = 3, 1
            else:
                state, cable = 0, 0
            remaining = max(0.0, (sc.soc_start_pct + 0.1 - soc) / 100.0 * cap_kwh / 7.2 * 60.0) if state == 2 else 0.0
            yield frame("OBC_Charging", t + 0.008, ChargeState=state, ChargeCableConnected=cable,
                        ChargePower=7.2 if state == 2 else 0.0, ChargeTimeRemaining=int(remaining))
            yield frame("OBC_ChargeSettings", t + 0.009, **COMFORT_STATUS["OBC_ChargeSettings"])


_LOG_CACHE: dict[DemoScenario, str] = {}  # scenario -> candump text (the simulation is deterministic)
_LOG_CACHE_MAX = 4


def demo_log_text(scenario: DemoScenario) -> str:
    """The candump text of ``scenario`` (simulated once per process, then reused: same scenario, same bytes)."""
    from edge_assistant.vehicle.logs import format_candump_line

    text = _LOG_CACHE.get(scenario)
    if text is None:
        text = "".join(format_candump_line(m, "can0") + "\n" for m in simulate_frames(scenario))
        if len(_LOG_CACHE) >= _LOG_CACHE_MAX:
            _LOG_CACHE.pop(next(iter(_LOG_CACHE)))
        _LOG_CACHE[scenario] = text
    return text


def write_demo_log(path: str | Path, duration_s: float = 720.0, seed: int = 1,
                   scenario: DemoScenario | None = None) -> DemoScenario:
    """Simulate the demo drive into a candump log at ``path``; returns the scenario used."""
    sc = scenario if scenario is not None else DemoScenario(duration_s=float(duration_s), seed=int(seed))
    text = demo_log_text(sc)
    Path(path).write_text(text, encoding="ascii")
    log.info("wrote %d frames (%.0f s, seed %d) to %s", text.count("\n"), sc.duration_s, sc.seed, path)
    return sc
