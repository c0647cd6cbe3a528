"""Smoke test of the qemu-arm64 image under qemu-system-aarch64 -M virt (TCG, AAVMF) (issue 10).

The car's architecture on a real kernel: the image boots through GRUB's A/B selection, the assistant's
unit reaches READY, the rest of the boot has no failed unit, and the real Tesla log replayed onto vcan0
with the image's `edge-assistant can replay` is decoded by its `vehicle watch` (the x86_64 suite's CAN
step, run here unchanged). TCG emulates aarch64 on x86 several times slower than x86 on x86, so the
deadlines are longer and `make test-system-arm64` is not part of CI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_unless_ci

from . import test_image as x86
from .vm import Vm, built_image

ARCH = "aarch64"
BOOT_TIMEOUT_S = 1800  # until the guest agent answers: firmware, GRUB, kernel, initramfs, early userspace
READY_TIMEOUT_S = 2400  # the board gives the unit TimeoutStartSec=1800 s (boards/qemu-arm64)
SETTLE_TIMEOUT_S = 900
FIGURES: dict[str, float] = {}
tesla_log = x86.tesla_log  # the fixture: the real Tesla log and its DBC, shared read-only into the VM


@pytest.fixture(scope="module")
def images() -> Path:
    d = built_image(("disk.img",), ARCH, "make image-arm64")
    board = (d / "image.env").read_text()
    if "BOARD=qemu-arm64" not in board.split():
        skip_unless_ci(f"{d} holds another board's image ({board.split()}): run `make image-arm64`")
    return d


@pytest.fixture(scope="module")
def vm(images: Path, tesla_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    machine = Vm(
        images / "disk.img", tmp_path_factory.mktemp("vm-arm64"), shares={"canlog": tesla_log}, arch=ARCH
    )
    t0 = machine.start()
    machine.wait_agent(BOOT_TIMEOUT_S)
    FIGURES["agent_answers_s"] = time.monotonic() - t0
    yield machine
    machine.kill()
    FIGURES.update({k: v for k, v in x86.FIGURES.items() if k.startswith("can_")})
    (images / "system-test-figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")
    print(f"\narm64 system-test figures: {FIGURES}\nconsole: {machine.console}")


def test_guest_is_arm64_booted_from_slot_a(vm: Vm) -> None:
    assert vm.sh("uname -m", 30).stdout.strip() == "aarch64"
    assert x86.booted_slot(vm) == "A", vm.sh("cat /proc/cmdline", 30).stdout
    # the application's own C extension was built for the guest and loads there: the package imports it (and
    # checks its ABI version); its file is an ELF for AArch64 (e_machine 183, EM_AARCH64)
    out = vm.sh(
        "/opt/edge-assistant/current/venv/bin/python -c "
        "'import platform, edge_assistant._native, edge_assistant._native._frontend as f; "
        "print(platform.machine(), int.from_bytes(open(f.__file__, \"rb\").read(20)[18:20], \"little\"))'",
        300,
    ).stdout.split()
    assert out == ["aarch64", "183"], out


def test_assistant_reaches_ready(vm: Vm) -> None:
    """Type=notify: the unit turns active only once the assistant sent READY=1 (models loaded)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        out = vm.sh("systemctl show -p ActiveState -p SubState -p NRestarts edge-assistant.service", 60)
        unit = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        if unit.get("ActiveState") == "active":
            break
        if (
            unit.get("ActiveState") == "failed"
            or unit.get("NRestarts", "0") != "0"
            or time.monotonic() > deadline
        ):
            journal = vm.sh("journalctl -b -u edge-assistant.service --no-pager | tail -40", 60, check=False)
            raise vm.fail(f"edge-assistant.service not READY: {unit}\n{journal.stdout}")
        time.sleep(10)
    assert unit == {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}, unit
    ready = vm.sh("systemctl show -P ActiveEnterTimestampMonotonic edge-assistant.service", 30).stdout.strip()
    FIGURES["assistant_ready_after_kernel_s"] = int(ready) / 1e6


def test_boot_settles_with_no_failed_unit(vm: Vm) -> None:
    state = vm.sh("systemctl is-system-running --wait", SETTLE_TIMEOUT_S, check=False).stdout.strip()
    failed = vm.sh("systemctl list-units --failed --plain --no-legend", 60).stdout.strip()
    assert failed == "", (
        f"failed units after boot (state {state}):\n{failed}\n"
        + vm.sh("journalctl -b -p warning --no-pager | tail -60", 60, check=False).stdout
    )
    assert state == "running"
    timing = vm.sh("systemd-analyze time", 60, check=False).stdout.strip()
    print(f"\n{timing}")


def test_can_replay_on_vcan0_is_decoded(vm: Vm, tesla_log: Path) -> None:
    """The x86_64 suite's CAN step on the arm64 guest: vcan0 from networkd, the real log replayed,
    decoded live to the same signals as on the host, then reported stale."""
    x86.test_can_log_on_vcan0_is_decoded_then_reported_stale(vm, tesla_log)
