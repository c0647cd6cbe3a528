"""The Raspberry Pi 4 image (`make image-rpi`): its layout and boot slots, then its A/B update in a VM (issue 10).

No QEMU model runs the Pi 4's boot firmware, so the test plays the firmware's part and boots the image's own
files under ``qemu-system-aarch64 -M virt`` (TCG): it reads ``autoboot.txt`` from partition 1 of the disk
as the Pi's bootloader does, takes kernel, initrd and ``cmdline.txt`` from the boot partition that names
(``[tryboot]`` after a reboot asked for one, else ``[all]``), and sets the device tree's
``/chosen/bootloader/tryboot`` flag the way the firmware reports a trial boot. Everything after that is
the image: Debian's kernel and initramfs, root=PARTLABEL=rootfs-X, RAUC with the board's custom backend
(``rauc-tryboot.sh``) and post-install handler (``rpi-post-install.sh``), the CAN HAT written into the
boot slot's device trees on the device. What this cannot show: the Pi's firmware itself reading our GPT,
``autoboot.txt`` and ``config.txt``, and the MCP2515 on a real SPI bus (firmware/README.md, "Boards").
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_unless_ci

from .test_image import rauc_status
from .vm import KernelBoot, Vm, built_image

ARCH = "aarch64"
BOOT_TIMEOUT_S = 1800  # until the guest agent answers under TCG aarch64 (33-61 s measured on qemu-arm64)
INSTALL_TIMEOUT_S = 1800
PARTITIONS = ["autoboot", "boot-a", "boot-b", "rootfs-a", "rootfs-b", "data"]
FAT = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
ROOT_ARM64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def images() -> Path:
    d = built_image(("disk.img", "boot.vfat", "bundle-good.raucb"), ARCH, "make image-rpi")
    board = (d / "image.env").read_text()
    if "BOARD=rpi" not in board.split():
        skip_unless_ci(f"{d} holds another board's image ({board.split()}): run `make image-rpi`")
    for tool in ("mtype", "mcopy", "fdtget", "fdtput", "debugfs", "sfdisk", "rauc"):
        if shutil.which(tool) is None:
            skip_unless_ci(f"{tool} missing (make image-deps IMAGE_BOARD=rpi)")
    return d


def partitions(disk: Path) -> list[dict]:
    out = subprocess.run(["sfdisk", "-J", str(disk)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["partitiontable"]["partitions"]


def fat(disk: Path, number: int) -> str:
    """mtools' name for the FAT file system of partition ``number`` of ``disk``."""
    return f"{disk}@@{partitions(disk)[number - 1]['start'] * 512}"


def fat_text(disk: Path, number: int, name: str) -> str:
    return subprocess.run(["mtype", "-i", fat(disk, number), f"::{name}"], capture_output=True, text=True,
                          check=True).stdout.replace("\r\n", "\n")


def fat_copy(disk: Path, number: int, name: str, dest: Path) -> Path:
    subprocess.run(["mcopy", "-o", "-i", fat(disk, number), f"::{name}", str(dest)], check=True)
    return dest


def autoboot(disk: Path) -> dict[str, str]:
    """boot_partition of each section of autoboot.txt (partition 1)."""
    found, section = {}, ""
    for line in fat_text(disk, 1, "autoboot.txt").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.startswith("boot_partition="):
            found[section] = line.split("=", 1)[1].strip()
    return found


def rootfs_file(images: Path, path: str) -> str:
    r = subprocess.run(["debugfs", "-R", f"cat {path}", str(images / "rootfs.ext4")], capture_output=True,
                       text=True)
    assert r.stdout, f"{path} not in rootfs.ext4: {r.stderr}"
    return r.stdout


def test_disk_layout_autoboot_and_the_first_boot_slot(images: Path, tmp_path: Path) -> None:
    disk = images / "disk.img"
    parts = partitions(disk)
    assert [p.get("name") for p in parts] == PARTITIONS
    assert [p["type"] for p in parts[:5]] == [FAT, FAT, FAT, ROOT_ARM64, ROOT_ARM64]
    # the bootloader's view: tryboot A/B on, [all] = boot-a (partition 2), [tryboot] = boot-b
    assert "tryboot_a_b=1" in fat_text(disk, 1, "autoboot.txt")
    assert autoboot(disk) == {"all": "2", "tryboot": "3"}
    listing = subprocess.run(["mdir", "-b", "-i", fat(disk, 2), "::/"], capture_output=True, text=True,
                             check=True).stdout
    names = {Path(line.strip()).name for line in listing.splitlines()}
    for name in ("start4.elf", "fixup4.dat", "vmlinuz", "initrd.img", "bcm2711-rpi-4-b.dtb", "config.txt",
                 "cmdline.txt"):
        assert name in names, f"{name} missing from boot-a: {sorted(names)}"
    config = fat_text(disk, 2, "config.txt")
    assert "kernel=vmlinuz" in config and "upstream_kernel=1" in config and "# CAN HAT (" in config
    cmdline = fat_text(disk, 2, "cmdline.txt")
    assert "root=PARTLABEL=rootfs-a" in cmdline and "rauc.slot=A" in cmdline
    kernel = fat_copy(disk, 2, "vmlinuz", tmp_path / "vmlinuz").read_bytes()
    assert kernel[56:60] == b"ARM\x64", "vmlinuz is not an arm64 Image"
    dtb = fat_copy(disk, 2, "bcm2711-rpi-4-b.dtb", tmp_path / "pi4.dtb")
    got = subprocess.run(["fdtget", "-t", "s", str(dtb), "/soc/spi@7e204000/can@0", "compatible"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert got == ["microchip,mcp2515"]  # the build's default HAT (boards/rpi/can.env)
    # the bundle's boot.vfat is the same files before any slot was rendered into them
    pristine = subprocess.run(["mdir", "-b", "-i", str(images / "boot.vfat"), "::/"], capture_output=True,
                              text=True, check=True).stdout
    assert "config.txt" not in pristine and "vmlinuz" in pristine


def test_root_filesystem_carries_the_board(images: Path) -> None:
    conf = configparser.RawConfigParser()
    conf.read_string(rootfs_file(images, "/etc/rauc/system.conf"))
    assert conf["system"]["compatible"] == "edge-assistant-rpi"
    assert conf["system"]["bootloader"] == "custom"
    assert conf["slot.boot.1"]["parent"] == "rootfs.1"
    for handler in ("bootloader-custom-backend", "post-install", "pre-install"):
        assert rootfs_file(images, conf["handlers"][handler]).startswith("#!/bin/sh")
    assert "PARTLABEL=autoboot" in rootfs_file(images, "/etc/fstab")
    assert "RuntimeWatchdogSec=" in rootfs_file(images, "/etc/systemd/system.conf.d/10-edge-assistant-watchdog.conf")
    assert "RPI_CAN_CHIP=mcp2515" in rootfs_file(images, "/usr/lib/edge-assistant/rpi/can.env")
    modules = subprocess.run(["debugfs", "-R", "ls -p /lib/modules", str(images / "rootfs.ext4")],
                             capture_output=True, text=True, check=True).stdout
    version = next(f.split("/")[5] for f in modules.splitlines() if f.count("/") >= 6 and f.split("/")[5][:1].isdigit())
    for module in ("drivers/net/can/spi/mcp251x.ko", "drivers/net/can/spi/mcp251xfd/mcp251xfd.ko",
                   "drivers/spi/spi-bcm2835.ko"):
        r = subprocess.run(["debugfs", "-R", f"stat /lib/modules/{version}/kernel/{module}",
                            str(images / "rootfs.ext4")], capture_output=True, text=True)
        assert "Inode:" in r.stdout, f"{module} missing from the root filesystem ({version})"


def test_the_bundle_carries_root_and_boot_slot_for_this_board(images: Path) -> None:
    info = subprocess.run(["rauc", "info", f"--keyring={images / 'keys' / 'ca.cert.pem'}",
                           str(images / "bundle-good.raucb")], capture_output=True, text=True, check=True).stdout
    assert "edge-assistant-rpi" in info
    assert re.search(r"\(rootfs\)", info) or "rootfs.ext4" in info
    assert "boot.vfat" in info


# ---------------------------------------------------------------- the update cycle in a VM


class PiFirmware:
    """The Pi bootloader's part: pick the boot partition from autoboot.txt, boot its kernel, initrd and
    cmdline.txt, and tell the kernel through the device tree whether this is a trial boot."""

    def __init__(self, vm: Vm, disk: Path, workdir: Path) -> None:
        self.vm, self.disk, self.workdir = vm, disk, workdir
        self.generated = workdir / "virt.dtb"
        subprocess.run([*vm.machine_args(), "-machine", f"dumpdtb={self.generated}", "-display", "none"],
                       check=True, capture_output=True)

    def power_on(self, *, trial: bool) -> str:
        """Boot; returns the boot partition number the firmware chose."""
        part = autoboot(self.disk)["tryboot" if trial else "all"]
        n = int(part)
        kernel = fat_copy(self.disk, n, "vmlinuz", self.workdir / "vmlinuz")
        initrd = fat_copy(self.disk, n, "initrd.img", self.workdir / "initrd.img")
        cmdline = fat_text(self.disk, n, "cmdline.txt").strip()
        dtb = self.workdir / "boot.dtb"
        shutil.copyfile(self.generated, dtb)
        subprocess.run(["fdtput", "-c", "-p", str(dtb), "/chosen/bootloader"], check=True)
        subprocess.run(["fdtput", "-t", "u", str(dtb), "/chosen/bootloader", "tryboot", "1" if trial else "0"],
                       check=True)
        # the Pi's serial console is ttyS1 in cmdline.txt; the virt machine's is the PL011 (the last wins)
        t0 = self.vm.start(KernelBoot(kernel, initrd, f"{cmdline} console=ttyAMA0,115200", dtb))
        self.vm.wait_agent(BOOT_TIMEOUT_S)
        FIGURES.setdefault("agent_answers_s", time.monotonic() - t0)
        return part

    def power_off(self) -> str:
        """Shut down from inside; returns what systemd passes to the firmware on the way (reboot-param)."""
        param = self.vm.sh("cat /run/systemd/reboot-param 2>/dev/null || true", 30).stdout.strip()
        self.vm.sh("systemd-run --no-block --on-active=1 systemctl poweroff", 30)
        self.vm.agent.close()
        assert self.vm.proc is not None
        try:
            self.vm.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            raise self.vm.fail("the guest did not power off within 300 s") from None
        self.vm.proc = None
        return param

    def cut_power(self) -> None:
        """A reset the new slot never gets past (the watchdog, or the driver turning the key)."""
        self.vm.sh("sync", 60)
        self.vm.kill()


@pytest.fixture(scope="module")
def pi(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PiFirmware]:
    work = tmp_path_factory.mktemp("pi")
    disk = work / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(images / "disk.img"), str(disk)], check=True)
    vm = Vm(disk, work, shares={"bundles": images}, arch=ARCH, overlay=False, cache="writeback")
    yield PiFirmware(vm, disk, work)
    vm.kill()
    (images / "system-test-figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")
    print(f"\nsystem-test figures: {FIGURES}\nconsole: {vm.console}")


def install(vm: Vm) -> tuple[str, float]:
    vm.sh("mkdir -p /run/bundles && (mountpoint -q /run/bundles || "
          "mount -t 9p -o trans=virtio,version=9p2000.L,ro bundles /run/bundles)", 60)
    t0 = time.monotonic()
    r = vm.sh("rauc install /run/bundles/bundle-good.raucb", INSTALL_TIMEOUT_S, check=False)
    assert r.exit_code == 0, f"rauc install failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr, time.monotonic() - t0


def test_an_update_takes_one_trial_boot_and_mark_good_commits_it(pi: PiFirmware) -> None:
    vm = pi.vm
    assert pi.power_on(trial=False) == "2"
    assert vm.sh("sed -n 's/.*rauc\\.slot=\\([AB]\\).*/\\1/p' /proc/cmdline", 20).stdout.strip() == "A"
    assert rauc_status(vm).get("RAUC_SYSTEM_BOOTED_BOOTNAME") == "A"
    _, took = install(vm)
    FIGURES["install_s"] = took
    # RAUC wrote rootfs-b and boot-b; the post-install handler made boot-b slot B's with the device's HAT
    vm.sh("mkdir -p /run/bb && mount -o ro /dev/disk/by-partlabel/boot-b /run/bb", 60)
    cmdline = vm.sh("cat /run/bb/cmdline.txt", 20).stdout
    assert "root=PARTLABEL=rootfs-b" in cmdline and "rauc.slot=B" in cmdline
    assert vm.sh("fdtget /run/bb/bcm2711-rpi-4-b.dtb /soc/spi@7e204000/can@0 compatible", 20).stdout.strip() \
        == "microchip,mcp2515"
    vm.sh("umount /run/bb", 30)
    assert pi.power_off() == "0 tryboot"  # set-primary B asked for a trial boot, not a switch
    assert autoboot(pi.disk) == {"all": "2", "tryboot": "3"}

    # the trial boot of B; the health check's mark-good (run here directly: the demo configuration has no
    # microphone under -M virt, so the service's own health check would never pass) commits it
    assert pi.power_on(trial=True) == "3"
    assert rauc_status(vm).get("RAUC_SYSTEM_BOOTED_BOOTNAME") == "B"
    vm.sh("rauc status mark-good", 120)
    assert pi.power_off() == ""
    assert autoboot(pi.disk)["all"] == "3"
    assert pi.power_on(trial=False) == "3"  # a plain boot now starts B


def test_a_trial_boot_that_never_gets_healthy_falls_back(pi: PiFirmware) -> None:
    vm = pi.vm
    install(vm)  # into A this time, from B
    assert pi.power_off() == "0 tryboot"
    assert autoboot(pi.disk) == {"all": "3", "tryboot": "2"}
    assert pi.power_on(trial=True) == "2"
    pi.cut_power()  # no mark-good: the watchdog or the driver resets it
    assert autoboot(pi.disk)["all"] == "3"
    assert pi.power_on(trial=False) == "3"
    assert rauc_status(vm).get("RAUC_SYSTEM_BOOTED_BOOTNAME") == "B"
