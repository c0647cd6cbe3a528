"""Offline decoder for a recorded diagnostic session (a scan tool on the OBD port).

Frames -> ISO-TP messages (``isotp_log``) -> requests and responses paired by id (a response on
``R`` answers the last request on ``R - 8`` or the functional id 0x7DF) -> decoded OBD-II / UDS / KWP
answers -> per-ECU findings: trouble codes with status, VIN, ECU names, negative responses and how often
an ECU asked for more time (0x78).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics import obd, uds
from edge_assistant.diagnostics.isotp_log import IsoTpPdu, IsoTpReassembler

log = logging.getLogger(__name__)

FUNCTIONAL_ID = 0x7DF
#: 11-bit diagnostic ids; responses sit 8 above their request id (ISO 15765-4 and most OEMs).
DIAG_ID_RANGE = range(0x700, 0x800)
RESPONSE_ID_OFFSET = 8


@dataclass(frozen=True)
class Exchange:
    """A request and one ECU's answer to it (answer None: nobody answered before the next request)."""

    t_s: float
    request_id: int
    request: bytes
    response_id: int | None
    response: bytes | None
    summary: str


@dataclass
class EcuFindings:
    response_id: int
    request_id: int
    name: str | None = None
    obd_dtcs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # stored/pending/permanent -> codes
    uds_dtcs: dict[str, uds.UdsDtc] = field(default_factory=dict)       # full code -> latest record
    kwp_dtcs: dict[str, uds.KwpDtc] = field(default_factory=dict)
    pids: dict[int, obd.PidValue] = field(default_factory=dict)
    vin: str | None = None
    calibration_ids: tuple[str, ...] = ()
    negative: list[uds.NegativeResponse] = field(default_factory=list)
    pending_answers: int = 0  # how many 7F xx 78 it sent

    def to_dict(self) -> dict:
        return {
            "response_id": f"0x{self.response_id:03X}", "request_id": f"0x{self.request_id:03X}",
            "name": self.name, "vin": self.vin, "calibration_ids": list(self.calibration_ids),
            "obd_dtcs": {k: list(v) for k, v in self.obd_dtcs.items()},
            "uds_dtcs": [{"code": d.full_code, "status": f"0x{d.status.byte:02X}", "flags": list(d.status.names),
                          "summary": d.status.summary} for d in self.uds_dtcs.values()],
            "kwp_dtcs": [{"code": d.code, "status": f"0x{d.status_byte:02X}"} for d in self.kwp_dtcs.values()],
            "pids": {f"0x{p:02X}": {"name": v.name, "value": v.value, "unit": v.unit} for p, v in self.pids.items()},
            "negative_responses": [str(n) for n in self.negative],
            "response_pending_count": self.pending_answers,
        }


@dataclass
class ScanLogReport:
    frames: int = 0
    messages: int = 0
    exchanges: list[Exchange] = field(default_factory=list)
    ecus: dict[int, EcuFindings] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def vin(self) -> str | None:
        return next((e.vin for e in self.ecus.values() if e.vin), None)

    def dtc_codes(self) -> set[str]:
        """Every trouble code seen: UDS ones as ``C1614-87``, OBD/KWP ones as ``P0D59``."""
        out: set[str] = set()
        for e in self.ecus.values():
            out.update(e.uds_dtcs)
            out.update(e.kwp_dtcs)
            for codes in e.obd_dtcs.values():
                out.update(codes)
        return out

    def to_dict(self) -> dict:
        return {
            "frames": self.frames, "isotp_messages": self.messages, "vin": self.vin,
            "requests": sum(1 for x in self.exchanges if x.response is None),
            "responses": sum(1 for x in self.exchanges if x.response is not None),
            "dtcs": sorted(self.dtc_codes()),
            "ecus": [self.ecus[k].to_dict() for k in sorted(self.ecus)],
            "exchanges": [{"t_s": round(x.t_s, 6), "request_id": f"0x{x.request_id:03X}", "request": x.request.hex(" "),
                           "response_id": None if x.response_id is None else f"0x{x.response_id:03X}",
                           "response": None if x.response is None else x.response.hex(" "), "summary": x.summary}
                          for x in self.exchanges],
            "errors": self.errors,
        }


def _is_request(payload: bytes) -> bool:
    sid = payload[0]
    return sid != uds.NEGATIVE_RESPONSE and not (0x40 <= sid < 0x80 or sid >= 0xC0)


def _sid_of_response(payload: bytes) -> int:
    return payload[1] if payload[0] == uds.NEGATIVE_RESPONSE and len(payload) > 1 else payload[0] - 0x40


class SessionDecoder:
    """Feed ISO-TP PDUs in time order; read ``report`` at the end."""

    def __init__(self, ecu_names: dict[int, str] | None = None) -> None:
        self.report = ScanLogReport()
        self._last_request: dict[tuple[int, int], tuple[float, bytes]] = {}  # (id, sid) -> (t, payload)
        self._ecu_names = ecu_names or {}

    def _ecu(self, response_id: int) -> EcuFindings:
        e = self.report.ecus.get(response_id)
        if e is None:
            e = EcuFindings(response_id, response_id - RESPONSE_ID_OFFSET, self._ecu_names.get(response_id))
            self.report.ecus[response_id] = e
        return e

    def feed(self, pdu: IsoTpPdu) -> None:
        self.report.messages += 1
        payload = pdu.data
        if _is_request(payload):
            self._last_request[(pdu.arbitration_id, payload[0])] = (pdu.timestamp_s, payload)
            self.report.exchanges.append(Exchange(pdu.timestamp_s, pdu.arbitration_id, payload, None, None,
                                                  uds.SERVICE_NAMES.get(payload[0], f"service 0x{payload[0]:02X}")))
            return
        sid = _sid_of_response(payload)
        # an ECU may answer late (after 0x78) while the tester already sent other services: pair by
        # service id with the latest request of that service on the physical or the functional id
        physical = self._last_request.get((pdu.arbitration_id - RESPONSE_ID_OFFSET, sid))
        functional = self._last_request.get((FUNCTIONAL_ID, sid))
        candidates = [(rid, r) for rid, r in ((pdu.arbitration_id - RESPONSE_ID_OFFSET, physical),
                                              (FUNCTIONAL_ID, functional)) if r is not None]
        if not candidates:
            self.report.errors.append(f"response 0x{pdu.arbitration_id:03X} at t={pdu.timestamp_s:.6f}s "
                                      f"[{payload.hex(' ')}] matches no earlier request for service 0x{sid:02X}")
            request_id, request = pdu.arbitration_id - RESPONSE_ID_OFFSET, b""
        else:
            request_id, (_, request) = max(candidates, key=lambda c: c[1][0])
        ecu = self._ecu(pdu.arbitration_id)
        where = f"response 0x{pdu.arbitration_id:03X} at t={pdu.timestamp_s:.6f}s"
        try:
            summary = self._decode(ecu, request, payload, where)
        except DataFormatError as exc:
            self.report.errors.append(str(exc))
            summary = f"undecodable: {exc.reason}"
        self.report.exchanges.append(Exchange(pdu.timestamp_s, request_id, request, pdu.arbitration_id, payload,
                                              summary))

    def _decode(self, ecu: EcuFindings, request: bytes, payload: bytes, where: str) -> str:
        sid = payload[0]
        if sid == uds.NEGATIVE_RESPONSE:
            nrc = uds.decode_negative(payload, where)
            if nrc.pending:
                ecu.pending_answers += 1
            else:
                ecu.negative.append(nrc)
            return str(nrc)
        service = sid - 0x40
        if service == obd.SERVICE_CURRENT_DATA:
            values = obd.decode_pid_response(payload, where)
            for v in values:
                ecu.pids[v.pid] = v
            return "; ".join(f"{v.name} = {v.value}{' ' + v.unit if v.unit else ''}" for v in values)
        if service in obd.DTC_SERVICES:
            rep = obd.decode_dtc_response(payload, where)
            ecu.obd_dtcs[rep.kind] = rep.codes
            return f"{rep.kind} DTCs: {', '.join(rep.codes) or 'none'}"
        if service == obd.SERVICE_VEHICLE_INFO:
            info = obd.decode_vehicle_info(payload, where)
            if info.info_type == obd.INFO_VIN and info.items:
                ecu.vin = info.items[0]
            elif info.info_type == obd.INFO_ECU_NAME and info.items and info.items[0]:
                ecu.name = info.items[0]
            elif info.info_type == obd.INFO_CALIBRATION_ID:
                ecu.calibration_ids = info.items
            return f"info 0x{info.info_type:02X}: {info.text}"
        if service == uds.SID_READ_DTC_INFO:
            res = uds.decode_read_dtc_response(payload, where)
            if isinstance(res, uds.DtcCount):
                return f"{res.count} DTCs match the mask"
            for d in res.dtcs:
                ecu.uds_dtcs[d.full_code] = d
            return f"DTCs: {', '.join(f'{d.full_code} ({d.status.summary})' for d in res.dtcs) or 'none'}"
        if service == uds.SID_KWP_READ_DTC_BY_STATUS:
            dtcs = uds.decode_kwp_dtc_response(payload, where)
            for d in dtcs:
                ecu.kwp_dtcs[d.code] = d
            return f"DTCs: {', '.join(d.code for d in dtcs) or 'none'}"
        return f"positive response to {uds.SERVICE_NAMES.get(service, f'service 0x{service:02X}')}"


def decode_frames(frames: Iterable[tuple[int, bytes, float]], ecu_names: dict[int, str] | None = None,
                  consecutive_timeout_s: float = 1.0) -> ScanLogReport:
    """Decode ``(id, data, t_s)`` frames of the diagnostic id range (0x700-0x7FF, 11-bit)."""
    reasm = IsoTpReassembler(consecutive_timeout_s=consecutive_timeout_s)
    dec = SessionDecoder(ecu_names)
    for arb_id, data, t_s in frames:
        if arb_id not in DIAG_ID_RANGE:
            continue
        dec.report.frames += 1
        try:
            pdu = reasm.feed(arb_id, bytes(data), t_s)
        except DataFormatError as exc:
            log.warning("%s", exc)
            dec.report.errors.append(str(exc))
            continue
        if pdu is not None:
            dec.feed(pdu)
    for arb_id, n in reasm.open_messages.items():
        dec.report.errors.append(f"id 0x{arb_id:03X}: multi-frame message unfinished at end of log ({n} bytes)")
    if reasm.expired_messages:
        dec.report.errors.append(f"{reasm.expired_messages} multi-frame message(s) expired: no frame for over "
                                 f"N_Cr {consecutive_timeout_s} s")
    return dec.report


def decode_log(path: str | Path, ecu_names: dict[int, str] | None = None) -> ScanLogReport:
    """Read a log in any format ``edge_assistant.vehicle.logs.read_log`` knows and decode it."""
    from edge_assistant.vehicle.logs import read_log

    frames = ((m.arbitration_id, bytes(m.data), float(m.timestamp)) for m in read_log(path)
              if not m.is_extended_id and not m.is_error_frame and not m.is_remote_frame)
    return decode_frames(frames, ecu_names)
