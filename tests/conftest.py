"""Shared fixtures. Paths to real data come from here, never from the working directory."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
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


def within(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Whether ``predicate`` holds within ``timeout_s`` (polled every 5 ms; an upper bound, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.005)
    return True


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout_s`` (an upper bound, not a timing
    check: tests synchronise on events and counts, never on fixed sleeps)."""
    if not within(predicate, timeout_s):
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


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
