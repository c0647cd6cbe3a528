"""Serial source against a real pseudo-terminal peer; file source; VSS writes."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path

import pytest
from conftest import within

from edge_assistant.core.errors import ConfigError, DataFormatError, EdgeAssistantError
from edge_assistant.core.state import VehicleState
from edge_assistant.gnss.nmea import Fix, NmeaStream, with_checksum
from edge_assistant.gnss.simulate import RouteScenario, write_nmea
from edge_assistant.gnss.source import (
    VSS_ALTITUDE,
    VSS_FIX_TYPE,
    VSS_HEADING,
    VSS_HORIZONTAL_ACCURACY,
    VSS_LATITUDE,
    VSS_LONGITUDE,
    VSS_TIMESTAMP,
    GnssConfig,
    NmeaFileSource,
    SerialGnssSource,
    vss_rows,
)

FAST = {"reconnect_initial_s": 0.02, "reconnect_max_s": 0.2, "read_timeout_s": 0.05}


@pytest.fixture(scope="module")
def nmea_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gnss") / "drive.nmea"
    write_nmea(path, RouteScenario(duration_s=120.0, seed=3, tunnel_start_s=60.0, tunnel_duration_s=10.0))
    return path


class PtyPeer:
    """A receiver on the master side of a pty; ``link`` is a stable path (like /dev/serial/by-id/...)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        if self.link.is_symlink():
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)

    def send(self, data: bytes, chunks: random.Random | None = None) -> None:
        if chunks is None:
            os.write(self.master, data)
            return
        i = 0
        while i < len(data):  # ragged writes: a USB receiver does not respect line boundaries
            n = chunks.randint(1, 97)
            os.write(self.master, data[i : i + n])
            i += n


def test_pty_peer_fixes_match_the_file_reader_at_any_chunking(nmea_log: Path, tmp_path: Path) -> None:
    data = nmea_log.read_bytes()
    expected = [f for f, _ in NmeaFileSource(nmea_log).fixes()]
    peer = PtyPeer(tmp_path / "gnss0")
    got: list[Fix] = []
    state = VehicleState()
    src = SerialGnssSource(GnssConfig(str(peer.link), **FAST), state, on_fix=lambda f, ts: got.append(f))
    with src:
        assert within(lambda: src.stats.connected)
        peer.send(data, random.Random(5))
        assert within(lambda: len(got) >= len(expected) - 1)
        # stop only once every byte is in, or the last epoch is flushed half-read
        assert within(lambda: src.stats.bytes_read >= len(data))
    peer.unplug()
    # the last epoch is flushed on stop; every fix equals the file reader's
    assert got == expected[: len(got)] and len(got) >= len(expected) - 1
    assert src.stats.nmea.errors == 0
    snap = state.snapshot()
    last = got[-1]
    assert snap.value(VSS_LATITUDE) == last.lat_deg and snap.value(VSS_LONGITUDE) == last.lon_deg
    assert snap.get(VSS_LATITUDE).unit == "degrees" and snap.get(VSS_LATITUDE).source == f"gnss:{peer.link}"


def test_reconnects_when_the_receiver_disappears(nmea_log: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    lines = nmea_log.read_bytes().splitlines(keepends=True)
    peer = PtyPeer(tmp_path / "gnss0")
    src = SerialGnssSource(GnssConfig(str(peer.link), **FAST))
    with caplog.at_level("WARNING"), src:
        assert within(lambda: src.stats.connected)
        peer.send(b"".join(lines[:120]))
        assert within(lambda: src.fix_count >= 9)
        peer.unplug()  # USB pulled: the reader sees EIO/EOF, then the path is gone
        assert within(lambda: src.stats.disconnects == 1 and src.stats.open_failures >= 1)
        before = src.fix_count
        peer.plug()
        assert within(lambda: src.stats.connects == 2 and src.stats.connected)
        peer.send(b"".join(lines[120:400]))
        assert within(lambda: src.fix_count >= before + 20)
    peer.unplug()
    assert "disappeared" in caplog.text and "cannot be opened" in caplog.text
    assert src.stats.last_error is not None


def test_port_absent_at_start_then_appears(tmp_path: Path, nmea_log: Path) -> None:
    link = tmp_path / "late0"
    src = SerialGnssSource(GnssConfig(str(link), **FAST)).start()
    try:
        assert within(lambda: src.stats.open_failures >= 2)
        assert src.stats.connects == 0 and src.latest is None
        peer = PtyPeer(link)
        assert within(lambda: src.stats.connected)
        peer.send(nmea_log.read_bytes()[:4000])
        assert src.wait_for_fix(5.0) is not None
    finally:
        src.stop()
    peer.unplug()


def test_garbage_on_the_line_is_counted_and_parsing_goes_on(tmp_path: Path, nmea_log: Path) -> None:
    peer = PtyPeer(tmp_path / "gnss0")
    src = SerialGnssSource(GnssConfig(str(peer.link), max_line_bytes=256, **FAST))
    lines = nmea_log.read_bytes().splitlines(keepends=True)
    with src:
        assert within(lambda: src.stats.connected)
        rng = random.Random(1)
        noise = bytes(rng.randrange(1, 256) for _ in range(2000)).replace(b"\n", b"")
        peer.send(noise)  # e.g. a wrong baud rate: no line end for far longer than a sentence
        assert within(lambda: src.stats.bytes_read >= len(noise))
        peer.send(b"\r\n" + lines[3][:-9] + b"*00\r\n")  # bad checksum
        peer.send(b"\x01\x02 line noise\r\n")
        peer.send(b"".join(lines[:60]))
        assert within(lambda: src.fix_count >= 4)
    peer.unplug()
    st = src.stats
    assert st.overlong_lines >= 1 and st.nmea.bad_checksum == 1
    assert st.nmea.garbage >= 2 and st.nmea.errors == st.nmea.garbage + 1


def test_loop_url_and_stop_is_prompt() -> None:
    src = SerialGnssSource(GnssConfig("loop://", read_timeout_s=0.5)).start()
    assert within(lambda: src.stats.connected)
    t0 = time.monotonic()
    src.stop()
    assert time.monotonic() - t0 < 1.5
    assert not any(t.name.startswith("gnss-loop") for t in threading.enumerate())


def _readers(port: object) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"gnss-{port}"]


def test_stop_that_times_out_never_lets_start_run_a_second_reader(tmp_path: Path, nmea_log: Path) -> None:
    peer = PtyPeer(tmp_path / "gnss0")
    entered, release = threading.Event(), threading.Event()

    def stuck_consumer(fix: Fix, ts: float) -> None:
        entered.set()
        release.wait(10.0)  # a consumer that blocks the reader thread

    src = SerialGnssSource(GnssConfig(str(peer.link), **FAST), on_fix=stuck_consumer).start()
    try:
        assert within(lambda: src.stats.connected)
        peer.send(nmea_log.read_bytes()[:4000])
        assert entered.wait(5.0)
        assert src.stop(timeout_s=0.01) is False  # the reader is still inside on_fix
        with pytest.raises(EdgeAssistantError, match="still stopping"):
            src.start()
        assert len(_readers(peer.link)) == 1
    finally:
        release.set()
    assert src.stop(timeout_s=5.0) and not _readers(peer.link)
    src.start()  # once the old reader has ended, a restart works
    assert within(lambda: src.stats.connects == 2 and src.stats.connected)
    assert len(_readers(peer.link)) == 1
    assert src.stop(timeout_s=5.0)
    peer.unplug()


def test_unexpected_errors_are_counted_and_the_reader_goes_on(tmp_path: Path, nmea_log: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    lines = nmea_log.read_bytes().splitlines(keepends=True)
    peer = PtyPeer(tmp_path / "gnss0")
    calls = itertools.count()

    def clock() -> float:  # fails once, as a bug in a consumer-supplied clock would
        if next(calls) == 0:
            raise RuntimeError("clock source failed")
        return time.time()

    src = SerialGnssSource(GnssConfig(str(peer.link), **FAST), clock=clock)
    with caplog.at_level("ERROR"), src:
        assert within(lambda: src.stats.connected)
        peer.send(b"".join(lines[:60]))
        assert within(lambda: src.stats.unexpected_errors == 1)
        assert within(lambda: src.stats.connects == 2 and src.stats.connected)  # reopened after back-off
        before = src.fix_count
        peer.send(b"".join(lines[60:120]))
        assert within(lambda: src.fix_count >= before + 4)
        assert len(_readers(peer.link)) == 1
    peer.unplug()
    assert not _readers(peer.link)  # the stop flag still ends it
    assert "failed unexpectedly" in caplog.text and "clock source failed" in caplog.text
    assert "RuntimeError" in (src.stats.last_error or "")


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="gnss.port 'nosuch://x'"):
        SerialGnssSource(GnssConfig("nosuch://x")).start()
    with pytest.raises(ConfigError, match="gnss.baudrate_bps"):
        GnssConfig("/dev/ttyACM0", baudrate_bps=0)
    with pytest.raises(ConfigError, match="gnss.port"):
        GnssConfig("")
    with pytest.raises(ConfigError, match="reconnect"):
        GnssConfig("loop://", reconnect_initial_s=5.0, reconnect_max_s=1.0)


def _fix(lines: list[str]) -> Fix:
    (fix,) = list(NmeaStream("t").iter_fixes([with_checksum(b) for b in lines]))
    return fix


def test_vss_rows_paths_units_and_values() -> None:
    fix = _fix(["GNRMC,101500.50,A,4846.00000,N,00910.00000,E,10.000,271.50,020326,,,A,V",
                "GNGGA,101500.50,4846.00000,N,00910.00000,E,1,10,0.80,300.0,M,47.5,M,,",
                "GNGSA,A,3,01,02,03,04,05,06,07,08,09,10,,,1.4,0.8,1.2,1"])
    rows = {r[0]: r for r in vss_rows(fix, 123.0, "gnss:test", uere_m=5.0)}
    assert rows[VSS_LATITUDE][1:4] == (pytest.approx(48 + 46 / 60), "degrees", 123.0)
    assert rows[VSS_ALTITUDE][1:3] == (347.5, "m")  # above the WGS 84 ellipsoid, as VSS defines it
    assert rows[VSS_HEADING][1:3] == (271.5, "degrees")
    assert rows[VSS_HORIZONTAL_ACCURACY][1:3] == (4.0, "m")
    assert rows[VSS_TIMESTAMP][1] == "2026-03-02T10:15:00.500Z"
    assert rows[VSS_FIX_TYPE][1] == "THREE_D"
    assert all(r[4] == "gnss:test" for r in rows.values())


def test_vss_rows_without_fix_only_say_none_and_standstill_has_no_heading() -> None:
    lost = _fix(["GNRMC,101500.00,V,,,,,,,020326,,,N,V", "GNGGA,101500.00,,,,,0,00,99.99,,,,,,"])
    assert [r[:2] for r in vss_rows(lost, 1.0, "x")] == [(VSS_FIX_TYPE, "NONE")]
    parked = _fix(["GNRMC,101500.00,A,4846.00000,N,00910.00000,E,0.100,123.00,020326,,,A,V"])
    paths = {r[0] for r in vss_rows(parked, 1.0, "x")}
    assert VSS_LATITUDE in paths and VSS_HEADING not in paths


def test_state_keeps_last_position_aging_through_an_outage(nmea_log: Path) -> None:
    state = VehicleState()
    NmeaFileSource(nmea_log).replay(state, until_s=65.0)  # the tunnel starts at 60 s
    snap = state.snapshot()
    assert snap.value(VSS_FIX_TYPE) == "NONE"
    assert snap.age_s(VSS_LATITUDE) == pytest.approx(6.0, abs=1.01)
    assert snap.is_stale(VSS_LATITUDE, 5.0)


def test_file_source_times_from_utc_and_bad_lines(tmp_path: Path, nmea_log: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    lines = nmea_log.read_text(encoding="ascii").splitlines()
    lines[5] = lines[5][:-2] + ("00" if lines[5][-2:] != "00" else "11")
    lines[9] = lines[9][: len(lines[9]) // 2]
    bad = tmp_path / "bad.nmea"
    bad.write_text("\n".join(lines) + "\n", encoding="ascii")
    src = NmeaFileSource(bad)
    with caplog.at_level("WARNING"):
        fixes = list(src.fixes())
    assert src.stats.errors == 2 and src.stats.bad_checksum == 1 and src.stats.truncated == 1
    assert "bad.nmea:6: bad checksum" in caplog.text and "bad.nmea:10:" in caplog.text
    sc = RouteScenario()
    assert fixes[0][1] == pytest.approx(sc.start_epoch_s)
    assert [round(ts - fixes[0][1]) for _, ts in fixes[:5]] == [0, 1, 2, 3, 4]
    assert len(fixes) == 121


def test_missing_file_is_a_data_format_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="nope.nmea: cannot read NMEA log"):
        list(NmeaFileSource(tmp_path / "nope.nmea").fixes())


def test_unplug_after_data_reconnects_from_the_initial_back_off(tmp_path: Path, nmea_log: Path) -> None:
    """A receiver that sent NMEA and is then pulled is retried at once, not at the back-off of an earlier
    outage (the session ends in an exception, which must not hide that lines arrived)."""
    link = tmp_path / "gnss0"
    cfg = GnssConfig(str(link), reconnect_initial_s=0.02, reconnect_max_s=5.0, read_timeout_s=0.05)
    src = SerialGnssSource(cfg).start()
    peer = None
    try:
        assert within(lambda: src.stats.open_failures >= 7, 10.0)  # absent at start: back-off now >= 1.28 s
        peer = PtyPeer(link)
        assert within(lambda: src.stats.connected, 10.0)
        peer.send(nmea_log.read_bytes()[:4000])
        assert src.wait_for_fix(5.0) is not None
        peer.unplug()
        peer = None
        link.unlink()
        assert within(lambda: src.stats.disconnects == 1)
        failures = src.stats.open_failures
        time.sleep(1.0)  # from 0.02 s doubling: 5 attempts and more; from the old back-off: at most one
        assert src.stats.open_failures - failures >= 3
    finally:
        src.stop()
        if peer is not None:
            peer.unplug()
