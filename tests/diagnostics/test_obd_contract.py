"""One contract for every OBD-II backend (python-can back2back style): the can-isotp client and the
ELM327 client over a pty must give the same answers from the same virtual ECUs."""

from __future__ import annotations

from collections.abc import Iterator

import can
import pytest

from edge_assistant.core.state import VehicleState
from edge_assistant.diagnostics.clients import DiagnosticTimeout, ObdClient, ObdClientConfig, ObdServices
from edge_assistant.diagnostics.elm327 import Elm327Client, Elm327Emulator
from edge_assistant.diagnostics.virtual_ecu import VirtualEcu, VirtualEcuConfig

VIN = "WEA0CONTRACT00001"
BMS = VirtualEcuConfig(name="BMS", request_id=0x7E4, response_id=0x7EC, vin=VIN)
VCU = VirtualEcuConfig(name="VCU", request_id=0x7E0, response_id=0x7E8, vin=VIN, ecu_name="VCU-EA+VehCtrl")
ECUS = ObdClientConfig(ecus=((0x7E0, 0x7E8), (0x7E4, 0x7EC)), p2_s=0.25)


@pytest.fixture()
def network() -> Iterator[can.BusABC]:
    st = VehicleState()
    st.update("Vehicle.Speed", 63.0, "km/h", 5.0, "test")
    st.update("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 50.2, "percent", 5.0, "test")
    bus = can.Bus(interface="virtual", channel="can0")
    with VirtualEcu(BMS, state=st, dtcs=[("P0AA6", 0x8F), ("U0146", 0x04)]), VirtualEcu(VCU, state=st):
        yield bus
    bus.shutdown()


class ObdBackendContract:
    """Subclasses provide ``client`` as a fixture yielding an ObdServices."""

    def test_functional_pid_read_reaches_every_ecu(self, client: ObdServices) -> None:
        res = client.read_pids(0x0D)
        assert set(res) == {0x7E8, 0x7EC} and all(v[0].value == 63 for v in res.values())

    def test_physical_pid_read(self, client: ObdServices) -> None:
        (soc,) = client.read_pids(0x5B, ecu=0x7EC)[0x7EC]
        assert soc.value == pytest.approx(50.2, abs=0.4)

    def test_dtc_services(self, client: ObdServices) -> None:
        assert client.read_dtcs(0x03)[0x7EC].codes == ("P0AA6",)
        assert client.read_dtcs(0x07)[0x7EC].codes == ("P0AA6", "U0146")
        assert client.read_dtcs(0x0A)[0x7EC].codes == ("P0AA6",)
        assert client.read_dtcs(0x03)[0x7E8].codes == ()

    def test_vin_and_names(self, client: ObdServices) -> None:
        assert client.read_vin() == {0x7E8: VIN, 0x7EC: VIN}
        assert client.read_ecu_names(ecu=0x7E8) == {0x7E8: "VCU-EA+VehCtrl"}

    def test_uds_functional_dtc_read(self, client: ObdServices) -> None:
        res = client.read_uds_dtcs_functional(0xFF)
        assert [d.full_code for d in res[0x7EC]] == ["P0AA6-00", "U0146-00"] and res[0x7E8] == ()

    def test_unsupported_pid_is_silence(self, client: ObdServices) -> None:
        with pytest.raises(DiagnosticTimeout):
            client.read_pids(0x0C)


class TestIsoTpBackend(ObdBackendContract):
    @pytest.fixture()
    def client(self, network: can.BusABC) -> Iterator[ObdServices]:
        with ObdClient(network, ECUS) as c:
            yield c


class TestElm327Backend(ObdBackendContract):
    @pytest.fixture()
    def client(self, network: can.BusABC) -> Iterator[ObdServices]:
        with ObdClient(network, ECUS) as tester, Elm327Emulator(tester) as emu, Elm327Client(emu.port) as elm:
            elm.initialize()
            yield elm
