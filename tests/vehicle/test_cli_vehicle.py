"""The vehicle-side commands, run in-process through the real CLI entry point."""

from __future__ import annotations

import json
import threading

import can
import pytest

from edge_assistant.cli import main
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING
from edge_assistant.vehicle.bus import wait_until
from edge_assistant.vehicle.logs import read_log


def test_vehicle_simulate(tmp_path, capsys):
    out = tmp_path / "drive.log"
    assert main(["vehicle", "simulate", "-o", str(out), "--duration", "30", "--seed", "3", "--json", "-"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["seed"] == 3 and info["dtc"]["code"] == "P0AA6" and info["dbc"] == str(DEMO_DBC)
    frames = list(read_log(out))
    assert frames[-1].timestamp - frames[0].timestamp == pytest.approx(30, abs=0.1)


def test_vehicle_simulate_bad_duration(tmp_path, capsys):
    assert main(["vehicle", "simulate", "-o", str(tmp_path / "x.log"), "--duration", "-1"]) == 1
    assert "--duration" in capsys.readouterr().err


def test_vehicle_watch_replay_json_with_mapping(demo_log, tmp_path, capsys):
    short = tmp_path / "short.log"
    lines = demo_log.read_text().splitlines()[:6000]  # ~50 s of drive
    short.write_text("\n".join(lines) + "\n")
    rc = main(["vehicle", "watch", "--dbc", str(DEMO_DBC), "--mapping", str(DEMO_MAPPING), "--replay", str(short),
               "--bus", "virtual:watch-test-1", "--speed", "max", "--json", "--refresh-s", "0.2", "--stale-s", "5"])
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = last["values"]
    assert last["stats"]["frames"] == 6000 and last["stats"]["decoded"] == 6000
    assert v["Vehicle.Speed"]["unit"] == "km/h" and v["Vehicle.Speed"]["stale"] is False
    assert v["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]["unit"] == "percent"
    assert all(k.startswith("Vehicle.") for k in v)


def test_vehicle_watch_without_mapping_shows_dbc_names(demo_log, tmp_path, capsys):
    short = tmp_path / "short.log"
    short.write_text("\n".join(demo_log.read_text().splitlines()[:3000]) + "\n")
    rc = main(["vehicle", "watch", "--dbc", str(DEMO_DBC), "--replay", str(short), "--bus", "virtual:watch-test-2",
               "--speed", "max", "--refresh-s", "0.2", "--json"])
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = last["values"]
    assert v["VehicleSpeed"]["unit"] == "km/h" and v["PackVoltage"]["unit"] == "V" and "Vehicle.Speed" not in v
    assert v["GearSelected"]["value"] == "P" and v["VehicleSpeed"]["source"] == "can:0x100 VCU_Drive.VehicleSpeed"


def test_vehicle_watch_table(demo_log, tmp_path, capsys):
    short = tmp_path / "short.log"
    short.write_text("\n".join(demo_log.read_text().splitlines()[:500]) + "\n")
    rc = main(["vehicle", "watch", "--dbc", str(DEMO_DBC), "--mapping", str(DEMO_MAPPING), "--replay", str(short),
               "--bus", "virtual:watch-test-3", "--speed", "max", "--refresh-s", "0.2", "--filter", "Tire"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure" in out and "kPa" in out
    assert "Vehicle.Speed " not in out


def test_render_table_marks_stale():
    from edge_assistant.cli.vehicle_watch import render_table
    from edge_assistant.core.state import VehicleState

    st = VehicleState()
    st.update("Vehicle.Speed", 50.0, "km/h", 100.0, "can:0x100")
    st.update("Vehicle.Exterior.AirTemperature", 6.0, "celsius", 90.0, "can:0x310")
    text = render_table(st.snapshot(now_s=101.0), 3.0, {"frames": 2})
    speed = next(ln for ln in text.splitlines() if "Vehicle.Speed" in ln)
    temp = next(ln for ln in text.splitlines() if "AirTemperature" in ln)
    assert "STALE" not in speed and "STALE" in temp and "11.00" in temp


def test_vehicle_watch_bad_dbc_names_file(tmp_path, capsys):
    bad = tmp_path / "bad.dbc"
    bad.write_text('VERSION ""\nBO_ oops\n')
    assert main(["vehicle", "watch", "--dbc", str(bad), "--bus", "virtual:watch-test-4", "--duration", "0.1"]) == 1
    assert f"{bad}:" in capsys.readouterr().err


def test_can_replay_cli(demo_log, tmp_path, capsys):
    short = tmp_path / "short.log"
    short.write_text("\n".join(demo_log.read_text().splitlines()[:1000]) + "\ngarbage\n")
    assert main(["can", "replay", str(short), "--channel", "replay-cli", "--speed", "max", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames_sent"] == 1000 and out["bad_lines"] == 1 and out["speed"] == "max"


def test_can_replay_cli_plays_past_a_corrupt_time_stamp(tmp_path, capsys):
    log = tmp_path / "jump.log"
    log.write_text("(10.000000) can0 100#01\n(10.010000) can0 101#02\n(4000000000.000000) can0 102#03\n"
                   "(10.020000) can0 103#04\n(10.030000) can0 104#05\n", encoding="ascii")
    assert main(["can", "replay", str(log), "--channel", "replay-jump", "--max-gap", "1", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames_sent"] == 5 and out["discontinuities"] == 2 and out["bad_timestamps"] == 0
    assert main(["can", "replay", str(log), "--max-gap", "0"]) == 1
    assert "--max-gap" in capsys.readouterr().err


def test_can_replay_missing_file(tmp_path, capsys):
    assert main(["can", "replay", str(tmp_path / "none.log"), "--speed", "max"]) == 1
    assert "none.log" in capsys.readouterr().err


def test_can_record_cli(tmp_path, channel, capsys):
    out = tmp_path / "rec.log"
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(main([
        "can", "record", "--interface", "virtual", "--channel", channel, "-o", str(out), "--max-frames", "100",
        "--duration", "10", "--json", "-"])))
    tx = can.Bus(interface="virtual", channel=channel)
    t.start()
    # the recorder opens its bus before it starts its reader thread: once that runs, no frame is missed
    assert wait_until(lambda: any(th.name == f"bus-reader-virtual:{channel}" for th in threading.enumerate()), 10.0)
    sent = [can.Message(arbitration_id=0x100 + i, data=bytes([i, i]), is_extended_id=i % 2 == 1) for i in range(120)]
    for m in sent:
        tx.send(m)
    t.join(15)
    tx.shutdown()
    assert result == [0]
    got = list(read_log(out))
    assert [(m.arbitration_id, bytes(m.data), m.is_extended_id) for m in got] == \
           [(m.arbitration_id, bytes(m.data), m.is_extended_id) for m in sent[:100]]
    assert json.loads(capsys.readouterr().out)["frames"] == 100


def test_bench_can_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "can", "--json", str(out), "--repeats", "1", "--full-load-s", "0.5", "--replay-s", "0.5"]) == 0
    r = json.loads(out.read_text())
    for key in ("decode_frames_per_s", "reference_frames_per_s", "replay_timing_error_ms", "frames_sent",
                "frames_decoded", "frames_lost", "cpu_share_at_full_load"):
        assert key in r
    assert set(r["replay_timing_error_ms"]) == {"p50", "p99"}
    assert r["frames_sent"] == 4350 and r["frames_lost"] == 0 and r["replay"]["frames_identical"]
    logs = {x["log"]: x for x in r["logs"]}
    assert set(logs) >= {"demo", "demo_all_signals"}
    for x in logs.values():  # both sides decode the same signals
        assert x["signals"]["ours"] == x["signals"]["peer"] > 0
    assert logs["demo"]["signals"]["decoded_set"] == "mapped"
    assert logs["demo"]["signals"]["ours"] < logs["demo"]["signals"]["in_dbc"]
    assert logs["demo_all_signals"]["signals"]["ours"] == logs["demo_all_signals"]["signals"]["in_dbc"]
    printed = capsys.readouterr().out
    assert "signals decoded: ours 43, peer 43, mapped of 59" in printed  # the demo DBC with its comfort frames


def test_bench_can_peer_decodes_what_ours_decodes(demo_log):
    """The set the peer is cut down to equals the DBC signals our decoder publishes with the demo mapping
    (plus the multiplexer it reads), and the cut-down cantools database decodes exactly those."""
    from edge_assistant.bench.can import _merged_database, _restricted_database, decoded_signals
    from edge_assistant.core.state import VehicleState
    from edge_assistant.vehicle import decoder_for
    from edge_assistant.vehicle.dbc import load_dbcs
    from edge_assistant.vehicle.vss import load_mapping

    full = _merged_database(load_dbcs([DEMO_DBC]))
    wanted = decoded_signals(full, load_mapping(DEMO_MAPPING))
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING, VehicleState())
    frames = list(read_log(demo_log))
    dec.feed_messages(frames)
    published = {r.source.split(" ", 1)[1] for r in dec.state.snapshot()}  # "can:0x123 Msg.Sig" -> "Msg.Sig"
    by_id = {(m.frame_id, m.is_extended_frame): m for m in full.messages}
    muxes = {f"{m.name}.{s.name}" for m in full.messages for s in m.signals if s.is_multiplexer}
    expected = {f"{by_id[k].name}.{n}" for k, names in wanted.items() for n in names}
    assert published == expected - muxes and expected & muxes  # the demo car's cell stats are multiplexed
    peer = _restricted_database(full, wanted)
    decoded = set()
    for m in frames:
        msg = peer.get_message_by_frame_id(m.arbitration_id)
        decoded |= {f"{msg.name}.{name}" for name in peer.decode_message(m.arbitration_id, m.data)}
    assert decoded == expected
    assert decoded_signals(full) == {k: tuple(s.name for s in m.signals) for k, m in by_id.items()}


def test_record_on_a_kernel_without_socketcan_fails_clearly(tmp_path, capsys):
    from .test_bus import _socketcan_skip_reason

    if _socketcan_skip_reason() is None or "errno 97" not in _socketcan_skip_reason():
        pytest.skip("this kernel has SocketCAN")
    assert main(["can", "record", "--interface", "socketcan", "--channel", "can0", "-o", str(tmp_path / "x.log")]) == 1
    err = capsys.readouterr().err
    assert "socketcan:can0" in err and "errno 97" in err
