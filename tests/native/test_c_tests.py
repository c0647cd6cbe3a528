"""Builds and runs the C tests of native/ (golden vectors, properties) so CI exercises them.

The slower sanitizer + valgrind run of the same tests is `make check-native`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import skip_unless_ci

NATIVE = Path(__file__).resolve().parents[2] / "native"


def test_c_unit_tests_pass() -> None:
    if shutil.which("make") is None or shutil.which("gcc") is None:
        skip_unless_ci("make/gcc not installed (the Makefile's system-deps installs them)")
    res = subprocess.run(["make", "-s", "-C", str(NATIVE), "test"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"C tests failed:\n{res.stdout}\n{res.stderr}"
    assert "0 failed" in res.stdout
