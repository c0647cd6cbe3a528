"""OBD-II (SAE J1979 / ISO 15031-5) codec: service 01 PIDs, 03/07/0A trouble codes, 09 vehicle info.

Pure functions over bytes: requests are built here, responses decoded into dataclasses. The PID
table is written from the J1979 formulas (A, B, C, D are the data bytes after the PID byte). Each
entry can also *encode* a physical value, which the virtual ECU uses to answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_assistant.core.errors import DataFormatError

log = logging.getLogger(__name__)

#: Service ids (requests); a positive response is the id + 0x40.
SERVICE_CURRENT_DATA = 0x01
SERVICE_STORED_DTCS = 0x03
SERVICE_CLEAR_DTCS = 0x04
SERVICE_PENDING_DTCS = 0x07
SERVICE_VEHICLE_INFO = 0x09
SERVICE_PERMANENT_DTCS = 0x0A
DTC_SERVICES = (SERVICE_STORED_DTCS, SERVICE_PENDING_DTCS, SERVICE_PERMANENT_DTCS)
POSITIVE_OFFSET = 0x40

#: Service 09 info types.
INFO_VIN = 0x02
INFO_CALIBRATION_ID = 0x04
INFO_ECU_NAME = 0x0A

DTC_LETTERS = "PCBU"


# ---------------------------------------------------------------------------------------- DTCs
def dtc_from_bytes(hi: int, lo: int) -> str:
    """Two DTC bytes (SAE J2012 / ISO 15031-6) -> ``P0D59``, ``U0146`` ..."""
    letter = DTC_LETTERS[(hi >> 6) & 0x03]
    return f"{letter}{(hi >> 4) & 0x03}{hi & 0x0F:X}{lo:02X}"


def dtc_to_bytes(code: str) -> bytes:
    """``P0D59`` -> ``b'\\x0d\\x59'``; raises DataFormatError for anything else."""
    c = code.strip().upper()
    if len(c) != 5 or c[0] not in DTC_LETTERS or c[1] not in "0123":
        raise DataFormatError(f"DTC {code!r}", "expected a letter P/C/B/U, a digit 0-3 and three hex digits")
    if not all(ch in "0123456789ABCDEF" for ch in c[2:]):  # int(.., 16) would take a sign, blanks, "_"
        raise DataFormatError(f"DTC {code!r}", "the last three characters must be hex digits")
    rest = int(c[2:], 16)
    hi = (DTC_LETTERS.index(c[0]) << 6) | (int(c[1]) << 4) | (rest >> 8)
    return bytes([hi, rest & 0xFF])


@dataclass(frozen=True)
class ObdDtcReport:
    """A service 03/07/0A answer from one ECU."""

    service: int
    codes: tuple[str, ...]

    @property
    def kind(self) -> str:
        return {0x03: "stored", 0x07: "pending", 0x0A: "permanent"}.get(self.service, f"0x{self.service:02X}")


def decode_dtc_response(payload: bytes, where: str = "OBD response") -> ObdDtcReport:
    """Decode ``43/47/4A [count] DTC DTC ...`` (ISO 15765-4 puts a count byte first on CAN).

    ``0000`` entries are padding and dropped. A count that disagrees with the data is an error.
    """
    if len(payload) < 2 or payload[0] - POSITIVE_OFFSET not in DTC_SERVICES:
        raise DataFormatError(where, f"not a 43/47/4A DTC response: {payload.hex(' ')}")
    service = payload[0] - POSITIVE_OFFSET
    count = payload[1]
    body = payload[2:]
    if len(body) < 2 * count:
        raise DataFormatError(where, f"says {count} DTCs but carries {len(body)} bytes (need {2 * count})")
    codes = []
    for i in range(count):
        hi, lo = body[2 * i], body[2 * i + 1]
        if hi == 0 and lo == 0:
            continue
        codes.append(dtc_from_bytes(hi, lo))
    return ObdDtcReport(service, tuple(codes))


def encode_dtc_response(service: int, codes: Iterable[str]) -> bytes:
    """The positive answer to 03/07/0A with a count byte (what the virtual ECU sends)."""
    codes = list(codes)
    if len(codes) > 255:
        raise DataFormatError("OBD DTC response", f"{len(codes)} codes do not fit a count byte")
    out = bytearray([service + POSITIVE_OFFSET, len(codes)])
    for c in codes:
        out += dtc_to_bytes(c)
    return bytes(out)


# ---------------------------------------------------------------------------------------- PIDs
@dataclass(frozen=True)
class Pid:
    """One service-01 PID. ``decode`` maps the data bytes to a value, ``encode`` the reverse."""

    pid: int
    name: str
    length_bytes: int
    unit: str | None
    decode: Callable[[bytes], float | int | str | dict]
    encode: Callable[[float], bytes] | None = None
    vss_path: str | None = None


@dataclass(frozen=True)
class PidValue:
    pid: int
    name: str
    value: float | int | str | dict
    unit: str | None
    raw: bytes


def _u(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _linear(nbytes: int, scale: float, offset: float) -> tuple[Callable[[bytes], float], Callable[[float], bytes]]:
    """value = raw * scale + offset, raw an unsigned big-endian integer of ``nbytes``."""
    top = (1 << (8 * nbytes)) - 1

    def dec(d: bytes) -> float:
        v = _u(d[:nbytes]) * scale + offset
        return round(v, 6)

    def enc(value: float) -> bytes:
        raw = int(round((float(value) - offset) / scale))
        return min(max(raw, 0), top).to_bytes(nbytes, "big")

    return dec, enc


def _pid(pid: int, name: str, nbytes: int, unit: str | None, scale: float, offset: float,
         vss: str | None = None) -> Pid:
    dec, enc = _linear(nbytes, scale, offset)
    return Pid(pid, name, nbytes, unit, dec, enc, vss)


def _supported_decode(base: int) -> Callable[[bytes], dict]:
    def dec(d: bytes) -> dict:
        return {"supported": supported_pids(base, d[:4])}

    return dec


def _monitor_status(d: bytes) -> dict:
    a = d[0]
    return {"mil_on": bool(a & 0x80), "dtc_count": a & 0x7F, "compression_ignition": bool(d[1] & 0x08)}


_OBD_STANDARDS = {
    1: "OBD-II (CARB)", 2: "OBD (EPA)", 3: "OBD and OBD-II", 4: "OBD-I", 5: "not OBD compliant",
    6: "EOBD (Europe)", 7: "EOBD and OBD-II", 9: "EOBD, OBD and OBD-II", 10: "JOBD (Japan)",
    13: "JOBD, EOBD and OBD-II", 17: "EMD", 33: "KOBD (Korea)",
}
_FUEL_TYPES = {
    0: "not available", 1: "gasoline", 2: "methanol", 3: "ethanol", 4: "diesel", 5: "LPG", 6: "CNG",
    8: "electric", 17: "hybrid gasoline", 19: "hybrid diesel", 20: "hybrid electric",
    21: "hybrid mixed fuel", 22: "hybrid regenerative",
}


def _enum(table: dict[int, str]) -> Callable[[bytes], str]:
    return lambda d: table.get(d[0], f"code {d[0]}")


PIDS: dict[int, Pid] = {p.pid: p for p in [
    Pid(0x00, "supported PIDs 01-20", 4, None, _supported_decode(0x00)),
    Pid(0x01, "monitor status since DTCs cleared", 4, None, _monitor_status),
    _pid(0x04, "calculated engine load", 1, "%", 100 / 255, 0),
    _pid(0x05, "engine coolant temperature", 1, "degC", 1, -40, "Vehicle.OBD.CoolantTemperature"),
    _pid(0x0B, "intake manifold absolute pressure", 1, "kPa", 1, 0),
    _pid(0x0C, "engine speed", 2, "rpm", 0.25, 0, "Vehicle.OBD.EngineSpeed"),
    _pid(0x0D, "vehicle speed", 1, "km/h", 1, 0, "Vehicle.Speed"),
    _pid(0x0E, "timing advance", 1, "deg", 0.5, -64),
    _pid(0x0F, "intake air temperature", 1, "degC", 1, -40),
    _pid(0x10, "mass air flow rate", 2, "g/s", 0.01, 0),
    _pid(0x11, "throttle position", 1, "%", 100 / 255, 0),
    Pid(0x1C, "OBD standard", 1, None, _enum(_OBD_STANDARDS)),
    _pid(0x1F, "run time since engine start", 2, "s", 1, 0),
    Pid(0x20, "supported PIDs 21-40", 4, None, _supported_decode(0x20)),
    _pid(0x21, "distance travelled with MIL on", 2, "km", 1, 0, "Vehicle.OBD.DistanceWithMIL"),
    _pid(0x2F, "fuel tank level", 1, "%", 100 / 255, 0, "Vehicle.OBD.FuelLevel"),
    _pid(0x30, "warm-ups since codes cleared", 1, None, 1, 0),
    _pid(0x31, "distance travelled since codes cleared", 2, "km", 1, 0, "Vehicle.OBD.DistanceSinceDTCClear"),
    _pid(0x33, "absolute barometric pressure", 1, "kPa", 1, 0),
    Pid(0x40, "supported PIDs 41-60", 4, None, _supported_decode(0x40)),
    _pid(0x42, "control module voltage", 2, "V", 0.001, 0, "Vehicle.LowVoltageBattery.CurrentVoltage"),
    _pid(0x46, "ambient air temperature", 1, "degC", 1, -40, "Vehicle.Exterior.AirTemperature"),
    Pid(0x51, "fuel type", 1, None, _enum(_FUEL_TYPES)),
    _pid(0x5B, "hybrid/EV battery pack remaining life", 1, "%", 100 / 255, 0,
         "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"),
    _pid(0x5C, "engine oil temperature", 1, "degC", 1, -40),
    _pid(0x5E, "engine fuel rate", 2, "L/h", 0.05, 0),
    Pid(0x60, "supported PIDs 61-80", 4, None, _supported_decode(0x60)),
    Pid(0x80, "supported PIDs 81-A0", 4, None, _supported_decode(0x80)),
    Pid(0xA0, "supported PIDs A1-C0", 4, None, _supported_decode(0xA0)),
    _pid(0xA6, "odometer", 4, "km", 0.1, 0, "Vehicle.TraveledDistance"),
    Pid(0xC0, "supported PIDs C1-E0", 4, None, _supported_decode(0xC0)),
]}

SUPPORT_PIDS = (0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0)


def supported_pids(base: int, bitmap: bytes) -> list[int]:
    """PIDs flagged in a 4-byte support bitmap answering PID ``base`` (bit 31 = base + 1)."""
    if len(bitmap) != 4:
        raise DataFormatError(f"PID 0x{base:02X}", f"support bitmap needs 4 bytes, got {len(bitmap)}")
    word = _u(bitmap)
    return [base + i + 1 for i in range(32) if word & (1 << (31 - i))]


def encode_supported(base: int, pids: Iterable[int]) -> bytes:
    """The 4-byte bitmap for ``base`` covering ``pids`` (and the next range's support PID if listed)."""
    word = 0
    for p in pids:
        if base < p <= base + 32:
            word |= 1 << (31 - (p - base - 1))
    return word.to_bytes(4, "big")


def pid_request(*pids: int) -> bytes:
    """``01 PID [PID ...]`` (up to six PIDs per request on CAN)."""
    if not 1 <= len(pids) <= 6:
        raise DataFormatError("OBD request", f"service 01 takes 1 to 6 PIDs, got {len(pids)}")
    return bytes([SERVICE_CURRENT_DATA, *pids])


def decode_pid_response(payload: bytes, where: str = "OBD response") -> list[PidValue]:
    """Decode ``41 PID data [PID data ...]``. Unknown PIDs raise (their length is unknown)."""
    if not payload or payload[0] != SERVICE_CURRENT_DATA + POSITIVE_OFFSET:
        raise DataFormatError(where, f"not a service 01 response: {payload.hex(' ') or '(empty)'}")
    out: list[PidValue] = []
    i = 1
    while i < len(payload):
        pid = payload[i]
        spec = PIDS.get(pid)
        if spec is None:
            raise DataFormatError(where, f"unknown PID 0x{pid:02X} at byte {i}; its length is not known")
        data = payload[i + 1:i + 1 + spec.length_bytes]
        if len(data) < spec.length_bytes:
            raise DataFormatError(
                where, f"PID 0x{pid:02X} ({spec.name}) needs {spec.length_bytes} data bytes, got {len(data)}")
        out.append(PidValue(pid, spec.name, spec.decode(bytes(data)), spec.unit, bytes(data)))
        i += 1 + spec.length_bytes
    return out


def encode_pid_response(values: dict[int, bytes]) -> bytes:
    """``41 PID data ...`` from already-encoded PID data."""
    out = bytearray([SERVICE_CURRENT_DATA + POSITIVE_OFFSET])
    for pid, data in values.items():
        out += bytes([pid]) + data
    return bytes(out)


# --------------------------------------------------------------------------------- service 09
@dataclass(frozen=True)
class VehicleInfo:
    info_type: int
    items: tuple[str, ...]
    raw: bytes

    @property
    def text(self) -> str:
        return " ".join(self.items)


def vin_is_valid(vin: str) -> bool:
    """17 characters from the VIN alphabet (no I, O, Q)."""
    return len(vin) == 17 and all(c.isalnum() and c not in "IOQ" for c in vin.upper())


def decode_vehicle_info(payload: bytes, where: str = "OBD response") -> VehicleInfo:
    """Decode ``49 infotype count data``. VIN (02) and ECU name (0A) are ASCII; NULs are dropped."""
    if len(payload) < 3 or payload[0] != SERVICE_VEHICLE_INFO + POSITIVE_OFFSET:
        raise DataFormatError(where, f"not a service 09 response: {payload.hex(' ')}")
    info_type, count, data = payload[1], payload[2], bytes(payload[3:])
    if count == 0:
        return VehicleInfo(info_type, (), data)
    item_len = {INFO_VIN: 17, INFO_CALIBRATION_ID: 16, INFO_ECU_NAME: 20}.get(info_type)
    if item_len is None:
        return VehicleInfo(info_type, (data.hex(),), data)
    if len(data) < item_len * count:
        if count == 1 and data:
            item_len = len(data)  # some ECUs send a shorter field; keep what is there
        else:
            raise DataFormatError(where, f"info type 0x{info_type:02X}: {count} items of {item_len} bytes "
                                         f"announced, {len(data)} bytes present")
    items = []
    for k in range(count):
        chunk = data[k * item_len:(k + 1) * item_len]
        text = chunk.replace(b"\x00", b"").decode("ascii", errors="replace").strip()
        items.append(text)
    return VehicleInfo(info_type, tuple(items), data)


def encode_vehicle_info(info_type: int, items: Iterable[str]) -> bytes:
    """``49 infotype count data`` with fields NUL-padded to their J1979 length."""
    items = list(items)
    item_len = {INFO_VIN: 17, INFO_CALIBRATION_ID: 16, INFO_ECU_NAME: 20}.get(info_type, 0)
    out = bytearray([SERVICE_VEHICLE_INFO + POSITIVE_OFFSET, info_type, len(items)])
    for it in items:
        raw = it.encode("ascii")
        if item_len:
            if len(raw) > item_len:
                raise DataFormatError(f"info type 0x{info_type:02X}", f"{it!r} longer than {item_len} bytes")
            raw = (b"\x00" * (item_len - len(raw)) + raw) if info_type == INFO_VIN else raw.ljust(item_len, b"\x00")
        out += raw
    return bytes(out)
