"""The real Kona EV diagnostic session (Car Scanner on an ELM327) replayed through the offline decoder,
checked against the scan tool's own DTC reports.

Ground truth and a caveat. ``obd-scan-1-before-clearing.txt`` is a Car Scanner report from 19/11/2023;
the CAN capture ``221210-1-...-elm327.csv`` is from 10/12/2022. They are different sessions: the capture
holds none of the report's codes except C1614(87) (the report's E-Shifter code, which the capture's
0x7D9 module holds too). So:

* the report checks the *codec*: every code's raw hex ([0xD12800] ...) must decode to the code the tool
  printed, and its status words must map onto ISO 14229 status bits the way the tool shows them;
* the capture checks the *session decoder*: the codes recovered from it must equal the ones the dataset's
  README lists for these modules in its DTC session notes (IGPM B1603(00), B2801(00), C167C(00),
  B2211(00), C1829(00); ABS C1638(08), C16B6(87), C1806(87), C1614(87), C1643(08); HVAC B1238(13);
  cluster B1001(52); head-up display B2801(00); C1812(87) ...), plus C1614(87) shared with the report.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_assistant.diagnostics import obd, uds
from edge_assistant.diagnostics.dtc import explain
from edge_assistant.diagnostics.scan_log import decode_log

pytestmark = pytest.mark.shared_data

SESSION = "kona_ev/221210-1-2021-dcan-car-scanner-elm327.csv"

# Car Scanner's words for the ISO 14229-1 status bits
TOOL_STATUS_WORDS = {
    "Test failed": "testFailed",
    "Test failed (current drive cycle)": "testFailedThisOperationCycle",
    "Pending": "pendingDTC",
    "Confirmed": "confirmedDTC",
    "Test failed since last DTC clear": "testFailedSinceLastClear",
    "Warning indicator requested": "warningIndicatorRequested",
}

_ENTRY = re.compile(r"^([PCBU][0-9A-F]{4})(?:\(([0-9A-F]{2})\))? \[0x([0-9A-F]+)\]")


def parse_car_scanner_report(path: Path) -> list[dict]:
    """Entries of a Car Scanner "DTC report": section, code, failure type, raw hex, status words."""
    out: list[dict] = []
    section = None
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("====") and i + 1 < len(lines):
            section = lines[i + 1].strip()
        m = _ENTRY.match(line.strip())
        if m:
            out.append({"section": section, "code": m.group(1), "failure": m.group(2), "hex": m.group(3),
                        "status": []})
        elif line.startswith("Status:") and out:
            out[-1]["status"] = [w.strip() for w in line[len("Status:"):].split(",")]
    return out


@pytest.fixture(scope="module")
def report_1(can_data: Path) -> list[dict]:
    return parse_car_scanner_report(can_data / "kona_ev" / "obd-scan-1-before-clearing.txt")


@pytest.fixture(scope="module")
def session(can_data: Path):
    return decode_log(can_data / SESSION)


def test_report_codes_decode_from_their_raw_bytes(report_1: list[dict]) -> None:
    assert len(report_1) == 16  # 7 + 4 + 2 + 2 + 1 entries in the five sections
    for e in report_1:
        raw = bytes.fromhex(e["hex"])
        assert obd.dtc_from_bytes(raw[0], raw[1]) == e["code"], e
        if len(raw) == 3:
            assert e["failure"] == f"{raw[2]:02X}", e


def test_report_status_words_are_iso14229_bits(report_1: list[dict], can_data: Path) -> None:
    three_byte = [e for e in report_1 if len(e["hex"]) == 6]
    assert three_byte
    for e in three_byte:
        st = uds.DtcStatus.from_names(TOOL_STATUS_WORDS[w] for w in e["status"])
        assert set(st.names) == {TOOL_STATUS_WORDS[w] for w in e["status"]}
    u1128 = next(e for e in three_byte if e["code"] == "U1128")
    st = uds.DtcStatus.from_names(TOOL_STATUS_WORDS[w] for w in u1128["status"])
    assert st.byte == 0xAF and st.warning_lamp and st.confirmed
    # after clearing, the same codes come back as failing but no longer confirmed nor lighting a lamp
    report_2 = parse_car_scanner_report(can_data / "kona_ev" / "obd-scan-2-after-clearing.txt")
    for e in (x for x in report_2 if len(x["hex"]) == 6):
        st2 = uds.DtcStatus.from_names(TOOL_STATUS_WORDS[w] for w in e["status"])
        assert st2.test_failed and not st2.confirmed and not st2.warning_lamp


def test_report_codes_get_explanations(report_1: list[dict]) -> None:
    for e in report_1:
        code = e["code"] + (f"-{e['failure']}" if e["failure"] else "")
        x = explain(code, vehicle="kona_ev")
        assert x.severity and x.action and x.base_code == e["code"]
    assert explain("U0146", vehicle="kona_ev").source == "generic table"
    assert explain("P1A78", vehicle="kona_ev").source == "vehicle:kona_ev"
    assert explain("B1603-00", vehicle="kona_ev").source == "code structure"


def test_session_recovers_the_dtcs(session, report_1: list[dict]) -> None:
    expected = {
        0x72D: {"B1603-00"},
        0x778: {"B1603-00", "B2801-00", "C167C-00", "B2211-00", "C1829-00"},
        0x77E: {"B2801-00"},
        0x7A8: {"B1603-00", "B1210-00", "B1211-00", "B1212-00", "B1213-00"},
        0x7AD: {"B1603-00"},
        0x7BB: {"B1238-13"},
        0x7BF: {"C1812-87"},
        0x7CE: {"B1001-52"},
        0x7D9: {"C16B6-87", "C1638-08", "C1806-87", "C1614-87", "C1643-08"},
        0x7DC: {"C1812-87"},
    }
    got = {rid: set(e.uds_dtcs) for rid, e in session.ecus.items() if e.uds_dtcs}
    assert got == expected
    # the one code the report and the capture share, with the same failure type
    assert "C1614-87" in session.dtc_codes()
    assert any(e["code"] == "C1614" and e["failure"] == "87" for e in report_1)
    # OBD-II modes 03/07/0A: every answering ECU said "no codes" (02 43 00 ...)
    for rid in (0x7EA, 0x7EB, 0x7ED):
        assert session.ecus[rid].obd_dtcs == {"stored": (), "pending": (), "permanent": ()}


def test_session_vin_names_pending_and_refusals(session) -> None:
    bms = session.ecus[0x7EC]
    assert bms.vin == "OSEV__ BMS" and not obd.vin_is_valid(bms.vin)  # what this car sends for 09 02
    assert bms.name == "BECM-B+EnergyCtrl"
    assert session.ecus[0x7ED].name == "BCCM-B+ChargerCtrl"
    assert bms.pids[0x40].value == {"supported": [0x5B]}
    # 0x7A8 asked for more time nine times, then answered 19 02 with a multi-frame list
    assert session.ecus[0x7A8].pending_answers == 9
    assert "B1213-00" in session.ecus[0x7A8].uds_dtcs
    refusals = {(n.service, n.code) for n in session.ecus[0x7EB].negative}
    assert (0x19, 0x11) in refusals  # UDS 19 not supported by the motor control unit
    assert all("matches no earlier request" not in e for e in session.errors)
    assert session.frames == 1845


def test_scan_log_cli_json(can_data: Path, tmp_path: Path) -> None:
    import json

    from edge_assistant.cli import main

    out = tmp_path / "scan.json"
    assert main(["diag", "scan-log", str(can_data / SESSION), "--vehicle", "kona_ev", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert "C1614-87" in data["dtcs"] and data["vin"] == "OSEV__ BMS"
    igpm = next(e for e in data["ecus"] if e["response_id"] == "0x778")
    assert igpm["name"].startswith("IGPM") and len(igpm["uds_dtcs"]) == 5
    assert igpm["uds_dtcs"][0]["explanation"]["source"] == "code structure"
