"""The JSON files the package ships (VSS mapping, DTC tables, wake-word manifests), damaged byte by byte, and
hostile names where a file name or a shipped name is expected.

Each loader gives a result or its own project error naming the file or name (ConfigError/DataFormatError
for mappings, DataFormatError for DTC tables, ModelFileError for manifests): never OSError, ValueError or
UnicodeDecodeError. A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the
nightly run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import ConfigError, DataFormatError, ModelFileError
from edge_assistant.diagnostics import dtc
from edge_assistant.vehicle.vss import load_mapping
from edge_assistant.wakeword.manifest import load_manifest

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
PKG = Path(__file__).resolve().parents[1] / "edge_assistant"
#: kind -> (shipped files, loader of a path, the errors it may raise)
KINDS = {
    "mapping": (sorted((PKG / "vehicle" / "demo").glob("*.json")), load_mapping, (ConfigError, DataFormatError)),
    "dtc": ([PKG / "diagnostics/data/generic_dtcs.json", *sorted((PKG / "diagnostics/data/vehicles").glob("*.json"))],
            lambda p: dtc.vehicle_table.__wrapped__(str(p)), (DataFormatError,)),
    "manifest": (sorted((PKG / "wakeword" / "manifests").glob("*.json")), load_manifest, (ModelFileError,)),
}
_INSERTS = [b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b'"', b"{", b"}", b"[", b",", b":", b"\\", b"\\u0000",
            b"\\ud800", b"1e999", b"NaN", b"-Infinity", b"9" * 5000, b"[" * 5000, b"null", b"../"]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.35 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.75:
            buf[at:at] = rng.choice(_INSERTS)
        else:
            del buf[at:at + rng.choice([1, 4, 30, 300])]
    return bytes(buf)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(KINDS)), pick=st.integers(0, 100), seed=st.integers(0, 2**32))
def test_damaged_shipped_json_loads_or_raises_the_loaders_error(tmp_path: Path, kind: str, pick: int,
                                                               seed: int) -> None:
    files, load, errors = KINDS[kind]
    src = files[pick % len(files)]
    path = tmp_path / src.name
    path.write_bytes(_mutate(src.read_bytes(), random.Random(seed)))
    try:
        load(path)
    except errors as exc:
        assert str(path) in str(exc)


_NAME = st.one_of(st.text(max_size=40), st.sampled_from(["alexa", "kona_ev", "demo_ev", "../kona_ev", "/etc/passwd",
                                                         "..", ".", "", "a\x00b", "x.json", "x.onnx"]),
                  st.integers(255, 5000).map(lambda n: "x" * n),
                  st.integers(255, 5000).map(lambda n: "x" * n + ".json"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(name=_NAME)
def test_any_name_gives_a_table_and_manifest_or_their_errors(name: str) -> None:
    try:
        dtc.vehicle_table.__wrapped__(name)
    except DataFormatError as exc:
        assert exc.where and exc.reason
    try:
        load_manifest(name)
    except ModelFileError as exc:
        assert exc.path and exc.reason


@pytest.mark.parametrize("name", ["x" * 5000, "x" * 5000 + ".json", "../vehicles/kona_ev"])
def test_names_too_long_for_the_file_system_or_with_a_path_are_project_errors(name: str) -> None:
    """Regression: a name of 5,000 characters raised OSError (ENAMETOOLONG) from ``Path.exists``/``is_file``
    in both loaders; a DTC table name with ``../`` was looked up on disk outside the shipped folder."""
    with pytest.raises(DataFormatError):
        dtc.vehicle_table.__wrapped__(name)
    with pytest.raises(ModelFileError):
        load_manifest(name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_integer_of_5000_digits_is_the_loaders_error(tmp_path: Path, kind: str) -> None:
    """Regression (found by the nightly-size run): ``json.loads`` refuses integers over 4,300 digits with a
    plain ValueError, which escaped the mapping and DTC table loaders."""
    files, load, errors = KINDS[kind]
    path = tmp_path / files[0].name
    path.write_bytes(files[0].read_bytes().replace(b"{", b'{"big": ' + b"9" * 5000 + b", ", 1))
    with pytest.raises(errors, match="digits"):
        load(path)
