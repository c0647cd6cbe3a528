"""Decoding: cantools is the oracle for every frame of the real logs; VSS mapping; bad frames; staleness."""

from __future__ import annotations

import json
import logging
import math

import pytest

from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.core.state import VehicleState
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, decoder_for, state_from_log
from edge_assistant.vehicle.codec import FrameDecoder
from edge_assistant.vehicle.dbc import load_dbc, load_dbc_text
from edge_assistant.vehicle.logs import read_log
from edge_assistant.vehicle.vss import VSS_VERSION, load_mapping, parse_mapping


def _same(ours, ref) -> bool:
    if isinstance(ref, (int, float)) and not isinstance(ref, bool):
        return isinstance(ours, (int, float)) and math.isclose(ours, ref, rel_tol=1e-9, abs_tol=1e-9)
    return str(ours) == str(ref)


def _check_against_cantools(log_path, dbc_path, max_frames=None, channel=None):
    """Every frame of the log decoded by us and by cantools' Message.decode: same values, or ours left out
    because the value is outside the DBC range. Returns (frames compared, values compared)."""
    loaded = load_dbc(dbc_path)
    dec = FrameDecoder([loaded])
    by_id = {m.frame_id: m for m in loaded.database.messages if not m.is_extended_frame}
    n_frames = n_values = 0
    for i, msg in enumerate(read_log(log_path, channel=channel)):
        if max_frames is not None and i >= max_frames:
            break
        m = by_id.get(msg.arbitration_id)
        ours = dec.decode_frame(msg.arbitration_id, bytes(msg.data), msg.is_extended_id)
        if m is None or msg.is_extended_id:
            assert ours == {}
            continue
        ref = m.decode(bytes(msg.data), decode_choices=True, allow_truncated=True, allow_excess=True)
        short = {s.name for s in m.signals} - set(ref)
        n_frames += 1
        for sig in m.signals:
            key = next((k for k in (sig.name, f"{m.name}.{sig.name}") if k in dec.units()), None)
            assert key is not None
            if sig.name in short:
                assert key not in ours, f"0x{m.frame_id:X} {sig.name}: decoded beyond the frame's data"
                continue
            if key in ours:
                assert _same(ours[key], ref[sig.name]), (hex(m.frame_id), sig.name, ours[key], ref[sig.name])
                n_values += 1
            else:
                v = ref[sig.name]
                assert isinstance(v, (int, float)) and not (sig.minimum <= v <= sig.maximum), (sig.name, v)
    return n_frames, n_values


def test_tesla_log_matches_cantools(tesla):
    frames, values = _check_against_cantools(*tesla)
    assert frames > 2000 and values > 15_000


def test_kona_pcan_matches_cantools(kona):
    # the capture holds two buses (GVRET "Bus" 0 = P-CAN, 1 = C-CAN); pcan.dbc describes bus 0
    frames, values = _check_against_cantools(kona["log"], kona["pcan"], channel=0)
    assert frames > 20_000 and values > 150_000


def test_kona_hyundai_matches_cantools(kona):
    frames, values = _check_against_cantools(kona["log"], kona["hyundai"], channel=1)
    assert frames > 10_000 and values > 100_000


def test_demo_log_matches_cantools(demo_log):
    frames, values = _check_against_cantools(demo_log, DEMO_DBC, max_frames=20_000)
    assert frames == 20_000 and values > 80_000


def test_tesla_state_has_dbc_names_and_units(tesla):
    state = state_from_log(tesla[0], tesla[1])
    snap = state.snapshot()
    r = snap.get("DI_torqueMotor")
    assert r is not None and r.unit == "Nm" and r.source == "can:0x106 DI_torque1.DI_torqueMotor"
    assert -750 <= r.value <= 750
    assert snap.get("DI_gear") is not None and snap.value("DI_gear") in {"INVALID", "P", "R", "N", "D", "DI_GEAR_P",
                                                                         "DI_GEAR_R", "DI_GEAR_N", "DI_GEAR_D"} | set(
        str(v) for v in load_dbc(tesla[1]).database.get_message_by_name("DI_torque2")
        .get_signal_by_name("DI_gear").choices.values())
    assert snap.now_s == pytest.approx(174.0)


def test_kona_battery_plausible_and_changing_across_power_on(kona):
    log, dbcs = kona["log"], [kona["pcan"]]
    off = state_from_log(log, dbcs, until_s=1.5, channel=0).snapshot()
    ready = state_from_log(log, dbcs, until_s=6.0, channel=0).snapshot()
    after = state_from_log(log, dbcs, channel=0).snapshot()
    # powered off: the BMS is asleep, nothing about the battery on P-CAN
    assert off.get("SoC_Maybe") is None and off.get("VBatt") is None
    # powered on: SoC (0.5 % steps + 0.1 % fraction) and pack voltage physically plausible and consistent:
    # a 98-cell NMC pack (Kona EV 64 kWh) at ~36 % SoC sits near 3.6 V per cell
    soc = ready.value("SoC_Maybe") + ready.value("SoC_Fraction")
    volts = ready.value("VBatt")
    assert 5 < soc < 100 and ready.get("SoC_Maybe").unit == "%"
    assert 250 < volts < 420 and ready.get("VBatt").unit == "V"
    assert 3.4 < volts / 98 < 3.9
    assert ready.value("ContactorClosed") == 1 and ready.age_s("VBatt") < 0.5
    # the pack delivers current while ready and the voltage moves with it
    series = []
    dec = decoder_for(kona["pcan"])
    for msg in read_log(log, channel=0):
        if msg.arbitration_id == 0x595:
            v = dec.decode_frame(0x595, bytes(msg.data))
            series.append((v["VBatt"], v["Batt_HV_Status.IBatt"]))
    volts_seen = {v for v, _ in series}
    assert max(a for _, a in series) > 1.0 and len(volts_seen) > 1 and max(volts_seen) - min(volts_seen) < 5
    # powered off again: the BMS stops sending, the last values are stale
    assert after.age_s("VBatt") > 1.0 and after.is_stale("SoC_Maybe", 1.0)
    assert after.value("ContactorClosed") == 0


def test_kona_lamps_and_ignition_with_hyundai_dbc(kona):
    dec = decoder_for(kona["hyundai"])
    series: dict[str, list] = {}
    t0 = None
    for msg in read_log(kona["log"], channel=1):  # C-CAN
        t0 = msg.timestamp if t0 is None else t0
        for key, v in dec.decode_frame(msg.arbitration_id, bytes(msg.data)).items():
            if key in ("CF_Gway_IGNSw", "TCS15.ABS_W_LAMP", "TPMS_W_LAMP"):
                s = series.setdefault(key, [])
                if not s or s[-1][1] != v:
                    s.append((round(msg.timestamp - t0, 1), v))
    ign = [v for _, v in series["CF_Gway_IGNSw"]]
    assert ign[0] == 0 and ign[-1] == 0 and max(ign) > 0  # off -> on/start -> off
    abs_lamp = [v for _, v in series["TCS15.ABS_W_LAMP"]]
    assert abs_lamp[:3] == [1, 0, 1]  # lamp on at wake-up, clears once the ABS self-test passes, on at shut-down
    assert series["TPMS_W_LAMP"][0][1] == 1 and 0 in [v for _, v in series["TPMS_W_LAMP"]]


def test_two_dbcs_first_wins_with_a_warning(kona, caplog):
    with caplog.at_level(logging.WARNING):
        dec = decoder_for([kona["pcan"], kona["hyundai"]])
    assert "already defined by an earlier DBC" in caplog.text
    assert 0x595 in dec.frame_ids and 0x386 in dec.frame_ids


# ---- demo car through the VSS mapping ------------------------------------------------------------

def test_demo_mapping_values(demo_log, demo_scenario):
    snap = state_from_log(demo_log, DEMO_DBC, DEMO_MAPPING).snapshot()
    assert snap.get("Vehicle.Speed").unit == "km/h"
    soc = snap.value("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert 60 < soc < demo_scenario.soc_start_pct
    assert snap.value("Vehicle.Powertrain.Range") > 100_000 and snap.get("Vehicle.Powertrain.Range").unit == "m"
    assert snap.value("Vehicle.Powertrain.Transmission.SelectedGear") == 126  # parked at the end (VSS: 126 = P)
    rl = snap.value("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure")
    fl = snap.value("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure")
    assert rl < demo_scenario.tpms_lamp_threshold_kpa < fl
    assert snap.value("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.IsPressureLow") is True
    assert snap.value("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.IsPressureLow") is False
    assert snap.value("Vehicle.OBD.Status.IsMILOn") is True
    assert snap.value("Vehicle.Powertrain.TractionBattery.Charging.IsCharging") is False
    assert snap.value("Vehicle.LowVoltageSystemState") in ("ON", "OFF", "ACC")
    # sign convention: VSS current is positive into the battery; the DBC is positive out
    cur = snap.get("Vehicle.Powertrain.TractionBattery.CurrentCurrent")
    assert cur.unit == "A" and cur.source == "can:0x200 BMS_Pack.PackCurrent"
    # the pending batch was rounded to the DBC resolution: no 12.600000000000001
    assert snap.value("Vehicle.LowVoltageBattery.CurrentVoltage") in (12.6, 14.2)
    # multiplexed pages both decoded
    assert 3.0 < snap.value("Vehicle.Powertrain.TractionBattery.CellVoltage.Min") < 4.3
    assert -40 < snap.value("Vehicle.Powertrain.TractionBattery.Temperature.Max") < 60


def test_demo_charging_at_start(demo_log):
    snap = state_from_log(demo_log, DEMO_DBC, DEMO_MAPPING, until_s=5.0).snapshot()
    assert snap.value("Vehicle.Powertrain.TractionBattery.Charging.IsCharging") is True
    assert snap.value("Vehicle.Powertrain.TractionBattery.Charging.IsChargingCableConnected") is True
    assert snap.value("Vehicle.Powertrain.TractionBattery.CurrentCurrent") > 0  # into the battery
    assert snap.value("Vehicle.OBD.Status.IsMILOn") is False


def test_only_mapped_signals_are_decoded(demo_log):
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING)
    frames = list(read_log(demo_log))[:2000]
    dec.feed_messages(frames)
    keys = set(dec.state.snapshot().readings)
    assert all(k.startswith("Vehicle.") for k in keys)
    assert "VCU_Counter" not in keys and dec.stats.unknown_ids == {}


def test_staleness_in_the_snapshot():
    dec = FrameDecoder([load_dbc(DEMO_DBC)], load_mapping(DEMO_MAPPING), VehicleState())
    dec.feed(0x100, bytes.fromhex("D007030000000000"), 100.0)  # 20.00 km/h, gear D
    dec.feed(0x310, bytes.fromhex("5C7B000000000000"), 95.0)  # outside 6 C
    dec.flush()
    dec.state.set_time(104.0)
    snap = dec.state.snapshot()
    assert snap.value("Vehicle.Speed") == 20.0 and snap.value("Vehicle.Powertrain.Transmission.SelectedGear") == 127
    assert snap.age_s("Vehicle.Speed") == pytest.approx(4.0) and snap.age_s("Vehicle.Exterior.AirTemperature") == 9.0
    assert not snap.is_stale("Vehicle.Speed", 5.0) and snap.is_stale("Vehicle.Exterior.AirTemperature", 5.0)
    assert snap.is_stale("Vehicle.Powertrain.Range", 5.0)  # never seen


# ---- bad frames ------------------------------------------------------------------------------------

def test_unknown_ids_are_counted(caplog):
    dec = decoder_for(DEMO_DBC)
    assert dec.feed(0x7E8, b"\x01", 1.0) == 0
    dec.feed(0x7E8, b"\x01", 1.1)
    dec.feed(0x18DAF110, b"\x01", 1.2, is_extended=True)
    assert dec.stats.as_dict()["unknown_ids"] == {"0x7E8": 2, "0x18DAF110x": 1}
    assert dec.stats.decoded == 0


def test_short_and_long_frames_are_reported_with_the_frame_id(caplog):
    dec = decoder_for(DEMO_DBC)
    with caplog.at_level(logging.WARNING):
        short = dec.decode_frame(0x200, bytes.fromhex("420F89FF"))  # 4 of 8 bytes: voltage and current only
        long = dec.decode_frame(0x200, bytes.fromhex("420F89FF392A0300AABBCCDD"))
    assert short == {"PackVoltage": 390.6, "PackCurrent": -11.9}
    assert long["PackVoltage"] == 390.6 and long["SoC"] == 81.0 and len(long) == 4
    assert dec.stats.as_dict()["dlc_mismatch"] == {"0x200": 2}
    assert "frame 0x200 (BMS_Pack): 4 data bytes, DBC says 8" in caplog.text


def test_out_of_range_values_are_dropped_and_reported(caplog):
    dec = decoder_for(DEMO_DBC)
    with caplog.at_level(logging.WARNING):
        values = dec.decode_frame(0x200, bytes.fromhex("FFFF0000FFFF0300"))  # 6553.5 V, SoC 102.3 %
    assert "PackVoltage" not in values and "SoC" not in values and values["PackCurrent"] == 0.0
    assert dec.stats.out_of_range["0x200 BMS_Pack.PackVoltage"] == 1
    assert "frame 0x200 BMS_Pack.PackVoltage: value 6553.5 outside the DBC range" in caplog.text


def test_multiplexed_pages(caplog):
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING)
    page0 = dec.decode_frame(0x202, bytes([0x00, 0xAE, 0x0F, 0xC3, 0x0F, 0, 0, 0]))
    page1 = dec.decode_frame(0x202, bytes([0x01, 0x37, 0x3E, 0, 0, 0, 0, 0]))
    page9 = dec.decode_frame(0x202, bytes([0x09, 1, 2, 3, 4, 5, 6, 7]))
    assert page0 == {"Vehicle.Powertrain.TractionBattery.CellVoltage.Min": 4.014,
                     "Vehicle.Powertrain.TractionBattery.CellVoltage.Max": 4.035}
    assert page1 == {"Vehicle.Powertrain.TractionBattery.Temperature.Min": 15,
                     "Vehicle.Powertrain.TractionBattery.Temperature.Max": 22}
    assert page9 == {}
    assert dec.stats.as_dict()["unknown_mux"] == {"0x202": 1}
    assert "frame 0x202 (BMS_CellStats): multiplexer CellStatsPage=9 selects no signal" in caplog.text


def test_float_and_nested_multiplexing_fall_back_to_cantools():
    text = ('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\n'
            'BO_ 256 F: 8 A\n SG_ Temp : 0|32@1- (1,0) [-100|100] "degC" A\n SG_ K : 32|8@1+ (1,0) [0|255] "" A\n\n'
            'SIG_VALTYPE_ 256 Temp : 1;\n')
    dec = FrameDecoder([load_dbc_text(text, "float.dbc")])
    import struct
    values = dec.decode_frame(0x100, struct.pack("<fB3x", 21.5, 7))
    assert values == {"Temp": 21.5, "K": 7}


def test_extended_ids_decode():
    text = ('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\n'
            'BO_ 2566844416 EXT: 8 A\n SG_ Speed : 7|16@0+ (0.1,0) [0|300] "km/h" A\n')
    dec = FrameDecoder([load_dbc_text(text, "ext.dbc")])
    assert dec.decode_frame(0x18FEF000, bytes.fromhex("0384000000000000"), is_extended=True) == {"Speed": 90.0}
    assert dec.decode_frame(0x18FEF000 & 0x7FF, bytes(8)) == {}


# ---- mapping files ---------------------------------------------------------------------------------

def test_demo_mapping_follows_the_pinned_vss_version():
    m = load_mapping(DEMO_MAPPING)
    assert m.vss_version == VSS_VERSION == "4.0"
    paths = {s.vss_path for s in m.signals}
    assert {"Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "Vehicle.Powertrain.Range",
            "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", "Vehicle.TraveledDistance"} <= paths


def test_mapping_errors_name_the_file_and_entry(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"vss_version": "4.0",\n "signals": [\n  {"message": "VCU_Drive",}\n]}', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_mapping(bad)
    assert err.value.where == f"{bad}:3"
    with pytest.raises(ConfigError, match=r"signals\[1\]: key 'vss'"):
        parse_mapping({"signals": [{"message": "A", "signal": "B", "vss": "Vehicle.Speed"},
                                   {"message": "A", "signal": "C"}]}, "x.json")
    with pytest.raises(ConfigError, match="'vss_version' is '3.1'"):
        parse_mapping({"vss_version": "3.1", "signals": []}, "x.json")
    with pytest.raises(ConfigError, match="mapped twice"):
        parse_mapping({"signals": [{"message": "A", "signal": "B", "vss": "Vehicle.Speed"}] * 2}, "x.json")


def test_mapping_to_unknown_message_or_signal_warns(tmp_path, caplog):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"vss_version": "4.0", "signals": [
        {"message": "NoSuchMessage", "signal": "X", "vss": "Vehicle.Speed"},
        {"message": "0x100", "signal": "NoSuchSignal", "vss": "Vehicle.IsMoving"},
        {"message": "0x100", "signal": "VehicleSpeed", "vss": "Vehicle.AverageSpeed"}]}), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        dec = decoder_for(DEMO_DBC, path)
    assert "NoSuchMessage" in caplog.text and "NoSuchSignal" in caplog.text
    assert dec.decode_frame(0x100, bytes.fromhex("D007030000000000")) == {"Vehicle.AverageSpeed": 20.0}
    assert dec.decode_frame(0x200, bytes(8)) == {} and dec.stats.unmapped == 1


@pytest.mark.parametrize(("numbers", "what"), [("(1e999,0) [0|100]", "scale"), ("(1,-1e999) [0|100]", "offset"),
                                               ("(1,0) [-1e999|100]", "minimum"), ("(1,0) [0|1e999]", "maximum"),
                                               ("(1,0) [0|100]", "nan")])
def test_dbc_with_infinite_or_nan_numbers_is_named(numbers, what):
    text = ('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\n'
            f'BO_ 256 Therm: 8 A\n SG_ Temp : 0|16@1+ {numbers} "degC" A\n')
    loaded = load_dbc_text(text, "inf.dbc")
    if what == "nan":  # DBC syntax cannot spell NaN; other loaders (or code) can set it
        loaded.database.messages[0].signals[0].scale = float("nan")
        what = "scale"
    with pytest.raises(DataFormatError) as err:
        FrameDecoder([loaded])
    assert err.value.where == "inf.dbc: message Therm (0x100) signal Temp"
    assert err.value.reason.startswith(f"{what} is ") and "finite" in err.value.reason


@pytest.mark.parametrize("bad", ['"scale": Infinity', '"offset": NaN', '"scale": 1e999', '"offset": -Infinity'])
def test_mapping_with_non_finite_scale_or_offset_is_named(tmp_path, bad):
    path = tmp_path / "m.json"
    path.write_text('{"signals": [{"message": "A", "signal": "B", "vss": "Vehicle.Speed", ' + bad + '}]}',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"m.json: signals\[0\]: keys 'scale'/'offset' must be finite"):
        load_mapping(path)


def test_non_utf8_mapping_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "m.json"
    path.write_bytes(b'{"vehicle": "Citro\xebn", "signals": []}')
    with pytest.raises(DataFormatError) as err:
        load_mapping(path)
    assert err.value.where == str(path) and "byte 0xEB at offset 18 is not UTF-8" in err.value.reason
