"""Loads the compiled C front end and checks that it matches the header it was built from."""

from __future__ import annotations

from edge_assistant.core.errors import NativeError

try:
    from edge_assistant._native._frontend import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise NativeError(
        "the C audio front end (edge_assistant._native._frontend) is not built: "
        "run `pip install -e .` (or `make`) to compile it"
    ) from exc

#: The ABI version this Python code was written against (EA_ABI_VERSION in native/include/ea/frontend.h).
EXPECTED_ABI_VERSION = 2

if lib.ea_abi_version() != EXPECTED_ABI_VERSION:  # pragma: no cover - stale build
    raise NativeError(
        f"stale build of the C front end: library ABI {lib.ea_abi_version()}, "
        f"Python expects {EXPECTED_ABI_VERSION}; rebuild with `pip install -e .`"
    )


def check(rc: int, what: str) -> int:
    """Turn a negative EA_* return code into a NativeError naming the call; pass others through."""
    if rc < 0:
        raise NativeError(f"{what} failed: {ffi.string(lib.ea_strerror(rc)).decode()} (code {rc})")
    return rc


__all__ = ["ffi", "lib", "check", "EXPECTED_ABI_VERSION"]
