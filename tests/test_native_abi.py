"""The compiled C front end loads and matches the header it was built from."""

from __future__ import annotations

from edge_assistant import _native


def test_abi_version_matches() -> None:
    assert _native.lib.ea_abi_version() == _native.EXPECTED_ABI_VERSION


def test_error_codes_become_exceptions() -> None:
    import pytest

    from edge_assistant.core.errors import NativeError

    assert _native.check(0, "noop") == 0
    with pytest.raises(NativeError, match="invalid argument"):
        _native.check(_native.lib.EA_EINVAL, "ea_something")
