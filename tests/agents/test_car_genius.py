"""Car Genius on the demo car's simulated drive (decoded from its candump log with the demo DBC and VSS
mapping) and its trouble codes read over UDS from the demo virtual ECUs; plus stale and missing data."""

from __future__ import annotations

import json
from pathlib import Path

import can
import pytest

from edge_assistant.agents.car_genius import CarGenius, DtcEntry, DtcReadout, genius_from_log, topic
from edge_assistant.core.state import VehicleState
from edge_assistant.diagnostics.demo import DEMO_BMS, demo_ecus, read_dtcs_once
from edge_assistant.intents import parse
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, DemoScenario, write_demo_log

RL = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
RANGE = "Vehicle.Powertrain.Range"


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoScenario]:
    path = tmp_path_factory.mktemp("demo") / "drive.log"
    return path, write_demo_log(path)


def _readout_over_uds(genius: CarGenius, sc: DemoScenario, t_s: float) -> DtcReadout:
    """Serve the scenario's codes at ``t_s`` from the demo ECUs and read them with udsoncan."""
    snap = genius.snapshot()
    with demo_ecus(snap, sc.dtcs_at(t_s)):
        bus = can.Bus(interface="virtual", channel="can0")
        try:
            dtcs, source = read_dtcs_once(bus, DEMO_BMS)
        finally:
            bus.shutdown()
    return DtcReadout(tuple(DtcEntry(d.code, d.status.byte, "battery management system", 0x7EC) for d in dtcs),
                      snap.now_s, source)


@pytest.fixture(scope="module")
def genius_end(demo_log) -> CarGenius:
    path, sc = demo_log
    g = genius_from_log(path, DEMO_DBC, DEMO_MAPPING, vehicle="demo_ev")
    g.set_dtcs(_readout_over_uds(g, sc, sc.duration_s))
    return g


def test_low_tyre_named_with_its_rate_of_drop(genius_end: CarGenius, demo_log) -> None:
    _, sc = demo_log
    a = genius_end.answer(parse("Why is the tyre light on?"))
    assert a.intent == "tyres"
    assert a.text.startswith("The tyre pressure lamp is on")
    assert "the rear left tyre is low" in a.text
    assert "front left tyre is low" not in a.text and "rear right tyre is low" not in a.text
    rate, span_s = genius_end.leak_rate_kpa_per_min("rear left")
    # the scenario leaks 4 kPa/min while driving warms the tyre up a little: the net drop is a bit less
    assert 0.7 * sc.leak_rate_kpa_per_min < rate < 1.05 * sc.leak_rate_kpa_per_min
    assert f"dropping about {rate:.1f} kPa per minute" in a.text and span_s >= 600
    used = {v.path: v for v in a.values}
    assert used[RL].value < sc.tpms_lamp_threshold_kpa and used[RL].age_s < 2.0 and not used[RL].stale
    assert used[RL].source.startswith("can:")
    assert not a.missing and not a.stale


def test_soc_and_range_with_their_ages(genius_end: CarGenius) -> None:
    a = genius_end.answer(parse("How much battery do I have left, and what's my range?"))
    assert a.intent == "battery"
    used = {v.path: v for v in a.values}
    soc, rng = used[SOC], used[RANGE]
    assert 0 < soc.value < 100 and soc.age_s is not None and soc.age_s < 2.0
    assert f"{soc.value:.1f}%" in a.text and f"{rng.value / 1000:.0f} km" in a.text
    assert a.text.count("(read ") >= 2  # each value says how old it is


def test_trouble_code_explained_with_urgency(genius_end: CarGenius) -> None:
    a = genius_end.answer(parse("What does the warning light on the dash mean?"))
    assert a.intent == "warnings"
    assert "malfunction (check-engine) lamp" in a.text and "tyre pressure lamp" in a.text
    assert "P0AA6" in a.text and "Severity critical" in a.text and "stop safely" in a.text
    assert "confirmed" in a.text and "warning lamp requested" in a.text
    dtc = next(v for v in a.values if v.path == "diag:dtcs")
    assert dtc.value == ["P0AA6 (0x8F)"] and "udsoncan" in dtc.source and not dtc.stale


def test_no_code_before_it_appears(demo_log) -> None:
    path, sc = demo_log
    g = genius_from_log(path, DEMO_DBC, DEMO_MAPPING, at_s=200.0, vehicle="demo_ev")
    g.set_dtcs(_readout_over_uds(g, sc, 200.0))
    a = g.answer(parse("any fault codes?"))
    assert "No trouble codes are stored" in a.text and "P0AA6" not in a.text
    assert "No warning lamp signal I can read is on" in a.text


def test_stale_data_is_said_when_the_log_is_cut_short(demo_log) -> None:
    path, sc = demo_log
    g = genius_from_log(path, DEMO_DBC, DEMO_MAPPING, at_s=sc.duration_s + 240.0)
    tyres = g.answer(parse("is a tyre low?"))
    assert "All tyre readings are stale" in tyres.text and "rear left tyre is low" not in tyres.text
    assert "rear left tyre pressure" in tyres.stale
    assert all(v.age_s > 200 for v in tyres.values if v.path == RL)
    battery = g.answer(parse("what is my state of charge?"))
    assert "but that reading is stale (4 min ago)" in battery.text
    assert "state of charge" in battery.stale


def test_missing_data_is_said_never_invented() -> None:
    st = VehicleState()
    st.update(SOC, 55.0, "percent", 100.0, "obd:01 5B")
    st.set_time(101.0)
    g = CarGenius(st)
    tyres = g.answer(parse("check my tyre pressures"))
    assert tyres.text == "I have no tyre pressure readings from this car, so I cannot tell which tyre is low."
    assert "rear left tyre pressure" in tyres.missing
    battery = g.answer(parse("battery range?"))
    assert "55.0% (read 1 s ago)" in battery.text
    assert "does not report a range estimate" in battery.text and "estimated range" in battery.missing
    codes = g.answer(parse("any trouble codes?"))
    assert "No trouble codes have been read" in codes.text and "trouble-code read-out" in codes.missing
    charging = g.answer(parse("is it charging?"))
    assert charging.text == "I have no charging-state readings from this car."


def test_asked_wheel_speed_and_temperature(genius_end: CarGenius) -> None:
    a = genius_end.answer(parse("is my front left tyre ok?"))
    assert "The front left tyre is fine at" in a.text and "the rear left tyre is low" in a.text
    assert genius_end.answer(parse("how fast am I going?")).text.startswith("Speed: ")
    t = genius_end.answer(parse("what's the temperature outside?"))
    assert t.intent == "temperature" and "Outside: 6.0°C" in t.text


def test_leak_rate_needs_history_and_tells_a_steady_tyre() -> None:
    st = VehicleState()
    wheels = {"Row1.Wheel.Left": 250.0, "Row1.Wheel.Right": 250.0, "Row2.Wheel.Left": 200.0, "Row2.Wheel.Right": 249.0}
    for w, p in wheels.items():
        st.update(f"Vehicle.Chassis.Axle.{w}.Tire.Pressure", p, "kPa", 0.0, "test")
    g = CarGenius(st)
    first = g.answer(parse("tyres?"))
    assert "rear left tyre is low at 200.0 kPa" in first.text and "not have enough pressure history" in first.text
    for t in range(10, 310, 10):  # five minutes, steady; the state feeds the history (no observe())
        for w, p in wheels.items():
            st.update(f"Vehicle.Chassis.Axle.{w}.Tire.Pressure", p, "kPa", float(t), "test")
    steady = g.answer(parse("tyres?"))
    assert "steady over the last 5 min" in steady.text and "leak" not in steady.text


@pytest.mark.parametrize(("question", "intent"), [
    ("why is the tyre light on?", "tyres"), ("how far can I drive?", "battery"), ("is it charging?", "charging"),
    ("what does code P0AA6 mean", "warnings"), ("when is the next service due", "service"),
    ("give me a status overview", "status"), ("play some jazz", "unknown"),
    ("how fast am I going", "speed"), ("what is the temperature outside", "temperature"),
])
def test_routing(question: str, intent: str) -> None:
    assert topic(parse(question)) == intent


def test_genius_cli_demo_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_assistant.cli import main

    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(tmp_path / "models"))
    out = tmp_path / "answer.json"
    assert main(["genius", "why is the tyre light on?", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["intent"] == "tyres" and "rear left tyre is low" in data["text"]
    assert any(v["path"] == RL and v["age_s"] < 2 for v in data["values"])
    out2 = tmp_path / "codes.json"
    assert main(["genius", "what trouble codes are stored?", "--at", "600", "--json", str(out2)]) == 0
    assert "P0AA6" in json.loads(out2.read_text())["text"]


def test_genius_cli_replay(demo_log, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_assistant.cli import main

    path, _ = demo_log
    assert main(["genius", "how much range?", "--replay", str(path), "--dbc", str(DEMO_DBC),
                 "--mapping", str(DEMO_MAPPING), "--at", "300"]) == 0
    text = capsys.readouterr().out
    assert "Estimated range" in text and "values used:" in text
    assert main(["genius", "x", "--replay", str(path)]) == 1  # --replay without --dbc: clear error
    assert "--replay needs at least one --dbc" in capsys.readouterr().err


@pytest.mark.shared_data
def test_real_kona_log_answers_honestly(can_data: Path, tmp_path: Path) -> None:
    """The Kona EV power-on capture with pcan.dbc and a small VSS mapping written here: real values with
    ages, tyres said missing, an implausible 12 V signal refused, and stale values early in the log."""
    mapping = tmp_path / "kona_vss.json"
    mapping.write_text(json.dumps({"vss_version": "4.0", "vehicle": "Kona EV (test)", "signals": [
        {"message": "BMS_542", "signal": "SocDisp", "vss": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
         "unit": "percent"},
        {"message": "VCU_200", "signal": "Range", "vss": RANGE, "unit": "m", "scale": 1000.0},
        {"message": "BatteryCharging", "signal": "Voltage_12V", "vss": "Vehicle.LowVoltageBattery.CurrentVoltage",
         "unit": "V"},
    ]}))
    log = can_data / "kona_ev" / "230112-7-2019-pcan-ccan-power-off-on-ready-off.csv"
    dbc = can_data / "kona_ev" / "pcan.dbc"
    g = genius_from_log(log, dbc, mapping)
    battery = g.answer(parse("how much battery do I have?"))
    soc = next(v for v in battery.values if v.path.endswith("StateOfCharge.Displayed"))
    assert 5 < soc.value < 100 and soc.age_s < 5 and soc.source.startswith("can:")
    assert f"{soc.value:.1f}%" in battery.text
    tyres = g.answer(parse("tyre pressures?"))
    assert tyres.text.startswith("I have no tyre pressure readings") and len(tyres.missing) == 4
    service = g.answer(parse("anything for the next service?"))
    assert "12 V battery voltage" in service.implausible and "not plausible" in service.text
    assert "12 V battery is low" not in service.text
    early = genius_from_log(log, dbc, mapping, at_s=60.0).answer(parse("battery?"))
    assert "stale" in early.text and early.stale
