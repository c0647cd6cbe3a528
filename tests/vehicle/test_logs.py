"""Log readers (candump, SavvyCAN/GVRET CSV, everything python-can reads, MDF4) and the candump writer."""

from __future__ import annotations

import logging

import can
import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.vehicle.logs import LogStats, read_log, write_log


def test_tesla_candump(tesla):
    stats = LogStats()
    frames = list(read_log(tesla[0], stats))
    assert len(frames) == 12974 == stats.frames and stats.bad_lines == 0
    first = frames[0]
    assert (first.timestamp, first.channel, first.arbitration_id) == (166.0, "vcan0", 0x21A)
    assert bytes(first.data) == bytes.fromhex("FE3612FE690507AD") and not first.is_extended_id


def test_our_candump_reader_matches_python_can(tesla):
    ours = list(read_log(tesla[0]))
    theirs = list(can.CanutilsLogReader(str(tesla[0])))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.timestamp, a.arbitration_id, bytes(a.data), a.is_extended_id) == \
               (b.timestamp, b.arbitration_id, bytes(b.data), b.is_extended_id)


def test_kona_gvret_csv(kona):
    frames = list(read_log(kona["log"]))
    assert len(frames) == 39546
    assert frames[0].arbitration_id == 0x109 and bytes(frames[0].data) == bytes.fromhex("000100FFFFFF0F3D")
    # time stamps are microseconds: 0x594 is documented as 10 Hz
    t594 = [f.timestamp for f in frames if f.arbitration_id == 0x594]
    gaps = sorted(b - a for a, b in zip(t594, t594[1:], strict=False))
    assert gaps[len(gaps) // 2] == pytest.approx(0.1, abs=0.002)
    assert frames[-1].timestamp - frames[0].timestamp == pytest.approx(10.8404, abs=1e-3)
    lens = {f.arbitration_id: len(f.data) for f in frames}
    assert lens[0x490] == 7 and lens[0x2B0] == 5
    # two buses in one capture: P-CAN (0) and C-CAN (1)
    assert len(list(read_log(kona["log"], channel=0))) == 24263
    assert {str(f.channel) for f in read_log(kona["log"], channel="1")} == {"1"}


def test_mdf4_files_read_through_python_can(can_data):
    pytest.importorskip("asammdf", reason="MDF4 needs the optional asammdf (pip install 'edge-assistant[mdf]')")
    skoda = list(read_log(can_data / "skoda_obd2" / "00000001.MF4"))
    assert len(skoda) > 70_000
    assert {m.arbitration_id for m in skoda} >= {0x7E0, 0x7E8}
    assert bytes(skoda[0].data[:3]) == b"\x02\x01\x01"  # mode 01 PID 01 request
    uds = list(read_log(can_data / "kona_ev_uds" / "00000170.MF4"))
    assert len(uds) > 1000
    assert all(b.timestamp >= a.timestamp for a, b in zip(uds, uds[1:], strict=False))


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".trc", ".csv", ".log"])
def test_every_python_can_format_round_trips(tmp_path, suffix):
    frames = [can.Message(timestamp=1000.0 + i * 0.01, arbitration_id=0x100 + i, data=bytes([i, 2 * i, 3]),
                          is_extended_id=i % 3 == 0, channel=0) for i in range(20)]
    path = tmp_path / f"x{suffix}"
    with can.Logger(str(path)) as writer:
        for m in frames:
            writer.on_message_received(m)
    got = list(read_log(path))
    assert [(m.arbitration_id, bytes(m.data), m.is_extended_id) for m in got] == \
           [(m.arbitration_id, bytes(m.data), m.is_extended_id) for m in frames]
    assert got[-1].timestamp - got[0].timestamp == pytest.approx(0.19, abs=1e-3)


def test_candump_garbage_and_truncated_lines_are_skipped_and_named(tmp_path, caplog):
    path = tmp_path / "dirty.log"
    path.write_text(
        "(1.000000) can0 123#DEADBEEF\n"
        "(1.001000) can0 123#DEADBEE\n"          # truncated: odd number of digits
        "garbage line here\n"
        "(1.002000) can0 12345#00\n"             # 5-digit id
        "(1.003000) can0 1FFFFFFF#0102\n"        # extended
        "(1.004000) can0 7FF#R\n"                # remote
        "(1.005000) can0 800#00\n"               # 11-bit id out of range
        "(1.006000) can0 100#00112233445566778899\n"  # 10 bytes on classic CAN
        "(1.007000) can0 321##1AABBCCDDEEFF00112233\n"  # CAN FD with BRS
        "(1.008\n", encoding="ascii")
    stats = LogStats()
    with caplog.at_level(logging.WARNING):
        frames = list(read_log(path, stats))
    assert [m.arbitration_id for m in frames] == [0x123, 0x1FFFFFFF, 0x7FF, 0x321]
    assert frames[1].is_extended_id and frames[2].is_remote_frame and frames[3].is_fd and frames[3].bitrate_switch
    assert stats.bad_lines == 6
    for line in (2, 3, 4, 7, 8, 10):
        assert f"{path}:{line}:" in caplog.text


def test_gvret_bad_lines(tmp_path, caplog):
    path = tmp_path / "dirty.csv"
    path.write_text("Time Stamp,ID,Extended,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8\n"
                    "1000000,00000109,false,0,8,00,01,00,FF,FF,FF,0F,3D\n"
                    "1000100,00000200,false,0,8,00,80\n"
                    "nonsense\n"
                    "1000300,18DAF110,true,0,3,02,10,03\n", encoding="ascii")
    stats = LogStats()
    with caplog.at_level(logging.WARNING):
        frames = list(read_log(path, stats))
    assert [(m.arbitration_id, m.is_extended_id) for m in frames] == [(0x109, False), (0x18DAF110, True)]
    assert stats.bad_lines == 2 and f"{path}:3:" in caplog.text and f"{path}:4:" in caplog.text
    assert frames[1].timestamp == pytest.approx(1.0003)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataFormatError) as err:
        read_log(tmp_path / "none.log")
    assert "none.log" in str(err.value)
    bad = tmp_path / "bad.blf"
    bad.write_bytes(b"LOGG" + b"\x00" * 10)
    with pytest.raises(DataFormatError) as err:
        list(read_log(bad))
    assert "bad.blf" in str(err.value)


def test_write_log_round_trip(tmp_path, tesla):
    frames = list(read_log(tesla[0]))[:500]
    out = tmp_path / "out.log"
    assert write_log(out, frames, channel="can0") == 500
    back = list(read_log(out))
    assert [(m.timestamp, m.arbitration_id, bytes(m.data)) for m in back] == \
           [(m.timestamp, m.arbitration_id, bytes(m.data)) for m in frames]
    assert list(can.CanutilsLogReader(str(out)))[10].arbitration_id == frames[10].arbitration_id


def test_mdf4_without_asammdf_says_what_to_install(can_data, monkeypatch):
    import sys

    from edge_assistant.core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "asammdf", None)  # as on a machine without the [mdf] extra
    with pytest.raises(ConfigError) as err:
        list(read_log(can_data / "skoda_obd2" / "00000001.MF4"))
    assert "edge-assistant[mdf]" in str(err.value) and "00000001.MF4" in str(err.value)


def test_candump_error_frames_round_trip(tmp_path):
    path = tmp_path / "err.log"
    path.write_text("(1.000000) can0 123#01\n(1.001000) can0 20000040#0000000000000000\n"
                    "(1.002000) can0 20000004#0004000000000000\n", encoding="ascii")
    frames = list(read_log(path))
    assert [(m.is_error_frame, m.arbitration_id) for m in frames] == [(False, 0x123), (True, 0x040), (True, 0x004)]
    out = tmp_path / "out.log"
    write_log(out, frames)
    assert out.read_text() == path.read_text()


def test_candump_rejects_non_finite_times_signed_and_oversized_ids(tmp_path):
    path = tmp_path / "hostile.log"
    path.write_text("(inf) can0 123#00\n(nan) can0 123#00\n(-1.0) can0 123#00\n(1e3) can0 123#00\n"
                    "(1.0) can0 +12#00\n(1.0) can0 -12#00\n(1.0) can0 0x1#00\n"
                    "(1.0) can0 40000000#00\n(1.0) can0 FFFFFFFF#00\n(1.0) can0 FFF#00\n"
                    "(1.0) can0 321##+00\n"
                    "(2.5) can0 1FFFFFFF#01\n", encoding="ascii")
    stats = LogStats()
    frames = list(read_log(path, stats))
    assert [(m.timestamp, m.arbitration_id) for m in frames] == [(2.5, 0x1FFFFFFF)]
    assert stats.bad_lines == 11


def test_gvret_rejects_non_finite_times_signed_and_oversized_ids(tmp_path):
    path = tmp_path / "hostile.csv"
    row = ",false,0,2,01,02\n"
    path.write_text("Time Stamp,ID,Extended,Bus,LEN,D1,D2\n"
                    f"inf.,00000123{row}nan,00000123{row}{'9' * 400}.0,00000123{row}-5,00000123{row}"
                    f"1000,+12{row}1000,-12{row}1000,0x12{row}1000,00000800{row}"
                    "1000,20000000,true,0,2,01,02\n1000,00000123,false,0,2,+1,02\n1000,00000123,false,0,2,001,2\n"
                    "2000000,1FFFFFFF,true,0,2,01,02\n", encoding="ascii")
    stats = LogStats()
    frames = list(read_log(path, stats))
    assert [(m.timestamp, m.arbitration_id) for m in frames] == [(2.0, 0x1FFFFFFF)]
    assert stats.bad_lines == 11


def test_python_can_frames_with_impossible_values_are_skipped(tmp_path, caplog):
    path = tmp_path / "pc.csv"
    path.write_text("timestamp,arbitration_id,extended,remote,error,dlc,data\n"
                    "nan,0x123,0,0,0,2,AQI=\n1.0,0x800,0,0,0,2,AQI=\n1.5,0x40000000,1,0,0,2,AQI=\n"
                    "2.0,0x123,0,0,0,2,AQI=\n", encoding="ascii")
    stats = LogStats()
    with caplog.at_level(logging.WARNING):
        frames = list(read_log(path, stats))
    assert [(m.timestamp, m.arbitration_id) for m in frames] == [(2.0, 0x123)]
    assert stats.bad_lines == 3 and f"{path} (frame 1)" in caplog.text and "not finite" in caplog.text


@pytest.mark.parametrize("name", ["flat.log", "flat.csv", "flat.asc"])
def test_line_without_newlines_is_named_not_read_whole(tmp_path, name):
    path = tmp_path / name
    header = "Time Stamp,ID,Extended,Bus,LEN,D1\n" if name == "flat.csv" else ""
    path.write_text(header + "(1.0) can0 123#00 " * 100_000, encoding="ascii")  # 1.8 MB, no newline
    with pytest.raises(DataFormatError) as err:
        list(read_log(path))
    assert err.value.where == f"{path}:{2 if header else 1}" and "longer than" in err.value.reason
