"""NMEA 0183 codec: sentences written out by hand from the spec's field layout, bad input, epoch assembly."""

from __future__ import annotations

import functools
import operator
from datetime import date, time

import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.gnss.nmea import (
    GGA,
    GSA,
    GST,
    GSV,
    KNOT_MPS,
    RMC,
    VTG,
    FixAssembler,
    NmeaStream,
    checksum,
    parse_sentence,
)


def cs(body: str) -> str:
    """An independent checksum: XOR of the bytes between '$' and '*'."""
    return f"${body}*{functools.reduce(operator.xor, body.encode('ascii'), 0):02X}"


# The textbook GGA/RMC examples of the NMEA reference (checksums as published).
GGA_REF = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
RMC_REF = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"


def test_checksum_matches_published_examples() -> None:
    assert checksum(GGA_REF[1:-3]) == 0x47
    assert checksum(RMC_REF[1:-3]) == 0x6A
    assert cs(GGA_REF[1:-3]) == GGA_REF


def test_gga_fields() -> None:
    s = parse_sentence(GGA_REF)
    assert isinstance(s, GGA)
    assert s.talker == "GP" and s.time_utc == time(12, 35, 19)
    assert s.lat_deg == pytest.approx(48 + 7.038 / 60) and s.lon_deg == pytest.approx(11 + 31.0 / 60)
    assert (s.quality, s.satellites_used, s.hdop) == (1, 8, 0.9)
    assert s.altitude_msl_m == 545.4 and s.geoid_separation_m == 46.9
    assert s.dgps_age_s is None and s.dgps_station is None


def test_rmc_fields_and_west_variation() -> None:
    s = parse_sentence(RMC_REF)
    assert isinstance(s, RMC) and s.valid
    assert s.speed_mps == pytest.approx(22.4 * 1852 / 3600) and s.course_deg == 84.4
    assert s.date_utc == date(1994, 3, 23)
    assert s.magnetic_variation_deg == pytest.approx(-3.1)
    assert s.mode is None  # NMEA 2.0 form: 11 fields


def test_southern_western_hemispheres_and_fractional_time() -> None:
    s = parse_sentence(cs("GNGGA,235959.25,3351.5100,S,15112.4200,W,2,14,0.7,12.0,M,-20.5,M,1.2,0123"))
    assert s.lat_deg == pytest.approx(-(33 + 51.51 / 60)) and s.lon_deg == pytest.approx(-(151 + 12.42 / 60))
    assert s.time_utc == time(23, 59, 59, 250000)
    assert s.quality == 2 and s.geoid_separation_m == -20.5 and s.dgps_station == "0123"


def test_rmc_nmea41_mode_and_nav_status() -> None:
    s = parse_sentence(cs("GARMC,081836.00,A,3751.65000,S,14507.36000,E,0.004,,130998,,,D,V"))
    assert s.talker == "GA" and s.valid and s.mode == "D" and s.course_deg is None
    bad = parse_sentence(cs("GNRMC,081836.00,A,3751.65,S,14507.36,E,0.0,,130998,,,N,V"))
    assert not bad.valid  # mode N: not valid, whatever the status letter says


def test_rmc_void_has_no_position() -> None:
    s = parse_sentence(cs("GPRMC,000012.00,V,,,,,,,010126,,,N"))
    assert not s.valid and s.lat_deg is None and s.speed_mps is None and s.date_utc == date(2026, 1, 1)


def test_vtg_both_forms() -> None:
    new = parse_sentence(cs("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"))
    assert isinstance(new, VTG) and new.course_true_deg == 54.7 and new.course_magnetic_deg == 34.4
    assert new.speed_mps == pytest.approx(10.2 / 3.6) and new.mode == "A"
    old = parse_sentence(cs("GPVTG,054.7,034.4,005.5,010.2"))
    assert old.speed_mps == pytest.approx(10.2 / 3.6) and old.mode is None
    knots_only = parse_sentence(cs("GPVTG,054.7,T,,M,005.5,N,,K"))
    assert knots_only.speed_mps == pytest.approx(5.5 * KNOT_MPS)


def test_gsa_with_and_without_system_id() -> None:
    s = parse_sentence(cs("GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1,1"))
    assert isinstance(s, GSA) and s.fix_mode == 3 and s.prns == (4, 5, 9, 12, 24)
    assert (s.pdop, s.hdop, s.vdop, s.system_id) == (2.5, 1.3, 2.1, 1)
    old = parse_sentence(cs("GPGSA,M,2,01,02,03,,,,,,,,,,3.0,2.0,2.2"))
    assert old.selection == "M" and old.fix_mode == 2 and old.system_id is None


def test_gsv_parts_short_group_and_signal_id() -> None:
    s = parse_sentence(cs("GPGSV,3,3,11,22,42,067,42,24,14,311,43,27,05,244,"))
    assert isinstance(s, GSV) and (s.parts, s.part, s.in_view) == (3, 3, 11)
    assert [x.prn for x in s.satellites] == [22, 24, 27]
    assert s.satellites[2].snr_dbhz is None and s.satellites[0].azimuth_deg == 67
    sig = parse_sentence(cs("GLGSV,1,1,02,65,30,120,35,66,45,210,40,1"))
    assert sig.signal_id == "1" and len(sig.satellites) == 2
    empty = parse_sentence(cs("BDGSV,1,1,00"))
    assert empty.in_view == 0 and empty.satellites == ()


def test_gst() -> None:
    s = parse_sentence(cs("GNGST,172814.0,0.006,0.023,0.020,273.6,0.023,0.020,0.031"))
    assert isinstance(s, GST) and (s.lat_error_m, s.lon_error_m, s.alt_error_m) == (0.023, 0.020, 0.031)


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "BD", "GB", "GQ"])
def test_talkers(talker: str) -> None:
    s = parse_sentence(cs(f"{talker}GGA,000001,0000.000,N,00000.000,E,1,04,1.0,0.0,M,0.0,M,,"))
    assert s.talker == talker


def test_lower_case_checksum_and_crlf_accepted() -> None:
    line = GGA_REF[:-2] + GGA_REF[-2:].lower() + "\r\n"
    assert isinstance(parse_sentence(line.encode("ascii")), GGA)


def test_unsupported_and_proprietary_are_not_errors() -> None:
    assert parse_sentence(cs("GPZDA,201530.00,04,07,2002,00,00")) is None
    assert parse_sentence(cs("PUBX,00,081350.00,4717.113210,N")) is None
    assert parse_sentence(cs("GPTXT,01,01,02,ANTSTATUS=OK")) is None


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        (GGA_REF[:-2] + "48", "bad checksum: sentence says 48, content gives 47"),
        (GGA_REF[:40], "no '*hh' checksum"),
        ("GPGGA,123519,4807.038,N*00", "starting with '$'"),
        ("$GPGGA,1235$GPRMC,123519,A*11", "two sentences run together"),
        (cs("GPGGA,123519,4807.038,N,01131.000,E,1,08"), "expected 14 fields, got 7"),
        (cs("XXGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), "unknown talker 'XX'"),
        (cs("GPGGA,123519,4860.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), "latitude) out of range"),
        (cs("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), "must be N or S"),
        (cs("GPGGA,126519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), "UTC time) out of range"),
        (cs("GPGGA,123519,4807.038,N,01131.000,E,9,08,0.9,545.4,M,46.9,M,,"), "fix quality) must be 0-8"),
        (cs("GPGGA,123519,4807.038,N,01131.000,E,1,08,abc,545.4,M,46.9,M,,"), "(HDOP) is not a number"),
        (cs("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310294,003.1,W"), "not a calendar date"),
        (cs("GPGSA,A,4,,,,,,,,,,,,,1,1,1"), "fix mode) must be 1, 2 or 3"),
        (cs("GPGSV,2,3,08,01,40,083,46"), "expected 1 <= number <= total"),
        (cs("GPGSV,1,1,04,01,40,083"), "expected 3 + 4 per satellite"),
        ("$GP\xe9GA,1*00".encode("latin-1"), "non-ASCII byte 0xE9"),
        ("$" + "A" * 300, "at most 82"),
    ],
)
def test_bad_input_names_the_place_and_the_expectation(line, expect: str) -> None:
    with pytest.raises(DataFormatError) as exc:
        parse_sentence(line, where="drive.nmea:17")
    assert exc.value.where == "drive.nmea:17"
    assert expect in str(exc.value)


def test_stream_counts_bad_lines_names_them_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        GGA_REF,
        GGA_REF[:-2] + "00",  # bad checksum
        "$GPGGA,123520,4807.0",  # truncated (no checksum)
        "\x00\xff\x13garbage",  # line noise
        "",
        cs("GPZDA,201530.00,04,07,2002,00,00"),
        RMC_REF,
    ]
    stream = NmeaStream("drive.nmea")
    with caplog.at_level("WARNING"):
        fixes = list(stream.iter_fixes(lines))
    st = stream.stats
    assert (st.lines, st.sentences, st.ignored, st.errors) == (7, 2, 1, 3)
    assert (st.bad_checksum, st.truncated, st.garbage) == (1, 1, 1)
    assert "drive.nmea:2: bad checksum" in caplog.text and "drive.nmea:3:" in caplog.text
    assert "drive.nmea:4:" in caplog.text
    assert len(fixes) == 1 and fixes[0].valid and fixes[0].timestamp is not None
    assert fixes[0].timestamp.isoformat() == "1994-03-23T12:35:19+00:00"


def _epoch(hms: str, lat_min: str, valid: bool = True) -> list[str]:
    if not valid:
        return [cs(f"GNRMC,{hms},V,,,,,,,010126,,,N,V"), cs(f"GNGGA,{hms},,,,,0,00,99.99,,,,,,"),
                cs("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1"), cs("GPGSV,1,1,01,05,40,100,")]
    return [
        cs(f"GNRMC,{hms},A,48{lat_min},N,00910.00000,E,19.438,90.00,010126,,,A,V"),
        cs("GNVTG,90.00,T,,M,19.438,N,36.000,K,A"),
        cs(f"GNGGA,{hms},48{lat_min},N,00910.00000,E,1,09,0.90,250.0,M,48.0,M,,"),
        cs("GNGSA,A,3,01,02,03,04,05,06,,,,,,,1.60,0.90,1.30,1"),
        cs("GNGSA,A,3,65,66,67,,,,,,,,,,1.60,0.90,1.30,2"),
        cs("GPGSV,2,1,06,01,40,083,46,02,17,308,41,03,07,344,39,04,22,228,42"),
        cs("GPGSV,2,2,06,05,40,100,44,06,55,200,45"),
        cs("GLGSV,1,1,03,65,30,120,35,66,45,210,40,67,12,300,33"),
    ]


def test_epoch_assembly_merges_sentences_and_learns_the_cycle_end() -> None:
    asm = FixAssembler()
    e1, e2, e3 = _epoch("120000.00", "46.00000"), _epoch("120001.00", "46.01000"), _epoch("120002.00", "46.02000")
    out1 = [asm.feed(parse_sentence(s)) for s in e1]
    assert out1 == [None] * len(e1)  # cycle end not known yet
    out2 = [asm.feed(parse_sentence(s)) for s in e2]
    first = out2[0]
    assert first is not None and first.time_utc == time(12, 0, 0)  # closed by the next epoch's time
    assert out2[1:-1] == [None] * (len(e2) - 2)
    second = out2[-1]  # the cycle end (GLGSV, last part) is learned: emitted at once
    assert second is not None and second.time_utc == time(12, 0, 1)
    out3 = [asm.feed(parse_sentence(s)) for s in e3]
    assert out3[:-1] == [None] * (len(e3) - 1) and out3[-1].time_utc == time(12, 0, 2)
    assert asm.flush() is None
    f = second
    assert f.valid and f.fix_type == "THREE_D" and f.fix_mode == 3
    assert f.lat_deg == pytest.approx(48 + 46.01 / 60) and f.lon_deg == pytest.approx(9 + 10 / 60)
    assert f.speed_mps == pytest.approx(19.438 * KNOT_MPS) and f.course_deg == 90.0
    assert (f.satellites_used, f.satellites_in_view, f.hdop, f.pdop, f.vdop) == (9, 9, 0.9, 1.6, 1.3)
    assert f.altitude_m == 250.0 and f.altitude_ellipsoid_m == 298.0
    assert f.horizontal_accuracy_m(4.0) == pytest.approx(3.6)
    assert f.date_utc == date(2026, 1, 1) and f.talkers == ("GN", "GP", "GL")


def test_lost_fix_epoch_is_invalid() -> None:
    stream = NmeaStream("t")
    lines = _epoch("120000.00", "46.00000") + _epoch("120001.00", "", valid=False) + _epoch("120002.00", "46.02000")
    fixes = list(stream.iter_fixes(lines))
    assert [f.valid for f in fixes] == [True, False, True]
    assert fixes[1].lat_deg is None and fixes[1].fix_type == "NONE"
    # in view: this epoch's GPGSV (1) + the last GLGSV (3): receivers often send GSV less often than GGA
    assert fixes[1].satellites_in_view == 4
    assert fixes[1].timestamp is not None  # the date carries over from RMC


def test_receiver_without_time_still_splits_epochs() -> None:
    # a cold receiver sends empty time fields; the repeated GGA starts a new epoch
    lines = [cs("GPGGA,,,,,,0,00,99.99,,,,,,"), cs("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99")] * 3
    fixes = list(NmeaStream("cold").iter_fixes(lines))
    assert len(fixes) == 3 and not any(f.valid for f in fixes)


def test_gst_accuracy_wins_over_hdop() -> None:
    lines = _epoch("120000.00", "46.00000") + [cs("GNGST,120000.00,1.2,,,,0.6,0.8,1.1")]
    (fix,) = list(NmeaStream("t").iter_fixes(lines))
    assert fix.horizontal_accuracy_m(4.0) == pytest.approx(1.0)


def test_dgps_and_rtk_fix_types() -> None:
    def fix_for(quality: int) -> str:
        body = f"GNGGA,120000.00,4846.00000,N,00910.00000,E,{quality},09,0.90,250.0,M,48.0,M,,"
        (fix,) = list(NmeaStream("t").iter_fixes([cs(body), cs("GNGSA,A,3,01,02,03,04,,,,,,,,,1.6,0.9,1.3")]))
        return fix.fix_type

    assert fix_for(2) == "THREE_D_SATELLITE_BASED_AUGMENTATION"
    assert fix_for(4) == "THREE_D_GROUND_BASED_AUGMENTATION"
    assert fix_for(0) == "NONE"


def test_agrees_with_pynmea2_oracle() -> None:
    pynmea2 = pytest.importorskip("pynmea2", reason="pynmea2 (dev extra) is the oracle")
    samples = [GGA_REF, RMC_REF, cs("GNGGA,235959.25,3351.5100,S,15112.4200,W,2,14,0.7,12.0,M,-20.5,M,1.2,0123"),
               cs("GARMC,081836.00,A,3751.65000,S,14507.36000,E,0.004,,130998,,,D,V"),
               cs("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"), cs("GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1,1")]
    for line in samples:
        ours, ref = parse_sentence(line), pynmea2.parse(line, check=True)
        if isinstance(ours, (GGA, RMC)):
            assert ours.lat_deg == pytest.approx(ref.latitude, abs=1e-12)
            assert ours.lon_deg == pytest.approx(ref.longitude, abs=1e-12)
            assert ours.time_utc.replace(tzinfo=None) == ref.timestamp.replace(tzinfo=None)
        if isinstance(ours, GGA):
            assert ours.altitude_msl_m == ref.altitude and ours.satellites_used == int(ref.num_sats)
        if isinstance(ours, RMC):
            assert ours.date_utc == ref.datestamp
            assert ours.speed_mps == pytest.approx(float(ref.spd_over_grnd) * KNOT_MPS)
        if isinstance(ours, VTG):
            assert ours.speed_mps == pytest.approx(float(ref.spd_over_grnd_kmph) / 3.6)
        if isinstance(ours, GSA):
            assert ours.pdop == float(ref.pdop) and ours.fix_mode == int(ref.mode_fix_type)
