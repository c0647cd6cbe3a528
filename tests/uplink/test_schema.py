"""The uplink message schema: valid messages, clear errors, topics, and the JSON Schema document."""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from typing import Any

import pytest

from edge_assistant.uplink import schema

GOOD: dict[str, dict[str, Any]] = {
    "dtc": {"ecu": "0x7E4", "code": "P0AA6", "change": "appeared", "status": 9, "mil": True,
            "description": "hybrid/EV battery isolation fault"},
    "health": {"uptime_s": 3600.5, "software_version": "1.1.0", "cpu_temp_c": 61.2, "load_1m": 0.8,
               "mem_available_mb": 812, "disk_free_mb": 5000, "can_error_frames": 0, "uplink_queued": 3,
               "uplink_dropped": 0},
    "trip": {"trip_id": "2026-05-09T08:00Z", "start_ts_s": 1_790_000_000, "end_ts_s": 1_790_001_800,
             "distance_km": 31.4, "energy_kwh": 5.1, "avg_speed_kmh": 62.8, "consumption_kwh_per_100km": 16.2,
             "soc_start_pct": 80, "soc_end_pct": 73.5},
}


@pytest.mark.parametrize("kind", schema.KINDS)
def test_messages_of_every_kind_round_trip(kind: str) -> None:
    msg = schema.make_message(kind, "car-0042", GOOD[kind], ts_s=1_790_000_000.25, msg_id="abc-1")
    payload = schema.encode(msg)
    assert schema.decode(payload) == msg
    assert payload == json.dumps(msg, separators=(",", ":"), sort_keys=True).encode()
    assert msg["schema"] == schema.SCHEMA_VERSION == 1
    assert schema.topic_for("fleet", "car-0042", kind) == f"fleet/car-0042/{kind}"


def test_default_ids_are_unique_and_time_is_now() -> None:
    a = schema.make_message("health", "car-1", {"uptime_s": 1})
    b = schema.make_message("health", "car-1", {"uptime_s": 1})
    assert a["id"] != b["id"] and abs(a["ts_s"] - b["ts_s"]) < 60


@pytest.mark.parametrize(("kind", "data", "where", "says"), [
    ("dtc", {"ecu": "0x7E4", "code": "P0AA6"}, "dtc.data.change", "missing required field"),
    ("dtc", {"ecu": "0x7E4", "code": "P0AA", "change": "appeared"}, "dtc.data.code", "does not match"),
    ("dtc", {"ecu": "0x7E4", "code": "P0AA6", "change": "new"}, "dtc.data.change", "expected one of"),
    ("dtc", {"ecu": "0x7E4", "code": "P0AA6", "change": "appeared", "status": 256}, "dtc.data.status", "maximum"),
    ("dtc", {"ecu": "0x7E4", "code": "P0AA6", "change": "appeared", "status": True}, "dtc.data.status",
     "expected integer"),
    ("health", {"uptime_s": "10"}, "health.data.uptime_s", "expected number"),
    ("health", {"uptime_s": math.nan}, "health.data.uptime_s", "not a finite number"),
    ("health", {"uptime_s": 1, "uptime": 2}, "health.data", "unknown field(s) ['uptime']"),
    ("trip", {"trip_id": "t", "start_ts_s": 10, "end_ts_s": 5, "distance_km": 1}, "trip.data.end_ts_s", "before"),
])
def test_bad_data_names_the_field(kind: str, data: dict, where: str, says: str) -> None:
    with pytest.raises(schema.SchemaError) as err:
        schema.make_message(kind, "car-1", data)
    assert err.value.where == where
    assert says in err.value.reason
    assert str(err.value).startswith(where + ": ")


def test_bad_envelopes_are_refused() -> None:
    good = schema.make_message("health", "car-1", {"uptime_s": 1}, msg_id="x")
    for change, where in [({"schema": 2}, "schema"), ({"schema": True}, "schema"), ({"kind": "gps"}, "kind"),
                          ({"id": "a b"}, "health.id"), ({"vehicle_id": "car/1"}, "vehicle_id"),
                          ({"ts_s": -1}, "health.ts_s"), ({"data": []}, "health.data"), ({"extra": 1}, "message")]:
        with pytest.raises(schema.SchemaError) as err:
            schema.validate({**good, **change})
        assert err.value.where == where, change
    with pytest.raises(schema.SchemaError, match="not JSON"):
        schema.decode(b"{nope")


def test_oversized_payload_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "MAX_PAYLOAD_BYTES", 100)
    with pytest.raises(schema.SchemaError, match="at most 100"):
        schema.encode(schema.make_message("dtc", "car-1", GOOD["dtc"]))


@pytest.mark.parametrize("prefix", ["", "/fleet", "fleet/", "fleet//x", "fleet/+", "fleet/#", "$SYS", "a b"])
def test_topic_prefixes_that_are_not_plain_levels_are_refused(prefix: str) -> None:
    with pytest.raises(schema.SchemaError, match="topic_prefix"):
        schema.topic_for(prefix, "car-1", "dtc")


def test_topic_levels() -> None:
    assert schema.topic_for("acme/ev.fleet", "VIN_5YJ3E1EA7KF", "trip") == "acme/ev.fleet/VIN_5YJ3E1EA7KF/trip"
    for vid in ("", "car+1", "car#", "car/1", "x" * 65):
        with pytest.raises(schema.SchemaError, match="vehicle_id"):
            schema.topic_for("fleet", vid, "dtc")


# -- the JSON Schema document agrees with validate() -------------------------------------------------------

def _js_valid(s: dict, v: Any) -> bool:
    """A small evaluator of the JSON Schema subset json_schema() uses (no dependency on jsonschema)."""
    if "const" in s and v != s["const"]:
        return False
    if "enum" in s and v not in s["enum"]:
        return False
    t = s.get("type")
    types = {"object": dict, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if t and (not isinstance(v, types[t]) or (t in ("integer", "number") and isinstance(v, bool))):
        return False
    if t in ("integer", "number") and "minimum" in s and v < s["minimum"]:
        return False
    if t in ("integer", "number") and "maximum" in s and v > s["maximum"]:
        return False
    if t == "string" and ("pattern" in s and not re.search(s["pattern"], v) or len(v) > s.get("maxLength", 1e9)):
        return False
    if isinstance(v, dict):  # object keywords apply to any object, with or without "type"
        props = s.get("properties", {})
        if any(k not in v for k in s.get("required", [])):
            return False
        if s.get("additionalProperties") is False and set(v) - set(props):
            return False
        if not all(_js_valid(props[k], v[k]) for k in v if k in props):
            return False
    for branch in s.get("allOf", []):
        if _js_valid(branch["if"], v) and not _js_valid(branch["then"], v):
            return False
    return True


def test_json_schema_document_agrees_with_validate() -> None:
    doc = schema.json_schema()
    assert doc["properties"]["schema"]["const"] == 1
    json.dumps(doc)
    cases = [schema.make_message(k, "car-1", GOOD[k], msg_id="m1") for k in schema.KINDS]
    bad = [
        {**cases[0], "data": {**GOOD["dtc"], "code": "X0000"}},
        {**cases[0], "data": {**GOOD["dtc"], "status": -1}},
        {**cases[1], "data": {"uptime_s": 1, "bogus": 1}},
        {**cases[1], "data": {"cpu_temp_c": 40}},
        {**cases[2], "data": {**GOOD["trip"], "soc_end_pct": 101}},
        {**cases[2], "kind": "nope"},
        {**cases[2], "schema": 2},
    ]
    for msg in cases:
        assert _js_valid(doc, msg)
    for msg in bad:
        with pytest.raises(schema.SchemaError):
            schema.validate(msg)
        assert not _js_valid(doc, msg), msg


def test_shipped_schema_file_is_current() -> None:
    shipped = json.loads(resources.files("edge_assistant.uplink").joinpath("message-schema-v1.json").read_text())
    assert shipped == schema.json_schema(), (
        "edge_assistant/uplink/message-schema-v1.json is stale; regenerate it with: python -c \"import json; "
        "from edge_assistant.uplink.schema import json_schema; print(json.dumps(json_schema(), indent=2))\" "
        "> edge_assistant/uplink/message-schema-v1.json")
