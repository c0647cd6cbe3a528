"""The fleet uplink's message schema (version 1), topics and validation. Pure: no I/O.

Every message is one JSON object (UTF-8, compact, keys sorted)::

    {"schema": 1, "kind": "dtc", "id": "5f0c...", "vehicle_id": "car-0042", "ts_s": 1790000000.25,
     "data": {"ecu": "0x7E4", "code": "P0AA6", "change": "appeared", "status": 9, "mil": true}}

``id`` is unique per message and stays the same when a message is sent again: delivery is MQTT QoS 1
(at least once), so a subscriber may see a message twice and must dedupe on ``id``. Messages go to
``<prefix>/<vehicle_id>/<kind>``. ``json_schema()`` returns the same rules as a JSON Schema document;
``validate()`` checks an outgoing message and raises ``SchemaError`` naming the field.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from edge_assistant.core.errors import DataFormatError

__all__ = [
    "KINDS", "MAX_PAYLOAD_BYTES", "PRIORITY", "SCHEMA_VERSION", "SchemaError",
    "check_topic_prefix", "check_vehicle_id", "decode", "encode", "json_schema", "make_message", "topic_for",
    "validate",
]

SCHEMA_VERSION = 1

#: Largest encoded message accepted (bytes). Real messages are a few hundred bytes.
MAX_PAYLOAD_BYTES = 16 * 1024

#: Drop priority per kind, lowest dropped first when the queue is full: health reports are periodic and
#: superseded by the next one; a trip summary is sent once per trip; a DTC change is what the fleet needs most.
PRIORITY: dict[str, int] = {"health": 0, "trip": 1, "dtc": 2}

KINDS: tuple[str, ...] = ("dtc", "health", "trip")

_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_VEHICLE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LEVEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DTC_RE = r"^[PCBU][0-3][0-9A-F]{3}(-[0-9A-F]{2})?$"


class SchemaError(DataFormatError):
    """An outgoing message does not follow the schema; ``where`` names the kind and field."""


@dataclass(frozen=True)
class _Field:
    type: str  # JSON type: "string", "integer", "number" or "boolean"
    doc: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    max_length: int | None = None


#: Field table of each kind's ``data`` object (unknown fields are refused, so a typo fails here, not in the fleet).
DATA_FIELDS: dict[str, dict[str, _Field]] = {
    "dtc": {
        "ecu": _Field("string", "ECU that reported the code: response CAN id (\"0x7E8\") or module name",
                      required=True, max_length=64),
        "code": _Field("string", "SAE J2012 code with optional failure-type byte: P0AA6, C1614-87",
                       required=True, pattern=_DTC_RE),
        "change": _Field("string", "what changed: the code appeared, its status changed, or it was cleared",
                         required=True, enum=("appeared", "changed", "cleared")),
        "status": _Field("integer", "UDS DTC status byte (ISO 14229-1 D.2) after the change", minimum=0, maximum=255),
        "mil": _Field("boolean", "the malfunction indicator lamp is requested"),
        "description": _Field("string", "plain-language meaning, when known", max_length=200),
    },
    "health": {
        "uptime_s": _Field("number", "seconds since the assistant started", required=True, minimum=0),
        "software_version": _Field("string", "installed release version", max_length=64),
        "cpu_temp_c": _Field("number", "SoC temperature in degrees Celsius", minimum=-60, maximum=150),
        "load_1m": _Field("number", "1-minute load average", minimum=0),
        "mem_available_mb": _Field("number", "available memory in MiB", minimum=0),
        "disk_free_mb": _Field("number", "free space on the data partition in MiB", minimum=0),
        "can_error_frames": _Field("integer", "CAN error frames counted since start", minimum=0),
        "uplink_queued": _Field("integer", "messages waiting in the uplink queue", minimum=0),
        "uplink_dropped": _Field("integer", "messages the uplink queue dropped (bound reached), ever", minimum=0),
    },
    "trip": {
        "trip_id": _Field("string", "unique id of the trip", required=True, pattern=_ID_RE.pattern),
        "start_ts_s": _Field("number", "trip start, Unix time in seconds", required=True, minimum=0),
        "end_ts_s": _Field("number", "trip end, Unix time in seconds (>= start_ts_s)", required=True, minimum=0),
        "distance_km": _Field("number", "distance driven in km", required=True, minimum=0),
        "energy_kwh": _Field("number", "net traction energy in kWh (negative when regeneration won)"),
        "avg_speed_kmh": _Field("number", "average speed while moving in km/h", minimum=0),
        "consumption_kwh_per_100km": _Field("number", "energy use per 100 km"),
        "soc_start_pct": _Field("number", "state of charge at the start in %", minimum=0, maximum=100),
        "soc_end_pct": _Field("number", "state of charge at the end in %", minimum=0, maximum=100),
    },
}

_ENVELOPE_DOC = {
    "schema": "schema version; 1 for this document",
    "kind": "message kind, also the last topic level",
    "id": "unique message id; kept when the message is re-sent, so subscribers dedupe on it",
    "vehicle_id": "vehicle id, also the topic level after the prefix",
    "ts_s": "when the event happened, Unix time in seconds (UTC)",
    "data": "the kind's fields",
}


def check_vehicle_id(vehicle_id: str) -> str:
    """Return ``vehicle_id`` when it is usable as one topic level (letters, digits, ``_``, ``-``)."""
    if not isinstance(vehicle_id, str) or not _VEHICLE_RE.match(vehicle_id):
        raise SchemaError("vehicle_id", f"{vehicle_id!r}: expected 1-64 of A-Z a-z 0-9 _ - "
                                        "(no '/', '+', '#': it is a topic level)")
    return vehicle_id


def check_topic_prefix(prefix: str) -> str:
    """Return ``prefix`` when it is one or more plain topic levels (``fleet``, ``acme/ev``)."""
    levels = prefix.split("/") if isinstance(prefix, str) else [""]
    if not all(_LEVEL_RE.match(level) for level in levels):
        raise SchemaError("topic_prefix", f"{prefix!r}: expected levels of A-Z a-z 0-9 _ . - joined by '/' "
                                          "(no wildcards, no empty level, no leading '$' or '/')")
    return prefix


def topic_for(prefix: str, vehicle_id: str, kind: str) -> str:
    """``<prefix>/<vehicle_id>/<kind>``, e.g. ``fleet/car-0042/dtc``."""
    if kind not in KINDS:
        raise SchemaError("kind", f"{kind!r}: expected one of {list(KINDS)}")
    return f"{check_topic_prefix(prefix)}/{check_vehicle_id(vehicle_id)}/{kind}"


def make_message(kind: str, vehicle_id: str, data: dict[str, Any], *, ts_s: float | None = None,
                 msg_id: str | None = None) -> dict[str, Any]:
    """Build and validate one message; ``ts_s`` defaults to now, ``msg_id`` to a random UUID."""
    msg = {"schema": SCHEMA_VERSION, "kind": kind, "id": msg_id if msg_id is not None else uuid.uuid4().hex,
           "vehicle_id": vehicle_id, "ts_s": time.time() if ts_s is None else ts_s, "data": dict(data)}
    validate(msg)
    return msg


def _check_value(where: str, value: Any, f: _Field) -> None:
    if f.type == "boolean":
        ok = isinstance(value, bool)
    elif f.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif f.type == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise SchemaError(where, f"{value!r} is not a finite number (JSON has no NaN or infinity)")
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SchemaError(where, f"{value!r} is {type(value).__name__}, expected {f.type}")
    if f.minimum is not None and value < f.minimum:
        raise SchemaError(where, f"{value!r} is below the minimum {f.minimum:g}")
    if f.maximum is not None and value > f.maximum:
        raise SchemaError(where, f"{value!r} is above the maximum {f.maximum:g}")
    if f.enum is not None and value not in f.enum:
        raise SchemaError(where, f"{value!r}: expected one of {list(f.enum)}")
    if f.pattern is not None and not re.match(f.pattern, value):
        raise SchemaError(where, f"{value!r} does not match {f.pattern}")
    if f.max_length is not None and len(value) > f.max_length:
        raise SchemaError(where, f"{len(value)} characters, at most {f.max_length}")


def validate(msg: Any) -> None:
    """Check one message against schema 1; raise ``SchemaError`` naming the first bad field."""
    if not isinstance(msg, dict):
        raise SchemaError("message", f"expected a JSON object, got {type(msg).__name__}")
    missing = [k for k in _ENVELOPE_DOC if k not in msg]
    extra = sorted(set(msg) - set(_ENVELOPE_DOC))
    if missing or extra:
        raise SchemaError("message", f"missing {missing} / unknown {extra}; expected exactly {list(_ENVELOPE_DOC)}")
    if type(msg["schema"]) is not int or msg["schema"] != SCHEMA_VERSION:
        raise SchemaError("schema", f"{msg['schema']!r}: this code writes schema {SCHEMA_VERSION}")
    kind = msg["kind"]
    if kind not in KINDS:
        raise SchemaError("kind", f"{kind!r}: expected one of {list(KINDS)}")
    if not isinstance(msg["id"], str) or not _ID_RE.match(msg["id"]):
        raise SchemaError(f"{kind}.id", f"{msg['id']!r}: expected 1-64 of A-Z a-z 0-9 . _ : -")
    check_vehicle_id(msg["vehicle_id"])
    _check_value(f"{kind}.ts_s", msg["ts_s"], _Field("number", "", minimum=0))
    data = msg["data"]
    if not isinstance(data, dict):
        raise SchemaError(f"{kind}.data", f"expected an object, got {type(data).__name__}")
    fields = DATA_FIELDS[kind]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SchemaError(f"{kind}.data", f"unknown field(s) {unknown}; known: {sorted(fields)}")
    for name, f in fields.items():
        if name in data:
            _check_value(f"{kind}.data.{name}", data[name], f)
        elif f.required:
            raise SchemaError(f"{kind}.data.{name}", f"missing required field ({f.doc})")
    if kind == "trip" and data["end_ts_s"] < data["start_ts_s"]:
        raise SchemaError("trip.data.end_ts_s", f"{data['end_ts_s']!r} is before start_ts_s {data['start_ts_s']!r}")


def encode(msg: dict[str, Any]) -> bytes:
    """Validate and serialise one message (compact JSON, sorted keys, UTF-8)."""
    validate(msg)
    payload = json.dumps(msg, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                         allow_nan=False).encode("utf-8")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SchemaError(f"{msg['kind']}.data", f"encoded message is {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}")
    return payload


def decode(payload: bytes) -> dict[str, Any]:
    """Parse and validate one received message (for subscribers and tests)."""
    try:
        msg = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError("message", f"not JSON: {exc}") from exc
    validate(msg)
    return msg


def _field_schema(f: _Field) -> dict[str, Any]:
    out: dict[str, Any] = {"type": f.type, "description": f.doc}
    for key, value in (("minimum", f.minimum), ("maximum", f.maximum), ("pattern", f.pattern),
                       ("maxLength", f.max_length)):
        if value is not None:
            out[key] = value
    if f.enum is not None:
        out["enum"] = list(f.enum)
    return out


def json_schema() -> dict[str, Any]:
    """The schema as a JSON Schema (draft 2020-12) document, built from the same table ``validate`` uses."""
    variants = []
    for kind in KINDS:
        fields = DATA_FIELDS[kind]
        variants.append({
            "if": {"properties": {"kind": {"const": kind}}},
            "then": {"properties": {"data": {
                "type": "object", "additionalProperties": False,
                "required": [n for n, f in fields.items() if f.required],
                "properties": {n: _field_schema(f) for n, f in fields.items()},
            }}},
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"edge-assistant/uplink/v{SCHEMA_VERSION}",
        "title": "edge-assistant fleet uplink message",
        "type": "object",
        "additionalProperties": False,
        "required": list(_ENVELOPE_DOC),
        "properties": {
            "schema": {"const": SCHEMA_VERSION, "description": _ENVELOPE_DOC["schema"]},
            "kind": {"enum": list(KINDS), "description": _ENVELOPE_DOC["kind"]},
            "id": {"type": "string", "pattern": _ID_RE.pattern, "description": _ENVELOPE_DOC["id"]},
            "vehicle_id": {"type": "string", "pattern": _VEHICLE_RE.pattern,
                           "description": _ENVELOPE_DOC["vehicle_id"]},
            "ts_s": {"type": "number", "minimum": 0, "description": _ENVELOPE_DOC["ts_s"]},
            "data": {"type": "object", "description": _ENVELOPE_DOC["data"]},
        },
        "allOf": variants,
    }
