"""Shared fixtures. Paths to real data come from here, never from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA_ENV = "EDGE_ASSISTANT_SHARED_DATA"


def _shared_data_dir() -> Path:
    env = os.environ.get(SHARED_DATA_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def skip_unless_ci(reason: str) -> None:
    """Skip with ``reason``; when ``CI`` is set, fail instead: CI has every data folder, tool and model."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: what a test needs must be there, not skipped)", pytrace=False)
    pytest.skip(reason)


def _require(sub: str) -> Path:
    path = _shared_data_dir() / sub
    if not path.exists():
        skip_unless_ci(f"real data not present: {path} (set {SHARED_DATA_ENV} or put shared/ beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real recordings and CAN logs (skips the test when absent)."""
    return _require("")


@pytest.fixture(scope="session")
def wakeword_data() -> Path:
    return _require("wakeword")


@pytest.fixture(scope="session")
def speech_data() -> Path:
    return _require("speech")


@pytest.fixture(scope="session")
def noise_data() -> Path:
    return _require("noise")


@pytest.fixture(scope="session")
def can_data() -> Path:
    return _require("can")
