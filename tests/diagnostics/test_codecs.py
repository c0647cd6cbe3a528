"""Pure codecs: OBD-II PIDs/DTCs/VIN, UDS 0x19 and status bytes, ISO-TP reassembly; bad input named."""

from __future__ import annotations

import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics import obd, uds
from edge_assistant.diagnostics.isotp_log import IsoTpReassembler, reassemble, segment


# ------------------------------------------------------------------------------------------ OBD
@pytest.mark.parametrize(("raw", "code"), [
    (b"\x0d\x59", "P0D59"), (b"\x1a\x78", "P1A78"), (b"\xc1\x46", "U0146"), (b"\xd1\x28", "U1128"),
    (b"\x56\x14", "C1614"), (b"\x96\x03", "B1603"), (b"\x0a\xa6", "P0AA6"), (b"\xff\xff", "U3FFF"),
])
def test_dtc_bytes_both_ways(raw: bytes, code: str) -> None:
    assert obd.dtc_from_bytes(raw[0], raw[1]) == code
    assert obd.dtc_to_bytes(code) == raw


@pytest.mark.parametrize("bad", ["X0123", "P4123", "P01G3", "P012", ""])
def test_bad_dtc_text_is_named(bad: str) -> None:
    with pytest.raises(DataFormatError, match="DTC"):
        obd.dtc_to_bytes(bad)


def test_dtc_response_with_count_and_padding() -> None:
    rep = obd.decode_dtc_response(bytes.fromhex("4304 0aa6 c146 0000 0d59".replace(" ", "")))
    assert rep.kind == "stored" and rep.codes == ("P0AA6", "U0146", "P0D59")  # 0000 is padding
    assert obd.decode_dtc_response(bytes.fromhex("4700")).codes == ()          # real Kona answer "02 47 00"
    assert obd.encode_dtc_response(0x0A, ["P0AA6"]) == bytes.fromhex("4a010aa6")


def test_truncated_dtc_response_is_an_error() -> None:
    with pytest.raises(DataFormatError, match="says 2 DTCs"):
        obd.decode_dtc_response(bytes.fromhex("43020aa6"), "ECU 0x7E8")
    with pytest.raises(DataFormatError, match="not a 43/47/4A"):
        obd.decode_dtc_response(bytes.fromhex("4100"))


def test_supported_pid_bitmaps_from_the_kona() -> None:
    # 7EC answered 41 00 80 00 00 01, 41 20 80 01 80 01, 41 40 00 00 00 20 in the real session
    assert obd.decode_pid_response(bytes.fromhex("410080000001"))[0].value == {"supported": [0x01, 0x20]}
    assert obd.decode_pid_response(bytes.fromhex("412080018001"))[0].value == {"supported": [0x21, 0x30, 0x31, 0x40]}
    assert obd.decode_pid_response(bytes.fromhex("414000000020"))[0].value == {"supported": [0x5B]}
    assert obd.encode_supported(0x40, [0x5B]) == bytes.fromhex("00000020")


@pytest.mark.parametrize(("payload", "pid", "value", "unit"), [
    ("410d57", 0x0D, 87, "km/h"),
    ("410c1aa0", 0x0C, 1704.0, "rpm"),
    ("41057b", 0x05, 83, "degC"),
    ("414631", 0x46, 9, "degC"),
    ("41422f44", 0x42, 12.1, "V"),
    ("415bff", 0x5B, 100.0, "%"),
    ("41a60001e240", 0xA6, 12345.6, "km"),
    ("412f80", 0x2F, 50.196078, "%"),
])
def test_pid_formulas(payload: str, pid: int, value: float, unit: str) -> None:
    (v,) = obd.decode_pid_response(bytes.fromhex(payload))
    assert v.pid == pid and v.unit == unit
    assert v.value == pytest.approx(value, abs=1e-3)


def test_linear_pids_round_trip_within_one_step() -> None:
    for spec in obd.PIDS.values():
        if spec.encode is None or spec.pid in obd.SUPPORT_PIDS:
            continue
        lo = spec.decode(b"\x00" * spec.length_bytes)
        hi = spec.decode(b"\xff" * spec.length_bytes)
        for frac in (0.0, 0.37, 1.0):
            x = lo + (hi - lo) * frac
            step = (hi - lo) / ((1 << (8 * spec.length_bytes)) - 1)
            assert spec.decode(spec.encode(x)) == pytest.approx(x, abs=step), spec.name


def test_multi_pid_request_and_answer() -> None:
    values = obd.decode_pid_response(bytes.fromhex("410d32 5bcc 0c0fa0".replace(" ", "")))
    assert [v.pid for v in values] == [0x0D, 0x5B, 0x0C]
    assert obd.pid_request(0x0D, 0x5B) == b"\x01\x0d\x5b"
    with pytest.raises(DataFormatError, match="1 to 6 PIDs"):
        obd.pid_request(*range(7))


def test_unknown_and_truncated_pids_are_named() -> None:
    with pytest.raises(DataFormatError, match="unknown PID 0xFE"):
        obd.decode_pid_response(bytes.fromhex("41fe0102"), "ECU 0x7E8")
    with pytest.raises(DataFormatError, match=r"PID 0x0C \(engine speed\) needs 2 data bytes, got 1"):
        obd.decode_pid_response(bytes.fromhex("410c1a"))


def test_vin_and_ecu_name() -> None:
    vin = "KMHK381GFMU000001"
    payload = obd.encode_vehicle_info(obd.INFO_VIN, [vin])
    assert len(payload) == 20
    info = obd.decode_vehicle_info(payload)
    assert info.items == (vin,) and obd.vin_is_valid(vin)
    # the real Kona BMS answer (reassembled below from its three frames)
    kona = bytes.fromhex("4902014f5345565f5f20424d5320000000000000")
    assert obd.decode_vehicle_info(kona).items == ("OSEV__ BMS",)
    assert not obd.vin_is_valid("OSEV__ BMS")
    name = bytes.fromhex("490a014245434d2d422b456e65726779437472") + b"\x6c\x00"
    assert obd.decode_vehicle_info(name).items == ("BECM-B+EnergyCtrl",)
    with pytest.raises(DataFormatError, match="2 items of 17 bytes"):
        obd.decode_vehicle_info(bytes.fromhex("490202") + b"A" * 20)


# ------------------------------------------------------------------------------------------ UDS
def test_uds_dtc_list_from_the_kona_gateway() -> None:
    # IGPM 0x778 answer to 19 02 08, reassembled from 4 frames of the real session
    payload = bytes.fromhex("590209960300" "08a8010008567c0008a21100085829" "0008")
    res = uds.decode_read_dtc_response(payload)
    assert isinstance(res, uds.DtcList) and res.availability_mask == 0x09
    assert [d.full_code for d in res.dtcs] == ["B1603-00", "B2801-00", "C167C-00", "B2211-00", "C1829-00"]
    assert all(d.status.confirmed and not d.status.test_failed for d in res.dtcs)


def test_uds_count_and_encoders_filter_by_mask() -> None:
    dtcs = [uds.UdsDtc("P0AA6", 0, uds.DtcStatus(0x2F)), uds.UdsDtc("U0146", 0, uds.DtcStatus(0x04)),
            uds.UdsDtc("C1614", 0x87, uds.DtcStatus(0x28))]
    assert uds.decode_read_dtc_response(uds.encode_dtc_count(0xFF, dtcs, 0x08)) == uds.DtcCount(0xFF, 1, 2)
    res = uds.decode_read_dtc_response(uds.encode_dtc_list(0xFF, dtcs, 0x04))
    assert [d.full_code for d in res.dtcs] == ["P0AA6-00", "U0146-00"]


def test_status_byte_names_match_the_scan_tool_vocabulary() -> None:
    st = uds.DtcStatus.from_names(["testFailed", "testFailedThisOperationCycle", "pendingDTC", "confirmedDTC",
                                   "testFailedSinceLastClear", "warningIndicatorRequested"])
    assert st.byte == 0xAF
    assert st.summary == "active now, confirmed, pending, warning lamp requested"
    assert uds.DtcStatus(0x08).summary == "confirmed"
    with pytest.raises(DataFormatError, match="unknown status flag"):
        uds.DtcStatus.from_names(["isBroken"])


@pytest.mark.parametrize(("payload", "reason"), [
    ("5902ff0aa600", "not a multiple of 4"),
    ("5901080100", "59 01 needs 6 bytes"),
    ("5904ff", "sub-function 0x04 is not decoded"),
    ("6202", "not a 0x59"),
])
def test_bad_uds_answers(payload: str, reason: str) -> None:
    with pytest.raises(DataFormatError, match=reason):
        uds.decode_read_dtc_response(bytes.fromhex(payload), "ECU 0x7EC")


def test_negative_responses() -> None:
    n = uds.decode_negative(bytes.fromhex("7f1978"))
    assert n.pending and "response pending" in str(n)
    assert uds.decode_negative(bytes.fromhex("7f1931")).name == "request out of range"
    assert "manufacturer" in uds.decode_negative(bytes.fromhex("7f2000")).name
    with pytest.raises(DataFormatError):
        uds.decode_negative(bytes.fromhex("7f19"))


# ------------------------------------------------------------------------------------------ ISO-TP
KONA_VIN_FRAMES = [  # 0x7EC answer to 09 02, with the tester's flow control on 0x7E4 in between
    (0x7EC, "1014490201 4f5345".replace(" ", ""), 0.0), (0x7E4, "3000000000000000", 0.0003),
    (0x7EC, "21565f5f20424d53", 0.010), (0x7EC, "2220000000000000", 0.022),
]


def test_reassembles_the_kona_vin() -> None:
    frames = [(i, bytes.fromhex(d), t) for i, d, t in KONA_VIN_FRAMES]
    r = IsoTpReassembler()
    (pdu,) = list(reassemble(frames, r))
    assert pdu.arbitration_id == 0x7EC and pdu.frames == 3 and len(pdu.data) == 0x14
    assert obd.decode_vehicle_info(pdu.data).items == ("OSEV__ BMS",)
    assert r.flow_control_frames == 1


@pytest.mark.parametrize("payload_len", [1, 7, 8, 20, 62, 300, 4095])
def test_segment_then_reassemble_any_length(payload_len: int) -> None:
    payload = bytes((i * 7 + 3) & 0xFF for i in range(payload_len))
    frames = segment(payload, padding=0xAA)
    assert all(len(f) == 8 for f in frames)
    out = list(reassemble((0x7E8, f, k * 0.001) for k, f in enumerate(frames)))
    assert [p.data for p in out] == [payload]


@pytest.mark.parametrize(("frames", "reason"), [
    ([("2101020304050607", 0.0)], "consecutive frame without a first frame"),
    ([("100a010203040506", 0.0), ("2207080900000000", 0.01)], "sequence number 2, expected 1"),
    ([("100a010203040506", 0.0), ("2107080900000000", 5.0)], "N_Cr"),
    ([("0901020304050607", 0.0)], "single frame length 9"),
    ([("5001020304050607", 0.0)], "PCI type 5"),
    ([("1005010203040506", 0.0)], "fits a single frame"),
    ([("34000000", 0.0)], "flow status 4"),
    ([("", 0.0)], "empty frame"),
])
def test_garbage_isotp_is_named(frames: list[tuple[str, float]], reason: str) -> None:
    r = IsoTpReassembler(consecutive_timeout_s=1.0)
    with pytest.raises(DataFormatError, match=reason) as exc:
        for data, t in frames:
            r.feed(0x7E8, bytes.fromhex(data), t)
    assert "frame 0x7E8" in str(exc.value)


def test_reassembly_goes_on_after_garbage() -> None:
    frames = [(0x7E8, bytes.fromhex(d), t) for d, t in [
        ("2101020304050607", 0.0), ("03410d57aaaaaaaa", 0.1), ("7777777777777777", 0.2), ("02410daaaaaaaaaa", 0.3)]]
    errors: list[DataFormatError] = []
    out = list(reassemble(frames, errors=errors))
    assert [p.data for p in out] == [bytes.fromhex("410d57"), bytes.fromhex("410d")]
    assert len(errors) == 2


# ------------------------------------------------------------------------------------------ session decoder
def _gvret(rows: list[tuple[float, int, str]]) -> str:
    lines = ["Time Stamp,ID,Extended,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8"]
    for t, arb, data in rows:
        b = bytes.fromhex(data)
        lines.append(f"{int(t * 1e6)},{arb:08X},false,1,{len(b)}," + ",".join(f"{x:02X}" for x in b))
    return "\n".join(lines) + "\n"


def test_scan_log_goes_on_after_bad_frames_and_lines(tmp_path, caplog) -> None:
    from edge_assistant.diagnostics.scan_log import decode_log

    rows = [
        (1.000, 0x7DF, "0209020000000000"),          # VIN request
        (1.010, 0x7E8, "1014490201574541"),          # first frame ...
        (1.012, 0x7E0, "3000000000000000"),
        (1.020, 0x7E8, "2330414243444546"),          # ... wrong sequence number: message dropped
        (2.000, 0x7DF, "02010d0000000000"),
        (2.005, 0x7E8, "03410d57aaaaaaaa"),          # a good answer after the bad one
        (3.000, 0x7DF, "0103000000000000"),
        (3.004, 0x7E8, "024301aaaaaaaaaa"),          # says 1 DTC, carries none
        (4.000, 0x7E8, "037f1912aaaaaaaa"),          # a refusal nobody asked for
    ]
    text = _gvret(rows) + "5000000,000007E8,false,1,8,03,41\n" + "garbage line\n"
    path = tmp_path / "session.csv"
    path.write_text(text)
    rep = decode_log(path)
    assert rep.ecus[0x7E8].pids[0x0D].value == 87                       # decoding went on
    assert rep.vin is None
    assert any("sequence number 3, expected 1" in e and "frame 0x7E8" in e for e in rep.errors)
    assert any("says 1 DTCs but carries 0 bytes" in e for e in rep.errors)
    assert any("matches no earlier request for service 0x19" in e for e in rep.errors)
    assert "session.csv:11" in caplog.text and "session.csv:12" in caplog.text  # the reader named the lines


def test_first_frame_longer_than_the_cap_is_rejected() -> None:
    r = IsoTpReassembler()
    with pytest.raises(DataFormatError, match="announces 4294967295 bytes; at most 4095") as exc:
        r.feed(0x7E8, bytes.fromhex("1000ffffffff0102"), 0.0)  # 32-bit escape: 4 GB
    assert "frame 0x7E8" in str(exc.value) and r.open_messages == {}
    r.feed(0x7E8, bytes.fromhex("1fff010203040506"), 0.1)  # 4095 bytes, the classic-CAN maximum
    assert r.open_messages == {0x7E8: 6}
    big = IsoTpReassembler(max_message_bytes=8192)
    assert big.feed(0x7E8, bytes.fromhex("1000000020000102"), 0.0) is None and big.open_messages == {0x7E8: 2}


def test_partial_messages_expire_after_n_cr_in_log_time(caplog) -> None:
    r = IsoTpReassembler()  # N_Cr 1 s
    r.feed(0x7E8, bytes.fromhex("100a010203040506"), 0.0)
    r.feed(0x7E9, bytes.fromhex("100a010203040506"), 0.5)
    r.feed(0x7DF, bytes.fromhex("0201000000000000"), 1.2)  # another id's traffic moves log time on
    assert r.open_messages == {0x7E9: 6} and r.expired_messages == 1
    assert "id 0x7E8: multi-frame message expired" in caplog.text
    r.feed(0x7DF, bytes.fromhex("0201000000000000"), 100.0)
    assert r.open_messages == {} and r.expired_messages == 2
    with pytest.raises(DataFormatError, match="time stamp is not a finite number"):
        r.feed(0x7E8, bytes.fromhex("0201000000000000"), float("nan"))
