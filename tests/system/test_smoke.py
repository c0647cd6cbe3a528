"""The system test's CI subset (`make test-system-smoke`, run by `.ci/run` after `make test`; issue 10).

The x86_64 image booted under TCG in its own VM, with only the disk image built (no bundles): systemd reaches
multi-user with no failed unit and the assistant READY, the units pass `systemd-analyze verify` inside the
image, the A/B layout and RAUC's view are right, the real Tesla log replayed onto vcan0 is decoded and then
reported stale, and the service itself decodes a drive replayed onto vcan0 and then reports the bus silent.
These are steps 1 and 3 of `make test-system`, run here unchanged; the audio, microphone,
update and power-cut steps need the bundles and more than CI's time (`make test-system` runs them all).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import test_image as full
from .vm import Vm, built_image

FIGURES: dict[str, float] = {}
tesla_log = full.tesla_log  # the fixture: the real Tesla log and its DBC, shared read-only into the VM


@pytest.fixture(scope="module")
def images() -> Path:
    return built_image(("disk.img", "image.env"), make="make image")


@pytest.fixture(scope="module")
def vm(images: Path, tesla_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    machine = Vm(images / "disk.img", tmp_path_factory.mktemp("vm-smoke"), shares={"canlog": tesla_log})
    t0 = machine.start()
    machine.wait_agent(full.BOOT_TIMEOUT_S)
    FIGURES["agent_answers_s"] = time.monotonic() - t0
    yield machine
    machine.kill()
    FIGURES.update(full.FIGURES)
    (images / "system-smoke-figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")
    print(f"\nsystem smoke figures: {FIGURES}\nconsole: {machine.console}")


def test_boots_to_multi_user_with_no_failed_unit(vm: Vm) -> None:
    full.test_boots_to_multi_user_with_no_failed_unit(vm)


def test_units_verify_inside_the_image(vm: Vm) -> None:
    full.test_units_verify_inside_the_image(vm)


def test_image_layout_and_rauc_view(vm: Vm, images: Path) -> None:
    full.test_image_layout_and_rauc_view(vm, images)


def test_can_log_on_vcan0_is_decoded_then_reported_stale(vm: Vm, tesla_log: Path) -> None:
    full.test_can_log_on_vcan0_is_decoded_then_reported_stale(vm, tesla_log)


def test_service_decodes_the_car_on_vcan0_then_reports_it_silent(vm: Vm) -> None:
    full.test_service_decodes_the_car_on_vcan0_then_reports_it_silent(vm)
