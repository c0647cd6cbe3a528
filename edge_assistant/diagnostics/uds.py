"""UDS (ISO 14229-1) codec: ReadDTCInformation 0x19 (sub-functions 0x01, 0x02), the DTC status byte,
negative responses and response-pending; plus the KWP2000-style 0x18 answer some ECUs still give.

Pure: bytes in, dataclasses out. The live client is udsoncan (see ``clients.py``); this module decodes
recorded sessions and builds the virtual ECU's answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics.obd import dtc_from_bytes, dtc_to_bytes

SID_SESSION_CONTROL = 0x10
SID_CLEAR_DTC = 0x14
SID_KWP_READ_DTC_BY_STATUS = 0x18
SID_READ_DTC_INFO = 0x19
SID_READ_DID = 0x22
SID_TESTER_PRESENT = 0x3E
NEGATIVE_RESPONSE = 0x7F
POSITIVE_OFFSET = 0x40

SUB_COUNT_BY_STATUS_MASK = 0x01
SUB_DTC_BY_STATUS_MASK = 0x02

NRC_RESPONSE_PENDING = 0x78

#: ISO 14229-1 negative response codes (our short names).
NRC_NAMES: dict[int, str] = {
    0x10: "general reject",
    0x11: "service not supported",
    0x12: "sub-function not supported",
    0x13: "incorrect message length or invalid format",
    0x14: "response too long",
    0x21: "busy, repeat request",
    0x22: "conditions not correct",
    0x24: "request sequence error",
    0x25: "no response from sub-net component",
    0x26: "failure prevents execution of requested action",
    0x31: "request out of range",
    0x33: "security access denied",
    0x35: "invalid key",
    0x36: "exceeded number of attempts",
    0x37: "required time delay not expired",
    0x70: "upload/download not accepted",
    0x71: "transfer data suspended",
    0x72: "general programming failure",
    0x73: "wrong block sequence counter",
    0x78: "request correctly received, response pending",
    0x7E: "sub-function not supported in active session",
    0x7F: "service not supported in active session",
}

#: DTC status bits (ISO 14229-1 D.2), bit number -> (name, plain meaning).
STATUS_BITS: dict[int, tuple[str, str]] = {
    0: ("testFailed", "failing right now"),
    1: ("testFailedThisOperationCycle", "failed during this drive cycle"),
    2: ("pendingDTC", "pending (failed this or last cycle, not yet confirmed)"),
    3: ("confirmedDTC", "confirmed and stored"),
    4: ("testNotCompletedSinceLastClear", "test not yet run since the codes were cleared"),
    5: ("testFailedSinceLastClear", "failed at least once since the codes were cleared"),
    6: ("testNotCompletedThisOperationCycle", "test not yet run this drive cycle"),
    7: ("warningIndicatorRequested", "warning lamp requested"),
}
STATUS_BIT_BY_NAME = {name: bit for bit, (name, _) in STATUS_BITS.items()}


@dataclass(frozen=True)
class DtcStatus:
    """The UDS DTC status byte with named flags."""

    byte: int

    def has(self, name: str) -> bool:
        return bool(self.byte & (1 << STATUS_BIT_BY_NAME[name]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for b, (n, _) in STATUS_BITS.items() if self.byte & (1 << b))

    @property
    def test_failed(self) -> bool:
        return self.has("testFailed")

    @property
    def confirmed(self) -> bool:
        return self.has("confirmedDTC")

    @property
    def pending(self) -> bool:
        return self.has("pendingDTC")

    @property
    def warning_lamp(self) -> bool:
        return self.has("warningIndicatorRequested")

    @property
    def summary(self) -> str:
        """A short plain-language summary: ``active, confirmed, warning lamp`` ..."""
        parts = []
        if self.test_failed:
            parts.append("active now")
        elif self.byte & 0x02:
            parts.append("failed earlier this drive")
        if self.confirmed:
            parts.append("confirmed")
        if self.pending:
            parts.append("pending")
        if self.warning_lamp:
            parts.append("warning lamp requested")
        if not parts:
            parts.append("stored, not failing now" if self.byte & 0x20 else "no fault flags set")
        return ", ".join(parts)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> DtcStatus:
        byte = 0
        for n in names:
            if n not in STATUS_BIT_BY_NAME:
                raise DataFormatError("DTC status", f"unknown status flag {n!r}; known: {sorted(STATUS_BIT_BY_NAME)}")
            byte |= 1 << STATUS_BIT_BY_NAME[n]
        return cls(byte)


@dataclass(frozen=True)
class UdsDtc:
    """One DTC from 0x19 0x02: 3 bytes (2-byte J2012 code + failure type byte) and its status."""

    code: str          # "U1128"
    failure_type: int  # J2012-DA failure type byte ("-00")
    status: DtcStatus

    @property
    def full_code(self) -> str:
        """``U1128-00`` (the form scan tools print as ``U1128(00)``)."""
        return f"{self.code}-{self.failure_type:02X}"

    @property
    def raw(self) -> bytes:
        return dtc_to_bytes(self.code) + bytes([self.failure_type])


@dataclass(frozen=True)
class NegativeResponse:
    service: int
    code: int

    @property
    def name(self) -> str:
        return NRC_NAMES.get(self.code, f"reserved/manufacturer code 0x{self.code:02X}")

    @property
    def pending(self) -> bool:
        return self.code == NRC_RESPONSE_PENDING

    def __str__(self) -> str:
        return f"7F {self.service:02X} {self.code:02X} ({self.name})"


@dataclass(frozen=True)
class DtcCount:
    availability_mask: int
    format_identifier: int
    count: int


@dataclass(frozen=True)
class DtcList:
    availability_mask: int
    dtcs: tuple[UdsDtc, ...]


# ---------------------------------------------------------------------------- requests
def read_dtc_count_request(status_mask: int) -> bytes:
    return bytes([SID_READ_DTC_INFO, SUB_COUNT_BY_STATUS_MASK, status_mask & 0xFF])


def read_dtc_request(status_mask: int) -> bytes:
    return bytes([SID_READ_DTC_INFO, SUB_DTC_BY_STATUS_MASK, status_mask & 0xFF])


# ---------------------------------------------------------------------------- responses
def decode_negative(payload: bytes, where: str = "UDS response") -> NegativeResponse:
    if len(payload) < 3 or payload[0] != NEGATIVE_RESPONSE:
        raise DataFormatError(where, f"not a negative response (7F sid nrc): {payload.hex(' ')}")
    return NegativeResponse(payload[1], payload[2])


def decode_read_dtc_response(payload: bytes, where: str = "UDS response") -> DtcCount | DtcList:
    """Decode ``59 01 mask fmt countHi countLo`` or ``59 02 mask (DTC3 status)*``."""
    if len(payload) < 3 or payload[0] != SID_READ_DTC_INFO + POSITIVE_OFFSET:
        raise DataFormatError(where, f"not a 0x59 ReadDTCInformation response: {payload.hex(' ')}")
    sub, mask = payload[1], payload[2]
    if sub == SUB_COUNT_BY_STATUS_MASK:
        if len(payload) != 6:
            raise DataFormatError(where, f"59 01 needs 6 bytes (59 01 mask fmt count16), got {len(payload)}")
        return DtcCount(mask, payload[3], int.from_bytes(payload[4:6], "big"))
    if sub == SUB_DTC_BY_STATUS_MASK:
        body = payload[3:]
        if len(body) % 4:
            raise DataFormatError(
                where, f"59 02 record area is {len(body)} bytes, not a multiple of 4 (DTC 3 bytes + status)")
        dtcs = tuple(UdsDtc(dtc_from_bytes(body[i], body[i + 1]), body[i + 2], DtcStatus(body[i + 3]))
                     for i in range(0, len(body), 4))
        return DtcList(mask, dtcs)
    raise DataFormatError(where, f"ReadDTCInformation sub-function 0x{sub:02X} is not decoded (0x01, 0x02 are)")


def encode_dtc_list(availability_mask: int, dtcs: Iterable[UdsDtc], status_mask: int) -> bytes:
    """The 59 02 answer: DTCs whose status has any bit of ``status_mask`` (ISO 14229 rule)."""
    out = bytearray([SID_READ_DTC_INFO + POSITIVE_OFFSET, SUB_DTC_BY_STATUS_MASK, availability_mask])
    for d in dtcs:
        if d.status.byte & availability_mask & status_mask:
            out += d.raw + bytes([d.status.byte & availability_mask])
    return bytes(out)


def encode_dtc_count(availability_mask: int, dtcs: Iterable[UdsDtc], status_mask: int) -> bytes:
    n = sum(1 for d in dtcs if d.status.byte & availability_mask & status_mask)
    # format identifier 0x01 = ISO 14229-1 DTC format
    return bytes([SID_READ_DTC_INFO + POSITIVE_OFFSET, SUB_COUNT_BY_STATUS_MASK, availability_mask, 0x01,
                  (n >> 8) & 0xFF, n & 0xFF])


def encode_negative(service: int, code: int) -> bytes:
    return bytes([NEGATIVE_RESPONSE, service & 0xFF, code & 0xFF])


@dataclass(frozen=True)
class KwpDtc:
    """A DTC from the KWP2000-style ``58 n (DTC2 status)*`` answer (service 0x18)."""

    code: str
    status_byte: int


def decode_kwp_dtc_response(payload: bytes, where: str = "KWP response") -> tuple[KwpDtc, ...]:
    if len(payload) < 2 or payload[0] != SID_KWP_READ_DTC_BY_STATUS + POSITIVE_OFFSET:
        raise DataFormatError(where, f"not a 0x58 response: {payload.hex(' ')}")
    n, body = payload[1], payload[2:]
    if len(body) < 3 * n:
        raise DataFormatError(where, f"says {n} DTCs but carries {len(body)} bytes (need {3 * n})")
    return tuple(KwpDtc(dtc_from_bytes(body[3 * i], body[3 * i + 1]), body[3 * i + 2]) for i in range(n))


#: Services whose positive/negative answers this package names (for logs and scan reports).
SERVICE_NAMES: dict[int, str] = {
    0x01: "OBD current data", 0x02: "OBD freeze frame", 0x03: "OBD stored DTCs", 0x04: "OBD clear DTCs",
    0x07: "OBD pending DTCs", 0x09: "OBD vehicle info", 0x0A: "OBD permanent DTCs",
    0x10: "DiagnosticSessionControl", 0x11: "ECUReset", 0x14: "ClearDiagnosticInformation",
    0x18: "ReadDTCByStatus (KWP2000)", 0x19: "ReadDTCInformation", 0x1A: "ReadECUIdentification (KWP2000)",
    0x20: "StopDiagnosticSession (KWP2000)", 0x21: "ReadDataByLocalId (KWP2000)", 0x22: "ReadDataByIdentifier",
    0x27: "SecurityAccess", 0x28: "CommunicationControl", 0x2E: "WriteDataByIdentifier",
    0x31: "RoutineControl", 0x3E: "TesterPresent", 0x85: "ControlDTCSetting",
}
