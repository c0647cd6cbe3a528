"""Trouble-code explanations, layered from the most to the least specific source:

1. a per-vehicle table (JSON shipped in ``diagnostics/data/vehicles/`` or any file the user gives);
2. a table of generic (SAE-controlled) codes written for this project (``data/generic_dtcs.json``);
3. the SAE J2012 structure of the code itself: system letter, generic vs manufacturer-specific,
   subsystem digit, and the failure-type byte of a 3-byte UDS code;
4. the honest fallback: "manufacturer-specific code, status confirmed/pending/..." with no invented
   meaning.

Every explanation carries a severity, how urgent it is and what to do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics.obd import DTC_LETTERS
from edge_assistant.diagnostics.uds import DtcStatus

log = logging.getLogger(__name__)

SEVERITIES = ("info", "low", "moderate", "high", "critical")
URGENCY = {
    "info": "no action needed",
    "low": "check at the next service",
    "moderate": "book a workshop visit within the next days",
    "high": "drive gently and get it checked today or as soon as possible",
    "critical": "stop safely as soon as you can",
}

SYSTEMS = {"P": "powertrain", "C": "chassis", "B": "body", "U": "network/communication"}

# Subsystem (third character) of SAE-controlled powertrain codes (J2012 groups).
_P_GENERIC_GROUPS = {
    "0": "fuel and air metering, auxiliary emission controls",
    "1": "fuel and air metering",
    "2": "fuel and air metering",
    "3": "ignition system or misfire",
    "4": "auxiliary emission controls",
    "5": "vehicle speed, idle control and auxiliary inputs",
    "6": "computer and output circuits",
    "7": "transmission",
    "8": "transmission",
    "9": "transmission",
    "A": "hybrid/electric propulsion",
    "B": "hybrid/electric propulsion",
    "C": "hybrid/electric propulsion",
    "D": "hybrid/electric propulsion and charging",
    "E": "hybrid/electric propulsion and fuel cell",
    "F": "hybrid/electric propulsion",
}
_U_GENERIC_GROUPS = {
    "0": "network electrical (bus wiring, bus off)",
    "1": "lost communication with a module",
    "2": "lost communication with a module",
    "3": "software or configuration mismatch between modules",
    "4": "invalid data received from a module",
}

# J2012-DA failure-type byte (low byte of a 3-byte UDS DTC): our short wording.
FAILURE_TYPES = {
    0x00: None,
    0x01: "general electrical failure",
    0x08: "bus signal or message failure",
    0x11: "circuit short to ground",
    0x12: "circuit short to battery",
    0x13: "circuit open",
    0x16: "circuit voltage below threshold",
    0x17: "circuit voltage above threshold",
    0x1C: "circuit voltage out of range",
    0x29: "signal invalid",
    0x31: "no signal",
    0x49: "internal electronic failure",
    0x4B: "over temperature",
    0x51: "not programmed",
    0x52: "not activated",
    0x54: "missing calibration",
    0x55: "not configured",
    0x62: "signal compare failure",
    0x64: "signal plausibility failure",
    0x71: "actuator stuck",
    0x81: "invalid serial data received",
    0x82: "alive / sequence counter incorrect",
    0x83: "message protection (checksum) incorrect",
    0x86: "signal invalid",
    0x87: "missing message",
    0x88: "bus off",
    0x92: "performance or incorrect operation",
    0x96: "component internal failure",
    0x97: "component or system operation obstructed or blocked",
    0x98: "component or system over temperature",
}


@dataclass(frozen=True)
class CodeStructure:
    """What the code's shape alone says (SAE J2012)."""

    code: str
    system: str
    generic: bool
    group: str | None

    @property
    def origin(self) -> str:
        return "generic (SAE-defined)" if self.generic else "manufacturer-specific"


@dataclass(frozen=True)
class DtcExplanation:
    code: str                  # as given, e.g. "U0146" or "C1614-87"
    base_code: str             # the 2-byte part, "C1614"
    title: str
    system: str
    origin: str
    source: str                # which layer answered: "vehicle:kona_ev", "generic table", "code structure"
    severity: str
    urgency: str
    action: str
    failure_type: str | None = None
    status: str | None = None  # plain-language status summary
    status_flags: tuple[str, ...] = ()
    module: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """One paragraph for a person."""
        parts = [f"{self.code}: {self.title}"]
        if self.failure_type:
            parts[0] += f" ({self.failure_type})"
        parts[0] += "."
        if self.module:
            parts.append(f"Reported by the {self.module}.")
        if self.status:
            parts.append(f"Status: {self.status}.")
        parts.append(f"Severity {self.severity}: {self.urgency}. {self.action}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()} | {"text": self.text}


def parse_code(code: str) -> tuple[str, int | None]:
    """``C1614-87`` / ``C1614(87)`` / ``C161487`` / ``U0146`` -> (``C1614``, 0x87 or None)."""
    c = code.strip().upper().replace("(", "-").replace(")", "")
    failure: int | None = None
    if "-" in c:
        c, _, ft = c.partition("-")
        try:
            failure = int(ft, 16)
        except ValueError as exc:
            raise DataFormatError(f"DTC {code!r}", "failure type after '-' must be two hex digits") from exc
    elif len(c) == 7:
        c, failure = c[:5], int(c[5:], 16) if all(ch in "0123456789ABCDEF" for ch in c[5:]) else None
    if len(c) != 5 or c[0] not in DTC_LETTERS or c[1] not in "0123" \
            or any(ch not in "0123456789ABCDEF" for ch in c[2:]):
        raise DataFormatError(f"DTC {code!r}", "expected P/C/B/U, a digit 0-3, three hex digits and an optional "
                                               "failure type (e.g. P0D59, C1614-87)")
    return c, failure


def structure(code: str) -> CodeStructure:
    base, _ = parse_code(code)
    letter, d1, d2 = base[0], base[1], base[2]
    if letter == "P":
        generic = d1 in "02" or (d1 == "3" and base[2] in "456789ABCDEF")
        group = _P_GENERIC_GROUPS.get(d2) if generic else None
    else:
        generic = d1 in "03"
        group = _U_GENERIC_GROUPS.get(d2) if letter == "U" and generic else None
    return CodeStructure(base, SYSTEMS[letter], generic, group)


#: Largest DTC table read (the shipped ones are under 10 kB); keeps a wrong path (a device, a huge file) out of memory.
MAX_TABLE_BYTES = 16 * 1024 * 1024


def _load_json(path: Path | str, label: str) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TABLE_BYTES + 1)
    except OSError as exc:
        raise DataFormatError(str(path), f"cannot read {label}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_TABLE_BYTES:
        raise DataFormatError(str(path), f"{label} larger than {MAX_TABLE_BYTES} bytes; expected a JSON table")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(path), f"byte 0x{raw[exc.start]:02X} at offset {exc.start} is not UTF-8; "
                                         f"expected a UTF-8 JSON {label}") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}:{exc.lineno}", f"{label} is not valid JSON: {exc.msg}") from exc
    except RecursionError:
        raise DataFormatError(str(path), f"{label} is nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise DataFormatError(str(path), f"{label}: {str(exc).split(';')[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("codes"), dict):
        raise DataFormatError(str(path), f"{label} needs an object with a 'codes' object")
    if not isinstance(data.get("modules", {}), dict):
        raise DataFormatError(f"{path}: modules", "must be an object of response id -> module name")
    for key, entry in data["codes"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            raise DataFormatError(f"{path}: codes.{key}", "each code needs at least a 'title' string")
        sev = entry.get("severity", "moderate")
        if sev not in SEVERITIES:
            raise DataFormatError(f"{path}: codes.{key}.severity", f"{sev!r} is not one of {SEVERITIES}")
    return data


def _data_dir() -> Path:
    return Path(str(resources.files("edge_assistant.diagnostics") / "data"))


@lru_cache(maxsize=1)
def generic_table() -> dict:
    return _load_json(_data_dir() / "generic_dtcs.json", "generic DTC table")["codes"]


def shipped_vehicles() -> list[str]:
    return sorted(p.stem for p in (_data_dir() / "vehicles").glob("*.json"))


@lru_cache(maxsize=16)
def vehicle_table(vehicle: str) -> dict:
    """A shipped vehicle (``kona_ev``, ``demo_ev``) or a path to a JSON file in the same layout."""
    p = Path(vehicle)
    if p.suffix != ".json":
        known = shipped_vehicles()
        if vehicle not in known:  # a name, never a path: "../x" or 5,000 characters do not reach the disk
            raise DataFormatError(f"vehicle {vehicle[:60]!r}", f"no DTC table; shipped: {', '.join(known)}")
        p = _data_dir() / "vehicles" / f"{vehicle}.json"
    return _load_json(p, "vehicle DTC table")


def _status_of(status: DtcStatus | int | None) -> DtcStatus | None:
    if status is None or isinstance(status, DtcStatus):
        return status
    return DtcStatus(int(status))


def explain(code: str, status: DtcStatus | int | None = None, vehicle: str | None = None,
            module: str | None = None) -> DtcExplanation:
    """Explain one code. ``status`` is the UDS status byte when known; ``vehicle`` a table name or path."""
    base, failure = parse_code(code)
    st = structure(base)
    status_obj = _status_of(status)
    failure_text = None if failure is None else FAILURE_TYPES.get(failure, f"failure type 0x{failure:02X}")
    common = {
        "code": code.strip().upper().replace("(", "-").replace(")", ""),
        "base_code": base, "system": st.system, "origin": st.origin, "failure_type": failure_text,
        "status": status_obj.summary if status_obj else None,
        "status_flags": status_obj.names if status_obj else (), "module": module,
    }
    entry, source = None, None
    if vehicle:
        table = vehicle_table(vehicle)
        codes = table["codes"]
        full = f"{base}-{failure:02X}" if failure is not None else None
        entry = (codes.get(full) if full else None) or codes.get(base)
        source = f"vehicle:{Path(vehicle).stem}"
    if entry is None:
        entry = generic_table().get(base)
        source = "generic table"
    if entry is not None:
        sev = entry.get("severity", "moderate")
        sev = _raise_for_status(sev, status_obj)
        return DtcExplanation(title=entry["title"], source=source, severity=sev, urgency=URGENCY[sev],
                              action=entry.get("action", "Have a workshop read the codes."), **common)
    # layer 3/4: structure and honest fallback
    if st.generic:
        title = f"generic {st.system} code" + (f" in the group '{st.group}'" if st.group else "")
        title += "; its exact meaning is not in our table"
    else:
        maker = ""
        if vehicle:
            maker = f" ({vehicle_table(vehicle).get('manufacturer', Path(vehicle).stem)})"
        title = f"manufacturer-specific {st.system} code{maker}; its meaning is defined by the manufacturer"
    sev = _severity_from_structure(st, status_obj)
    action = ("A workshop with the manufacturer's tool can tell what it means; note when it appeared and "
              "whether any warning lamp is on.")
    return DtcExplanation(title=title, source="code structure", severity=sev, urgency=URGENCY[sev], action=action,
                          **common)


def _severity_from_structure(st: CodeStructure, status: DtcStatus | None) -> str:
    sev = "moderate" if st.system in ("powertrain", "chassis") else "low"
    if status is not None:
        if status.warning_lamp and status.test_failed:
            sev = "high" if st.system in ("powertrain", "chassis") else "moderate"
        elif not status.test_failed and not status.pending and status.confirmed:
            sev = "low"  # stored history, not failing now
    return sev


def _raise_for_status(sev: str, status: DtcStatus | None) -> str:
    """An active fault with the warning lamp on is at least 'moderate'; a healed history code at most 'low'
    unless the table says critical."""
    if status is None:
        return sev
    i = SEVERITIES.index(sev)
    if status.warning_lamp and status.test_failed:
        i = max(i, SEVERITIES.index("moderate"))
    elif not status.test_failed and not (status.byte & 0x02) and sev != "critical":
        i = min(i, SEVERITIES.index("low"))
    return SEVERITIES[i]


def module_name(vehicle: str | None, response_id: int) -> str | None:
    """A per-vehicle name for the ECU answering on ``response_id``, if the table has one."""
    if not vehicle:
        return None
    return vehicle_table(vehicle).get("modules", {}).get(f"0x{response_id:03X}")
