"""The device configuration under byte-level damage: the shipped example files with bits flipped, bytes
inserted (NUL, invalid UTF-8, a BOM, quotes, brackets) and stretches cut, as a power cut or a bad SD card
leaves them; and files far too large.

Any file loads or raises ConfigError naming the file (the text-level properties live in test_config.py).
A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.config import MAX_CONFIG_BYTES, load_config
from edge_assistant.core.errors import ConfigError

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
EXAMPLE_FILES = sorted((Path(__file__).resolve().parents[2] / "firmware" / "config").glob("*.toml"))
ENV = {"HOME": "/home/fuzz"}
_INSERTS = [b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b'"', b"'''", b"[", b"]]", b"=", b"\n", b"\r", b"#",
            b"\\u0000", b"1e400", b"9" * 5000, b"[" * 2000, b"{a=" * 500, b"\xed\xa0\x80"]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.35 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.7:
            buf[at:at] = rng.choice(_INSERTS)
        elif op < 0.85:
            buf[at:at] = rng.randbytes(rng.choice([1, 3, 16]))
        else:
            del buf[at:at + rng.choice([1, 5, 40, 400])]
    return bytes(buf)


def _load_or_config_error(path: Path) -> None:
    try:
        load_config(path, environ=ENV)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(EXAMPLE_FILES), seed=st.integers(0, 2**32))
def test_damaged_example_files_load_or_raise_config_error(tmp_path: Path, which: Path, seed: int) -> None:
    path = tmp_path / which.name
    path.write_bytes(_mutate(which.read_bytes(), random.Random(seed)))
    _load_or_config_error(path)


def test_a_file_larger_than_the_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """Regression: the whole file was read into memory, whatever its size (a path to /dev/zero never ends)."""
    path = tmp_path / "huge.toml"
    with open(path, "wb") as fh:
        fh.write(EXAMPLE_FILES[0].read_bytes())
        fh.write(b"#" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match=rf"^{path}: larger than {MAX_CONFIG_BYTES} bytes"):
        load_config(path, environ=ENV)
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match=f"larger than {MAX_CONFIG_BYTES} bytes"):
            load_config("/dev/zero", environ=ENV)


def test_a_package_path_too_long_for_the_file_system_is_a_config_error(tmp_path: Path) -> None:
    """Regression (found by the nightly-size run): ``package:`` + 5,000 characters raised OSError
    (ENAMETOOLONG) from ``Path.is_file`` instead of a ConfigError naming the key."""
    path = tmp_path / "long.toml"
    path.write_text(f'[vehicle]\ndbc = ["package:vehicle/demo/{"x" * 5000}.dbc"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: vehicle.dbc\[0\]: no file"):
        load_config(path, environ=ENV)
