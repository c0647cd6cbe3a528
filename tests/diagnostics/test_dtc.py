"""DTC explanations: vehicle table, then generic table, then code structure, then the honest fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics import dtc


def test_layers_in_order() -> None:
    v = dtc.explain("P0AA6", 0x8F, vehicle="demo_ev")
    assert v.source == "vehicle:demo_ev" and v.severity == "critical"
    g = dtc.explain("P0AA6", 0x8F)
    assert g.source == "generic table" and "isolation" in g.title.lower()
    s = dtc.explain("P0299")
    assert s.source == "code structure" and s.origin == "generic (SAE-defined)"
    assert "fuel and air metering" in s.title and "not in our table" in s.title
    m = dtc.explain("B1603-00", 0x08, vehicle="kona_ev", module="IGPM")
    assert m.source == "code structure" and m.origin == "manufacturer-specific"
    assert "manufacturer-specific body code (Hyundai)" in m.title
    assert m.status == "confirmed" and "Reported by the IGPM" in m.text


def test_every_explanation_has_severity_urgency_and_action() -> None:
    for code in [*dtc.generic_table(), "P1A78", "U1128-00", "C1614-87", "B2801-00", "U3FFF", "P3400"]:
        e = dtc.explain(code, vehicle="kona_ev")
        assert e.severity in dtc.SEVERITIES and e.urgency == dtc.URGENCY[e.severity] and e.action
        assert e.text.startswith(e.code)


def test_failure_type_and_status_words() -> None:
    e = dtc.explain("C1614(87)", 0x2F, vehicle="kona_ev")
    assert e.code == "C1614-87" and e.failure_type == "missing message"
    assert e.status == "active now, confirmed, pending"
    assert e.status_flags == ("testFailed", "testFailedThisOperationCycle", "pendingDTC", "confirmedDTC",
                              "testFailedSinceLastClear")
    assert dtc.explain("U1128-00").failure_type is None


def test_status_moves_severity() -> None:
    active_lamp = dtc.explain("U0164", 0x89)          # low in the table, but failing with the lamp on
    healed = dtc.explain("U0121", 0x08)               # high in the table, stored history only
    assert active_lamp.severity == "moderate" and healed.severity == "low"
    assert dtc.explain("P0AA6", 0x08).severity == "critical"  # a critical code is never played down


def test_code_structure() -> None:
    assert dtc.structure("P0D59").generic and dtc.structure("P0D59").group.startswith("hybrid/electric")
    assert not dtc.structure("P1A78").generic
    assert dtc.structure("P2263").generic and not dtc.structure("P3012").generic and dtc.structure("P3412").generic
    assert dtc.structure("U0146").group == "lost communication with a module"
    assert not dtc.structure("C1614").generic and not dtc.structure("B2801").generic
    assert dtc.parse_code("c161487") == ("C1614", 0x87)


@pytest.mark.parametrize("bad", ["Q1234", "P5123", "P12", "C1614-ZZ", "P0AA6-"])
def test_bad_codes_are_named(bad: str) -> None:
    with pytest.raises(DataFormatError, match="DTC"):
        dtc.explain(bad)


def test_user_vehicle_table_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "my_car.json"
    good.write_text(json.dumps({"manufacturer": "Acme", "modules": {"0x7E8": "engine ECU"},
                                "codes": {"P1234": {"title": "Acme widget fault", "severity": "low",
                                                    "action": "Replace the widget."}}}))
    e = dtc.explain("P1234", vehicle=str(good))
    assert e.title == "Acme widget fault" and e.source == "vehicle:my_car"
    assert dtc.module_name(str(good), 0x7E8) == "engine ECU"
    broken = tmp_path / "broken.json"
    broken.write_text('{"codes": {\n  "P1234": {"title": "x",}\n}}')
    with pytest.raises(DataFormatError, match=r"broken.json:2: vehicle DTC table is not valid JSON"):
        dtc.explain("P1234", vehicle=str(broken))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"codes": {"P1234": {"title": "x", "severity": "apocalyptic"}}}))
    with pytest.raises(DataFormatError, match=r"codes.P1234.severity"):
        dtc.explain("P1234", vehicle=str(wrong))
    with pytest.raises(DataFormatError, match="no DTC table; shipped: demo_ev, kona_ev"):
        dtc.explain("P1234", vehicle="no_such_car")


def test_non_utf8_vehicle_table_names_file_and_byte_offset(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"codes": {"P1234": {"title": "K\u00fchlmittel"}}}'.encode("latin-1"))  # u-umlaut: byte 0xFC at offset 32
    with pytest.raises(DataFormatError) as err:
        dtc.explain("P1234", vehicle=str(latin1))
    assert err.value.where == str(latin1) and "byte 0xFC at offset 32 is not UTF-8" in err.value.reason
    bad_modules = tmp_path / "modules.json"
    bad_modules.write_text(json.dumps({"modules": ["0x7E8"], "codes": {}}))
    with pytest.raises(DataFormatError, match="modules: must be an object"):
        dtc.module_name(str(bad_modules), 0x7E8)
