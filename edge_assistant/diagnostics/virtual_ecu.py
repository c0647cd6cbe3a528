"""A virtual ECU on a python-can bus: answers OBD-II (01, 03, 04, 07, 09, 0A) and UDS (0x10, 0x3E, 0x14,
0x19 sub-functions 0x01/0x02, 0x22) through a real can-isotp stack, from a vehicle state and a DTC list.

Physical requests arrive on ``request_id`` (ISO-TP, flow control handled by can-isotp); functional
requests (single frames on 0x7DF) are picked up by a listener and answered physically, as ISO 15765-4
says. Services listed in ``slow_services_s`` are answered with 7F xx 78 (response pending) first and the
real answer after the given delay. Negative answers with 0x11/0x12/0x31 are suppressed for functional
requests (ISO 14229-1).

Usage::

    with VirtualEcu(VirtualEcuConfig(), state=vehicle_state, dtcs=scenario_dtcs) as ecu:
        ...  # testers on the same virtual channel talk to it
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import VehicleSnapshot, VehicleState
from edge_assistant.diagnostics import obd, uds
from edge_assistant.diagnostics.dtc import parse_code
from edge_assistant.diagnostics.uds import DtcStatus, UdsDtc

log = logging.getLogger(__name__)

#: DIDs the ECU serves: id -> (name, VSS path or None for static text, scale of the uint16 raw value).
LIVE_DIDS: dict[int, tuple[str, str, float]] = {
    0x0101: ("state of charge", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 0.1),    # %
    0x0102: ("pack voltage", "Vehicle.Powertrain.TractionBattery.CurrentVoltage", 0.1),              # V
    0x0103: ("12 V supply", "Vehicle.LowVoltageBattery.CurrentVoltage", 0.001),                      # V
    0x0104: ("range", "Vehicle.Powertrain.Range", 1000.0),                                           # m per count
}
DID_VIN = 0xF190
DID_ECU_SERIAL = 0xF18C
DID_SYSTEM_NAME = 0xF197
LIVE_DID_UNAVAILABLE = 0xFFFF
SERIAL_LEN = 12        #: bytes of DID 0xF18C (space padded)
SYSTEM_NAME_LEN = 20   #: bytes of DID 0xF197 (space padded)

DtcSource = Callable[[], Iterable[tuple[str, int]]] | Iterable[tuple[str, int]]


@dataclass(frozen=True)
class VirtualEcuConfig:
    """Addresses, identity and timing of one virtual ECU."""

    name: str = "BMS"
    request_id: int = 0x7E4           #: physical request id (tester -> ECU)
    response_id: int = 0x7EC          #: response id (ECU -> tester)
    functional_id: int = 0x7DF        #: OBD-II functional request id
    channel: str = "can0"             #: python-can virtual channel when the ECU opens its own bus
    vin: str = "KMHK381GFMU000001"
    ecu_name: str = "BMS-EA+BatteryCtrl"
    serial: str = "EA0000000001"
    availability_mask: int = 0xFF     #: DTC status bits this ECU supports
    p2_ms: int = 50                   #: advertised in the 0x10 answer
    p2_star_ms: int = 5000            #: advertised in the 0x10 answer
    slow_services_s: dict[int, float] = field(default_factory=dict)  #: sid -> answer delay (sends 0x78 first)
    static_pid_bytes: dict[int, bytes] = field(
        default_factory=lambda: {0x1C: bytes([0x03]), 0x51: bytes([0x08])})  # OBD and OBD-II; electric
    padding: int = 0xAA

    def __post_init__(self) -> None:
        for key in ("request_id", "response_id", "functional_id"):
            v = getattr(self, key)
            if not 0 <= v <= 0x7FF:
                raise ConfigError(f"VirtualEcuConfig.{key}: 0x{v:X} is not an 11-bit CAN id")
        if len(self.vin) != 17:
            raise ConfigError(f"VirtualEcuConfig.vin: {self.vin!r} must have 17 characters")


class VirtualEcu:
    """Serve diagnostics on a bus until :meth:`stop`. Thread-safe to update ``dtcs`` and ``state``."""

    def __init__(self, config: VirtualEcuConfig | None = None, state: VehicleState | VehicleSnapshot | None = None,
                 dtcs: DtcSource = (), bus=None) -> None:
        self.config = config or VirtualEcuConfig()
        self.state = state
        self.dtcs = dtcs
        self._bus = bus
        self._own_bus = bus is None
        self._cleared: set[str] = set()
        self._session = 0x01
        self._queue: queue.Queue[tuple[bytes, bool]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stack = None
        self._notifier = None
        self.requests_served = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> VirtualEcu:
        import can
        import isotp

        c = self.config
        if self._bus is None:
            self._bus = can.Bus(interface="virtual", channel=c.channel, receive_own_messages=False)
        self._notifier = can.Notifier(self._bus, [], timeout=0.05)
        addr = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=c.response_id, rxid=c.request_id)
        params = {"tx_padding": c.padding, "tx_data_min_length": 8, "stmin": 0, "blocksize": 0,
                  "rx_consecutive_frame_timeout": 1000, "rx_flowcontrol_timeout": 1000}
        self._stack = isotp.NotifierBasedCanStack(self._bus, self._notifier, address=addr, params=params,
                                                  error_handler=self._isotp_error)
        self._stack.start()
        self._notifier.add_listener(self._on_frame)
        for target, name in ((self._rx_loop, "rx"), (self._serve_loop, "serve")):
            t = threading.Thread(target=target, name=f"virtual-ecu-{c.name}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("virtual ECU %s on 0x%03X/0x%03X", c.name, c.request_id, c.response_id)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()
        if self._stack is not None:
            self._stack.stop()
        if self._notifier is not None:
            self._notifier.stop()
        if self._own_bus and self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> VirtualEcu:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ plumbing
    def _isotp_error(self, error: Exception) -> None:
        log.warning("virtual ECU %s: ISO-TP error: %s", self.config.name, error)

    def _on_frame(self, msg) -> None:
        """Functional requests: single frames on 0x7DF (multi-frame is not allowed functionally)."""
        if msg.arbitration_id != self.config.functional_id or msg.is_extended_id or not msg.data:
            return
        pci, n = msg.data[0] >> 4, msg.data[0] & 0x0F
        if pci != 0 or n == 0 or n > len(msg.data) - 1:
            log.warning("virtual ECU %s: ignored functional frame %s (not a single frame)",
                        self.config.name, bytes(msg.data).hex(" "))
            return
        self._queue.put((bytes(msg.data[1:1 + n]), True))

    def _rx_loop(self) -> None:
        while not self._stop.is_set():
            payload = self._stack.recv(block=True, timeout=0.05)
            if payload is not None:
                self._queue.put((bytes(payload), False))

    def _serve_loop(self) -> None:
        while not self._stop.is_set():
            try:
                payload, functional = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                self._serve(payload, functional)
            except Exception:  # a bug in one answer must not kill the ECU
                log.exception("virtual ECU %s: failed to answer %s", self.config.name, payload.hex(" "))

    def _send(self, payload: bytes) -> None:
        self._stack.send(payload)

    def _serve(self, payload: bytes, functional: bool) -> None:
        self.requests_served += 1
        sid = payload[0]
        delay = self.config.slow_services_s.get(sid)
        if delay:
            self._send(uds.encode_negative(sid, uds.NRC_RESPONSE_PENDING))
            deadline = time.monotonic() + delay
            # keep the tester's P2* timer alive on long jobs, as real ECUs do
            while (left := deadline - time.monotonic()) > 0:
                if self._stop.wait(min(left, 2.0)):
                    return
                if deadline - time.monotonic() > 0:
                    self._send(uds.encode_negative(sid, uds.NRC_RESPONSE_PENDING))
        answer = self.answer(payload)
        if answer is None:
            return
        if functional and answer[0] == uds.NEGATIVE_RESPONSE and answer[2] in (0x11, 0x12, 0x31, 0x7E, 0x7F):
            return
        self._send(answer)

    # ------------------------------------------------------------------ content
    def snapshot(self) -> VehicleSnapshot | None:
        if isinstance(self.state, VehicleState):
            return self.state.snapshot()
        return self.state

    def current_dtcs(self) -> list[UdsDtc]:
        src = self.dtcs() if callable(self.dtcs) else self.dtcs
        out = []
        for code, status in src:
            base, failure = parse_code(code)
            full = f"{base}-{failure or 0:02X}"
            if full in self._cleared or base in self._cleared:
                continue
            out.append(UdsDtc(base, failure or 0, DtcStatus(int(status) & 0xFF)))
        return out

    def _pid_data(self, pid: int, snap: VehicleSnapshot | None) -> bytes | None:
        if pid in obd.SUPPORT_PIDS:
            supported = self.supported_pids(snap)
            if pid != 0 and not any(pid < p <= pid + 32 for p in supported):
                return None
            return obd.encode_supported(pid, supported)
        if pid == 0x01:
            dtcs = self.current_dtcs()
            mil = any(d.status.warning_lamp for d in dtcs)
            n = sum(1 for d in dtcs if d.status.confirmed)
            return bytes([(0x80 if mil else 0) | min(n, 0x7F), 0x00, 0x00, 0x00])
        if pid in self.config.static_pid_bytes:
            return self.config.static_pid_bytes[pid]
        spec = obd.PIDS.get(pid)
        if spec is None or spec.vss_path is None or spec.encode is None or snap is None:
            return None
        v = snap.value(spec.vss_path)
        if v is None or isinstance(v, str):
            return None
        return spec.encode(float(v))

    def supported_pids(self, snap: VehicleSnapshot | None) -> list[int]:
        pids = {0x01, *self.config.static_pid_bytes}
        if snap is not None:
            pids |= {p.pid for p in obd.PIDS.values()
                     if p.vss_path and p.encode and isinstance(snap.value(p.vss_path), (int, float))}
        top = max(pids)
        pids |= {b for b in obd.SUPPORT_PIDS if 0 < b < top}  # chain to the next range
        return sorted(pids)

    def answer(self, payload: bytes) -> bytes | None:
        """The answer to one request (None: no answer). Pure apart from session and clear state."""
        if not payload:
            return None
        sid = payload[0]
        handler = {
            obd.SERVICE_CURRENT_DATA: self._obd_current,
            obd.SERVICE_STORED_DTCS: self._obd_dtcs,
            obd.SERVICE_PENDING_DTCS: self._obd_dtcs,
            obd.SERVICE_PERMANENT_DTCS: self._obd_dtcs,
            obd.SERVICE_CLEAR_DTCS: self._obd_clear,
            obd.SERVICE_VEHICLE_INFO: self._obd_info,
            uds.SID_SESSION_CONTROL: self._uds_session,
            uds.SID_TESTER_PRESENT: self._uds_tester_present,
            uds.SID_READ_DTC_INFO: self._uds_read_dtc,
            uds.SID_CLEAR_DTC: self._uds_clear,
            uds.SID_READ_DID: self._uds_read_did,
        }.get(sid)
        if handler is None:
            return uds.encode_negative(sid, 0x11)
        return handler(payload)

    def _obd_current(self, p: bytes) -> bytes | None:
        pids = p[1:]
        if not 1 <= len(pids) <= 6:
            return uds.encode_negative(p[0], 0x13)
        snap = self.snapshot()
        values = {}
        for pid in pids:
            data = self._pid_data(pid, snap)
            if data is not None:
                values[pid] = data
        if not values:
            return uds.encode_negative(p[0], 0x31)  # suppressed when functional
        return obd.encode_pid_response(values)

    def _obd_dtcs(self, p: bytes) -> bytes:
        dtcs = self.current_dtcs()
        if p[0] == obd.SERVICE_STORED_DTCS:
            chosen = [d.code for d in dtcs if d.status.confirmed]
        elif p[0] == obd.SERVICE_PENDING_DTCS:
            chosen = [d.code for d in dtcs if d.status.pending]
        else:  # permanent: confirmed codes that commanded the MIL
            chosen = [d.code for d in dtcs if d.status.confirmed and d.status.warning_lamp]
        return obd.encode_dtc_response(p[0], chosen)

    def _obd_clear(self, p: bytes) -> bytes:
        self._cleared |= {d.full_code for d in self.current_dtcs()}
        return bytes([obd.SERVICE_CLEAR_DTCS + obd.POSITIVE_OFFSET])

    def _obd_info(self, p: bytes) -> bytes:
        if len(p) != 2:
            return uds.encode_negative(p[0], 0x13)
        info = p[1]
        if info == 0x00:
            return bytes([0x49, 0x00]) + obd.encode_supported(0, [obd.INFO_VIN, obd.INFO_ECU_NAME])
        if info == obd.INFO_VIN:
            return obd.encode_vehicle_info(info, [self.config.vin])
        if info == obd.INFO_ECU_NAME:
            return obd.encode_vehicle_info(info, [self.config.ecu_name])
        return uds.encode_negative(p[0], 0x31)

    def _uds_session(self, p: bytes) -> bytes:
        if len(p) != 2:
            return uds.encode_negative(p[0], 0x13)
        sub = p[1] & 0x7F
        if sub not in (0x01, 0x03):
            return uds.encode_negative(p[0], 0x12)
        self._session = sub
        if p[1] & 0x80:  # suppressPosRspMsgIndicationBit
            return None
        c = self.config
        return bytes([0x50, sub]) + c.p2_ms.to_bytes(2, "big") + (c.p2_star_ms // 10).to_bytes(2, "big")

    def _uds_tester_present(self, p: bytes) -> bytes | None:
        if len(p) != 2:
            return uds.encode_negative(p[0], 0x13)
        if p[1] & 0x7F != 0:
            return uds.encode_negative(p[0], 0x12)
        return None if p[1] & 0x80 else bytes([0x7E, 0x00])

    def _uds_read_dtc(self, p: bytes) -> bytes:
        if len(p) < 2:
            return uds.encode_negative(p[0], 0x13)
        sub = p[1]
        if sub not in (uds.SUB_COUNT_BY_STATUS_MASK, uds.SUB_DTC_BY_STATUS_MASK):
            return uds.encode_negative(p[0], 0x12)
        if len(p) != 3:
            return uds.encode_negative(p[0], 0x13)
        dtcs = self.current_dtcs()
        if sub == uds.SUB_COUNT_BY_STATUS_MASK:
            return uds.encode_dtc_count(self.config.availability_mask, dtcs, p[2])
        return uds.encode_dtc_list(self.config.availability_mask, dtcs, p[2])

    def _uds_clear(self, p: bytes) -> bytes:
        if len(p) != 4:
            return uds.encode_negative(p[0], 0x13)
        group = int.from_bytes(p[1:4], "big")
        dtcs = self.current_dtcs()
        if group == 0xFFFFFF:
            self._cleared |= {d.full_code for d in dtcs}
        else:
            match = [d for d in dtcs if int.from_bytes(d.raw, "big") == group]
            if not match:
                return uds.encode_negative(p[0], 0x31)
            self._cleared |= {d.full_code for d in match}
        return bytes([0x54])

    def _uds_read_did(self, p: bytes) -> bytes:
        if len(p) < 3 or (len(p) - 1) % 2:
            return uds.encode_negative(p[0], 0x13)
        snap = self.snapshot()
        out = bytearray([0x62])
        for i in range(1, len(p), 2):
            did = int.from_bytes(p[i:i + 2], "big")
            data = self._did_data(did, snap)
            if data is None:
                return uds.encode_negative(p[0], 0x31)
            out += p[i:i + 2] + data
        return bytes(out)

    def _did_data(self, did: int, snap: VehicleSnapshot | None) -> bytes | None:
        c = self.config
        if did == DID_VIN:
            return c.vin.encode("ascii")
        if did == DID_ECU_SERIAL:
            return c.serial.encode("ascii")[:SERIAL_LEN].ljust(SERIAL_LEN)
        if did == DID_SYSTEM_NAME:
            return c.ecu_name.encode("ascii")[:SYSTEM_NAME_LEN].ljust(SYSTEM_NAME_LEN)
        spec = LIVE_DIDS.get(did)
        if spec is None:
            return None
        _, path, scale = spec
        v = None if snap is None else snap.value(path)
        if not isinstance(v, (int, float)):
            return LIVE_DID_UNAVAILABLE.to_bytes(2, "big")
        raw = int(round(float(v) / scale))
        return min(max(raw, 0), 0xFFFE).to_bytes(2, "big")
