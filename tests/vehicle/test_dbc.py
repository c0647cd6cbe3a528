"""DBC loading: upstream defects repaired in memory with a warning; broken DBCs name file and line."""

from __future__ import annotations

import logging

import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.vehicle import DEMO_DBC
from edge_assistant.vehicle.dbc import load_dbc, load_dbc_text


def test_tesla_dbc_loads_without_repairs(tesla):
    d = load_dbc(tesla[1])
    assert d.repairs == () and d.strict
    assert {m.name for m in d.database.messages} >= {"DI_torque1", "DI_torque2", "DI_state"}


def test_pcan_dbc_missing_bs_and_bu_is_repaired_with_a_warning(kona, caplog):
    raw = kona["pcan"].read_text(encoding="utf-8", errors="replace")
    assert "BS_:" not in raw and "BU_:" not in raw  # the upstream defect is still there on disk
    with caplog.at_level(logging.WARNING):
        d = load_dbc(kona["pcan"])
    assert any("BS_:" in r for r in d.repairs) and any("BU_:" in r for r in d.repairs)
    assert str(kona["pcan"]) in caplog.text and "repaired in memory" in caplog.text
    ids = {m.frame_id for m in d.database.messages}
    assert {0x595, 0x594, 0x490, 0x5F5} <= ids
    assert d.database.get_message_by_frame_id(0x5F5).length == 64  # longer than the recorded frames


def test_hyundai_dbc_bare_comment_is_repaired(kona, caplog):
    with caplog.at_level(logging.WARNING):
        d = load_dbc(kona["hyundai"])
    assert any("CM_ BO_" in r for r in d.repairs)
    assert "FCEV" in (d.database.get_message_by_frame_id(145).comment or "")
    assert d.database.get_message_by_name("CGW1").get_signal_by_name("CF_Gway_IGNSw") is not None


def test_bmw_dbc_loads(can_data):
    d = load_dbc(can_data / "dbc_opendbc" / "bmw_e9x_e8x.dbc")
    assert len(d.database.messages) > 300


def test_uds_dbc_loads(can_data):
    d = load_dbc(can_data / "kona_ev_uds" / "tp_uds.dbc")
    assert len(d.database.messages) >= 1


def test_demo_dbc_is_clean():
    d = load_dbc(DEMO_DBC)
    assert d.repairs == () and d.strict
    assert d.database.get_message_by_name("BMS_CellStats").is_multiplexed()


def test_broken_dbc_names_the_line(tmp_path):
    bad = tmp_path / "broken.dbc"
    bad.write_text('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 256 M: 8 A\n SG_ S : 0|8@1+ (1,0) [0|255] "" A\n'
                   "BO_ 257 this is not a message\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_dbc(bad)
    assert err.value.where == f"{bad}:11"
    assert "not a DBC" in str(err.value)


def test_missing_dbc_file(tmp_path):
    with pytest.raises(DataFormatError) as err:
        load_dbc(tmp_path / "nope.dbc")
    assert "nope.dbc" in str(err.value) and "cannot read" in str(err.value)


def test_signal_that_does_not_fit_loads_non_strict(caplog):
    text = ('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\n'
            'BO_ 256 M: 2 A\n SG_ Big : 0|24@1+ (1,0) [0|0] "" A\n')
    with caplog.at_level(logging.WARNING):
        d = load_dbc_text(text, "toolong.dbc")
    assert not d.strict and any("non-strict" in r for r in d.repairs)
    assert "toolong.dbc" in caplog.text
