"""Property-based tests of VSS mapping files: any file gives a mapping (that builds a decoder) or a named error.

A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.vehicle import DEMO_DBC
from edge_assistant.vehicle.codec import FrameDecoder
from edge_assistant.vehicle.dbc import load_dbc
from edge_assistant.vehicle.vss import load_mapping

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_NUMBER = st.one_of(st.floats(), st.integers(min_value=-(10**400), max_value=10**400), st.text(max_size=6), _JSON)
_SIGNAL = st.fixed_dictionaries(
    {"message": st.sampled_from(["BMS_Pack", "0x200", "512", "0x", "NoSuch"]) | _JSON,
     "signal": st.sampled_from(["PackVoltage", "SoC", "PackCurrent", "Nope"]) | _JSON,
     "vss": st.sampled_from(["Vehicle.Speed", "Vehicle.Powertrain.Range", "Speed"]) | _JSON},
    optional={"scale": _NUMBER, "offset": _NUMBER, "unit": _JSON,
              "enum": st.dictionaries(st.text(max_size=4), _JSON, max_size=3) | _JSON})
_MAPPING = st.fixed_dictionaries({"signals": st.lists(_SIGNAL, max_size=4) | _JSON},
                                 optional={"vss_version": st.sampled_from(["4.0", "4.1", "3.0"]) | _JSON,
                                           "vehicle": _JSON})
_FILE = st.one_of(_MAPPING.map(lambda m: json.dumps(m).encode()), _JSON.map(lambda m: json.dumps(m).encode()),
                  st.binary(max_size=200), st.just(b"[" * 100_000))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_FILE, frame=st.binary(max_size=12))
def test_any_mapping_file_decodes_or_raises_a_named_error(tmp_path, content: bytes, frame: bytes) -> None:
    path = tmp_path / "car_vss.json"
    path.write_bytes(content)
    try:
        mapping = load_mapping(path)
    except (ConfigError, DataFormatError) as exc:
        assert str(path) in str(exc)
        return
    dec = FrameDecoder([load_dbc(DEMO_DBC)], mapping)
    values = dec.decode_frame(0x200, frame)
    assert set(values) <= {s.vss_path for s in mapping.signals}
