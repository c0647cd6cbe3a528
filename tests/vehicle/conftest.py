"""Fixtures of the vehicle tests: the demo drive log (generated once per session) and real-log paths."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from edge_assistant.vehicle import DemoScenario, write_demo_log

_channels = itertools.count()


@pytest.fixture(scope="session")
def demo_scenario() -> DemoScenario:
    return DemoScenario()  # the shipped scenario: 720 s, seed 1


@pytest.fixture(scope="session")
def demo_log(tmp_path_factory, demo_scenario) -> Path:
    """The demo drive as a candump log, made by the simulator (rerunnable, deterministic)."""
    path = tmp_path_factory.mktemp("demo") / "demo_drive.log"
    write_demo_log(path, scenario=demo_scenario)
    return path


@pytest.fixture
def channel() -> str:
    """A fresh virtual-bus channel name per test (virtual channels are process-global)."""
    return f"test-can-{next(_channels)}"


@pytest.fixture(scope="session")
def tesla(can_data) -> tuple[Path, Path]:
    d = can_data / "tesla_model_s"
    return d / "candump.log", d / "tesla_powertrain.dbc"


@pytest.fixture(scope="session")
def kona(can_data) -> dict[str, Path]:
    d = can_data / "kona_ev"
    return {"log": d / "230112-7-2019-pcan-ccan-power-off-on-ready-off.csv", "pcan": d / "pcan.dbc",
            "hyundai": d / "hyundai_can.dbc"}
