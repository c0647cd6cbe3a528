"""Property-based tests of DTC tables and codes: any file or code gives an explanation or a DataFormatError.

A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics import dtc

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_ENTRY = st.fixed_dictionaries({}, optional={"title": _JSON | st.text(max_size=20), "action": _JSON,
                                             "severity": st.sampled_from([*dtc.SEVERITIES, "apocalyptic", 3])})
_TABLE = st.fixed_dictionaries({}, optional={
    "codes": st.dictionaries(st.sampled_from(["P1234", "P1234-87", "U0146", "junk"]), _ENTRY, max_size=4) | _JSON,
    "modules": st.dictionaries(st.sampled_from(["0x7E8", "0x7EC"]), _JSON, max_size=2) | _JSON,
    "manufacturer": _JSON, "vehicle": _JSON})
_FILE = st.one_of(_TABLE.map(lambda t: json.dumps(t).encode()), _JSON.map(lambda t: json.dumps(t).encode()),
                  st.binary(max_size=200), _TABLE.map(lambda t: json.dumps(t).encode("utf-16")))
_CODE = st.one_of(st.sampled_from(["P1234", "P1234-87", "C1614(87)", "U0146", "B1A2B3C"]), st.text(max_size=10))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_FILE, code=_CODE, status=st.none() | st.integers(0, 255))
def test_any_vehicle_table_explains_or_raises_data_format_error(tmp_path, content: bytes, code: str,
                                                                status: int | None) -> None:
    path = tmp_path / "car.json"
    path.write_bytes(content)
    dtc.vehicle_table.cache_clear()  # the same path holds a new table each example
    try:
        e = dtc.explain(code, status, vehicle=str(path))
        module = dtc.module_name(str(path), 0x7E8)
    except DataFormatError as exc:
        assert exc.where and exc.reason
        return
    assert e.severity in dtc.SEVERITIES and e.text
    assert module is None or isinstance(module, (str, int, float, bool, list, dict))


@settings(max_examples=EXAMPLES, deadline=None)
@given(code=_CODE)
def test_any_code_explains_or_raises_data_format_error(code: str) -> None:
    try:
        e = dtc.explain(code)
    except DataFormatError as exc:
        assert code[:20] in str(exc) or "DTC" in exc.where
        return
    assert e.base_code[0] in "PCBU" and e.severity in dtc.SEVERITIES
