"""The demo car's diagnostic side: two virtual ECUs (VCU 0x7E0/0x7E8, BMS 0x7E4/0x7EC) serving the demo
vehicle state and the demo scenario's trouble codes, and a one-call DTC read through udsoncan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

from edge_assistant.core.state import VehicleSnapshot, VehicleState
from edge_assistant.diagnostics.clients import UdsClientConfig, read_uds_dtcs, uds_client
from edge_assistant.diagnostics.uds import UdsDtc
from edge_assistant.diagnostics.virtual_ecu import VirtualEcu, VirtualEcuConfig

log = logging.getLogger(__name__)

DEMO_VIN = "EADEMO0EV00000001"
DEMO_VEHICLE_TABLE = "demo_ev"
DEMO_VCU = VirtualEcuConfig(name="VCU", request_id=0x7E0, response_id=0x7E8, vin=DEMO_VIN,
                            ecu_name="VCU-EADEMO+VehCtrl", serial="EAVCU0000001")
DEMO_BMS = VirtualEcuConfig(name="BMS", request_id=0x7E4, response_id=0x7EC, vin=DEMO_VIN,
                            ecu_name="BMS-EADEMO+BattCtrl", serial="EABMS0000001")


@contextlib.contextmanager
def demo_ecus(state: VehicleState | VehicleSnapshot | None, dtcs: Callable[[], Iterable[tuple[str, int]]]
              | Iterable[tuple[str, int]], channel: str = "can0",
              slow_services_s: dict[int, float] | None = None,
              open_bus: Callable[[], object] | None = None) -> Iterator[list[VirtualEcu]]:
    """Run the demo VCU (live values, no codes) and BMS (live values and ``dtcs``).

    Each ECU gets its own bus: python-can's virtual ``channel``, or one from ``open_bus`` (e.g. the vehicle
    side's factory for ``socketcan:vcan0``), closed again on exit.
    """
    from dataclasses import replace

    buses = [open_bus(), open_bus()] if open_bus is not None else [None, None]
    try:
        vcu = VirtualEcu(replace(DEMO_VCU, channel=channel), state=state, dtcs=(), bus=buses[0])
        bms = VirtualEcu(replace(DEMO_BMS, channel=channel, slow_services_s=dict(slow_services_s or {})),
                         state=state, dtcs=dtcs, bus=buses[1])
        with vcu, bms:
            yield [vcu, bms]
    finally:
        for b in buses:
            if b is not None:
                b.shutdown()


def read_dtcs_once(bus, ecu: VirtualEcuConfig | UdsClientConfig = DEMO_BMS, status_mask: int = 0xFF
                   ) -> tuple[tuple[UdsDtc, ...], str]:
    """ReadDTCInformation 19 02 ``status_mask`` from one ECU through udsoncan; (codes, source text)."""
    if isinstance(ecu, VirtualEcuConfig):
        cfg = UdsClientConfig(request_id=ecu.request_id, response_id=ecu.response_id)
    else:
        cfg = ecu
    with uds_client(bus, cfg) as client:
        dtcs = read_uds_dtcs(client, status_mask)
    return dtcs, f"UDS 19 02 (mask 0x{status_mask:02X}) through udsoncan from ECU 0x{cfg.response_id:03X}"
