"""The virtual ECU driven by the real clients (udsoncan Client over PythonIsoTpConnection, can-isotp
stacks) on python-can's virtual bus, channel can0."""

from __future__ import annotations

import time
from collections.abc import Iterator

import can
import pytest
import udsoncan
from udsoncan.exceptions import NegativeResponseException, TimeoutException

from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import VehicleState
from edge_assistant.diagnostics.clients import (
    ISOTP_ERRORS_KEPT,
    DiagnosticTimeout,
    NegativeResponseError,
    ObdClient,
    ObdClientConfig,
    UdsClientConfig,
    count_uds_dtcs,
    read_uds_dtcs,
    uds_client,
)
from edge_assistant.diagnostics.virtual_ecu import VirtualEcu, VirtualEcuConfig

CHANNEL = "can0"
BMS = VirtualEcuConfig(name="BMS", request_id=0x7E4, response_id=0x7EC, vin="KMHK381GFMU000001")
VCU = VirtualEcuConfig(name="VCU", request_id=0x7E0, response_id=0x7E8, vin="KMHK381GFMU000001",
                       ecu_name="VCU-EA+VehCtrl")
DTCS = [("P0AA6", 0x2F | 0x80), ("U0146", 0x04), ("C1614-87", 0x28)]
TWO_ECUS = ObdClientConfig(ecus=((0x7E0, 0x7E8), (0x7E4, 0x7EC)), p2_s=0.25)


@pytest.fixture()
def state() -> VehicleState:
    st = VehicleState()
    st.update("Vehicle.Speed", 87.0, "km/h", 100.0, "test")
    st.update("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 64.3, "percent", 100.0, "test")
    st.update("Vehicle.TraveledDistance", 12345.6, "km", 100.0, "test")
    st.update("Vehicle.Exterior.AirTemperature", 6.0, "celsius", 100.0, "test")
    st.update("Vehicle.LowVoltageBattery.CurrentVoltage", 12.55, "V", 100.0, "test")
    return st


@pytest.fixture()
def bus() -> Iterator[can.BusABC]:
    b = can.Bus(interface="virtual", channel=CHANNEL)
    yield b
    b.shutdown()


@pytest.fixture()
def ecus(state: VehicleState) -> Iterator[tuple[VirtualEcu, VirtualEcu]]:
    with VirtualEcu(BMS, state=state, dtcs=list(DTCS)) as bms, VirtualEcu(VCU, state=state) as vcu:
        yield bms, vcu


# ------------------------------------------------------------------------------------------ UDS
def test_udsoncan_reads_dtcs_by_status_mask(ecus, bus) -> None:
    with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC)) as client:
        assert count_uds_dtcs(client, 0xFF) == 3
        assert count_uds_dtcs(client, 0x08) == 2          # confirmed
        assert count_uds_dtcs(client, 0x80) == 1          # warning lamp
        confirmed = read_uds_dtcs(client, 0x08)
        assert [d.full_code for d in confirmed] == ["P0AA6-00", "C1614-87"]
        assert confirmed[0].status.byte == 0xAF and confirmed[0].status.warning_lamp
        pending = read_uds_dtcs(client, 0x04)
        assert {d.code for d in pending} == {"P0AA6", "U0146"}
        assert read_uds_dtcs(client, 0x40) == ()


def test_response_pending_then_answer(state, bus) -> None:
    slow = VirtualEcuConfig(**{**BMS.__dict__, "slow_services_s": {0x19: 0.8}})
    with VirtualEcu(slow, state=state, dtcs=list(DTCS)):
        with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC, p2_s=0.4, p2_star_s=3.0)) as client:
            t0 = time.monotonic()
            assert len(read_uds_dtcs(client, 0xFF)) == 3  # udsoncan waited past P2 after 7F 19 78
            assert time.monotonic() - t0 >= 0.75
        with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC, p2_s=0.4, p2_star_s=0.2)) as client, \
                pytest.raises(TimeoutException):
            read_uds_dtcs(client, 0xFF)


def test_negative_responses_reach_udsoncan(ecus, bus) -> None:
    with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC)) as client:
        client.config["data_identifiers"][0x1334] = udsoncan.AsciiCodec(4)
        with pytest.raises(NegativeResponseException) as exc:
            client.read_data_by_identifier([0x1334])             # a DID the ECU does not have
        assert exc.value.response.code == 0x31
        with pytest.raises(NegativeResponseException) as exc:
            client.change_session(0x02)                          # programming session refused
        assert exc.value.response.code == 0x12
        with pytest.raises(NegativeResponseException) as exc:
            client.request_seed(0x01)                            # SecurityAccess not implemented
        assert exc.value.response.code == 0x11
        client.change_session(0x03)
        client.tester_present()


def test_read_dids_and_clear(ecus, bus) -> None:
    with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC)) as client:
        values = client.read_data_by_identifier([0xF190, 0x0101, 0x0103, 0x0102]).service_data.values
        assert values[0xF190] == "KMHK381GFMU000001"
        assert values[0x0101] == pytest.approx(64.3) and values[0x0103] == pytest.approx(12.55)
        assert values[0x0102] is None  # pack voltage not in the state: "unavailable", not invented
        client.clear_dtc(0xFFFFFF)
        assert read_uds_dtcs(client, 0xFF) == ()


# ------------------------------------------------------------------------------------------ OBD-II
def test_obd_current_data_functional_and_physical(ecus, bus) -> None:
    with ObdClient(bus, TWO_ECUS) as obd:
        answers = obd.read_pids(0x0D, 0x5B, 0xA6)
        assert set(answers) == {0x7E8, 0x7EC}                  # both ECUs answered the functional request
        vals = {v.pid: v.value for v in answers[0x7EC]}
        assert vals[0x0D] == 87 and vals[0xA6] == pytest.approx(12345.6)
        assert vals[0x5B] == pytest.approx(64.3, abs=100 / 255)
        (v,) = obd.read_pids(0x42, ecu=0x7E8)[0x7E8]
        assert v.value == pytest.approx(12.55)
        sup = obd.supported_pids()
        assert {0x0D, 0x42, 0x46, 0x5B, 0xA6} <= set(sup[0x7EC])
        assert 0x0C not in sup[0x7EC]                          # no engine: rpm is not claimed


def test_obd_dtc_services(ecus, bus) -> None:
    with ObdClient(bus, TWO_ECUS) as obd:
        stored = obd.read_dtcs(0x03)
        assert stored[0x7EC].codes == ("P0AA6", "C1614") and stored[0x7E8].codes == ()
        assert obd.read_dtcs(0x07)[0x7EC].codes == ("P0AA6", "U0146")
        assert obd.read_dtcs(0x0A)[0x7EC].codes == ("P0AA6",)
        mon = obd.read_pids(0x01, ecu=0x7EC)[0x7EC][0].value
        assert mon["mil_on"] and mon["dtc_count"] == 2


def test_obd_vin_is_multi_frame(ecus, bus) -> None:
    frames: list[can.Message] = []
    spy = can.Bus(interface="virtual", channel=CHANNEL)
    with ObdClient(bus, TWO_ECUS) as obd:
        assert obd.read_vin() == {0x7E8: "KMHK381GFMU000001", 0x7EC: "KMHK381GFMU000001"}
        assert obd.read_vin(ecu=0x7EC) == {0x7EC: "KMHK381GFMU000001"}
        assert obd.read_ecu_names(ecu=0x7E8) == {0x7E8: "VCU-EA+VehCtrl"}
    while (m := spy.recv(timeout=0.05)) is not None:
        frames.append(m)
    spy.shutdown()
    ecu_frames = [m for m in frames if m.arbitration_id == 0x7EC]
    assert any(m.data[0] >> 4 == 1 for m in ecu_frames)         # first frame
    assert any(m.data[0] >> 4 == 2 for m in ecu_frames)         # consecutive frames
    assert any(m.arbitration_id == 0x7E4 and m.data[0] >> 4 == 3 for m in frames)  # our flow control
    assert all(len(m.data) == 8 for m in ecu_frames)            # padded to 8 bytes


def test_obd_pending_and_refusals(state, bus) -> None:
    slow = VirtualEcuConfig(**{**BMS.__dict__, "slow_services_s": {0x03: 0.6}})
    with VirtualEcu(slow, state=state, dtcs=list(DTCS)), \
            ObdClient(bus, ObdClientConfig(ecus=((0x7E4, 0x7EC),), p2_s=0.4, p2_star_s=2.0)) as obd:
        assert obd.read_dtcs(0x03)[0x7EC].codes == ("P0AA6", "C1614")
        with pytest.raises(NegativeResponseError, match=r"7F 01 31 \(request out of range\)"):
            obd.read_pids(0x0C, ecu=0x7EC)                      # physical: refused
        with pytest.raises(DiagnosticTimeout, match="functional 0x7DF"):
            obd.read_pids(0x0C)                                 # functional: ECU stays silent (ISO 14229)


@pytest.mark.parametrize(("sid", "call", "named"), [
    (0x19, lambda obd: obd.read_uds_dtcs_functional(), "service 0x19 ReadDTCInformation, functional 0x7DF"),
    (0x03, lambda obd: obd.read_dtcs(0x03, ecu=0x7EC), "service 0x03 OBD stored DTCs, ECU 0x7EC"),
])
def test_endless_response_pending_is_bounded(state, bus, sid, call, named) -> None:
    """The ECU answers 7F xx 78 every 2 s for a minute (P2* = 5 s would be renewed each time): the request
    gives up at max_wait_s with the timeout error naming the service, instead of waiting for the ECU."""
    stuck = VirtualEcuConfig(**{**BMS.__dict__, "slow_services_s": {sid: 60.0}})
    cfg = ObdClientConfig(ecus=((0x7E4, 0x7EC),), p2_s=1.0, p2_star_s=5.0, max_wait_s=1.5)
    with VirtualEcu(stuck, state=state, dtcs=list(DTCS)), ObdClient(bus, cfg) as obd, \
            pytest.raises(DiagnosticTimeout) as err:
        call(obd)
    assert named in str(err.value) and "0x7EC (1x) kept answering 'response pending'" in str(err.value)
    assert "max_wait_s=1.5" in str(err.value)
    with pytest.raises(ConfigError, match="max_wait_s"):
        ObdClientConfig(p2_s=1.0, max_wait_s=0.5)
    with pytest.raises(ConfigError, match="request_timeout_s"):
        UdsClientConfig(request_timeout_s=None)  # udsoncan would renew P2* on every 0x78 without end


def test_timeout_when_nobody_answers(bus) -> None:
    with ObdClient(bus, ObdClientConfig(ecus=((0x7E0, 0x7E8),), p2_s=0.05)) as obd:
        t0 = time.monotonic()
        with pytest.raises(DiagnosticTimeout, match=r"no answer to 01 0d .* within 0.05 s"):
            obd.read_pids(0x0D)
        assert time.monotonic() - t0 < 1.0
    with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC, p2_s=0.05, request_timeout_s=0.3)) as client, \
            pytest.raises(TimeoutException):
        client.tester_present()


def test_isotp_errors_are_counted_but_only_the_latest_kept(bus) -> None:
    """Stray consecutive frames on the response id, for hours: counted, a bounded list of messages."""
    n = 4 * ISOTP_ERRORS_KEPT
    garbage = can.Bus(interface="virtual", channel=CHANNEL)
    try:
        with ObdClient(bus, ObdClientConfig(ecus=((0x7E0, 0x7E8),))) as obd:
            for i in range(n):
                garbage.send(can.Message(arbitration_id=0x7E8, data=bytes([0x21, i, 0, 0, 0, 0, 0, 0]),
                                         is_extended_id=False))
            deadline = time.monotonic() + 10.0
            while obd.isotp_error_count < n and time.monotonic() < deadline:
                time.sleep(0.01)
            assert obd.isotp_error_count == n and len(obd.isotp_errors) == ISOTP_ERRORS_KEPT
    finally:
        garbage.shutdown()


def test_ecu_survives_garbage(ecus, bus) -> None:
    for data in (b"\x21\x01\x02", b"\x7f", b"\x10\x08\x19\x02", b"\x00", b"\xf0" * 8):
        bus.send(can.Message(arbitration_id=0x7E4, data=data, is_extended_id=False))
        bus.send(can.Message(arbitration_id=0x7DF, data=data, is_extended_id=False))
    time.sleep(1.2)  # let the half-open multi-frame request time out (N_Cr) in the ECU's stack
    with uds_client(bus, UdsClientConfig(0x7E4, 0x7EC)) as client:
        assert count_uds_dtcs(client, 0xFF) == 3


@pytest.mark.parametrize(("request_hex", "answer_hex"), [
    ("1903", "7f1912"),          # sub-function not supported
    ("1902", "7f1913"),          # status mask missing
    ("190208ff", "7f1913"),      # too long
    ("1005", "7f1012"),          # session not supported
    ("1083", None),              # suppressPosRspMsgIndicationBit: no positive answer
    ("3e80", None),
    ("3e01", "7f3e12"),
    ("2701", "7f2711"),          # SecurityAccess: service not supported
    ("22f1", "7f2213"),          # half a DID
    ("14ffff", "7f1413"),
    ("14123456", "7f1431"),      # no such DTC group
    ("0902", None),              # handled below: VIN
    ("0100", None),
])
def test_answers_without_a_bus(request_hex: str, answer_hex: str | None, state: VehicleState) -> None:
    ecu = VirtualEcu(BMS, state=state, dtcs=list(DTCS))
    got = ecu.answer(bytes.fromhex(request_hex))
    if request_hex == "0902":
        assert got[:3] == bytes.fromhex("490201") and got[3:].decode() == BMS.vin
    elif request_hex == "0100":
        assert got[:2] == bytes.fromhex("4100") and len(got) == 6
    else:
        assert (got.hex() if got is not None else None) == answer_hex
