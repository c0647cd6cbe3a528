"""The Raspberry Pi board's boot-slot renderer and RAUC's tryboot backend, run as the image runs them (issue 10).

``render-config.sh`` writes a boot slot's ``config.txt`` and ``cmdline.txt`` and puts the CAN HAT into its
device trees with ``fdtput`` (Debian's device trees carry no overlay symbols). The trees here are our own
small stand-in for the Pi's (the nodes the script touches, at the Pi's addresses), compiled with ``dtc``;
the image's system test (tests/system/test_image_rpi.py) checks the same on Debian's real device trees.
``rauc-tryboot.sh`` is driven through RAUC's custom-backend verbs against files standing in for
``autoboot.txt``, the device tree's tryboot flag and systemd's reboot parameter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import skip_unless_ci

REPO = Path(__file__).resolve().parents[2]
RPI = REPO / "firmware" / "image" / "boards" / "rpi"
RENDER = RPI / "render-config.sh"
TRYBOOT = RPI / "rauc-tryboot.sh"

# The nodes render-config.sh reads or changes, where a Pi 3/4 device tree has them (gpio referenced once so
# that dtc gives it a phandle, as the real trees do).
PI_TREE = """/dts-v1/;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    compatible = "raspberrypi,4-model-b", "brcm,bcm2711";
    soc {
        #address-cells = <1>;
        #size-cells = <1>;
        gpio: gpio@7e200000 {
            compatible = "brcm,bcm2711-gpio";
            reg = <0x7e200000 0xb4>;
            gpio-controller;
            #gpio-cells = <2>;
            interrupt-controller;
            #interrupt-cells = <2>;
        };
        spi@7e204000 {
            compatible = "brcm,bcm2835-spi";
            reg = <0x7e204000 0x200>;
            #address-cells = <1>;
            #size-cells = <0>;
            status = "disabled";
        };
        leds {
            compatible = "gpio-leds";
            led { gpios = <&gpio 42 0>; };
        };
    };
};
"""


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        skip_unless_ci(f"{', '.join(missing)} missing (Debian: device-tree-compiler; make setup installs it)")


def _boot_dir(
    tmp_path: Path, names: tuple[str, ...] = ("bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b.dtb")
) -> Path:
    _need("dtc", "fdtget", "fdtput")
    src = tmp_path / "pi.dts"
    src.write_text(PI_TREE)
    boot = tmp_path / "boot"
    boot.mkdir()
    for name in names:
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(boot / name), str(src)], check=True)
    return boot


def render(slot: str, boot: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "RPI_CAN_ENV": str(RPI / "can.env"), **env}
    return subprocess.run(["sh", str(RENDER), slot, str(boot)], env=full, capture_output=True, text=True)


def fdtget(dtb: Path, node: str, prop: str, kind: str = "u") -> list[str]:
    out = subprocess.run(
        ["fdtget", "-t", kind, str(dtb), node, prop], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def phandles(dtb: Path) -> list[int]:
    dts = subprocess.run(
        ["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True, text=True, check=True
    )
    return [int(h, 16) for h in re.findall(r"\bphandle = <(0x[0-9a-f]+)>;", dts.stdout)]


def test_the_default_hat_goes_into_every_pi_device_tree_and_the_slot_names_its_root(tmp_path: Path) -> None:
    boot = _boot_dir(tmp_path)
    r = render("B", boot)
    assert r.returncode == 0, r.stderr
    cmdline = (boot / "cmdline.txt").read_text()
    assert "root=PARTLABEL=rootfs-b" in cmdline and "rauc.slot=B" in cmdline
    config = (boot / "config.txt").read_text()
    assert "upstream_kernel=1" in config and "kernel=vmlinuz" in config
    settings = [line for line in config.splitlines() if line and not line.startswith("#")]
    # Debian's trees take no overlays
    assert not [s for s in settings if s.startswith(("dtoverlay", "dtparam"))]
    assert "CAN HAT (2 device trees): mcp2515, crystal 16000000 Hz, INT on GPIO 25" in config
    for dtb in boot.glob("*.dtb"):
        can = "/soc/spi@7e204000/can@0"
        gpio = fdtget(dtb, "/soc/gpio@7e200000", "phandle")
        assert fdtget(dtb, can, "compatible", "s") == ["microchip,mcp2515"]
        assert fdtget(dtb, can, "spi-max-frequency") == ["10000000"]
        assert fdtget(dtb, can, "interrupt-parent") == gpio
        assert fdtget(dtb, can, "interrupts") == ["25", "8"]  # GPIO 25, level low
        assert fdtget(dtb, "/ea-can0-osc", "phandle") == fdtget(dtb, can, "clocks")
        assert fdtget(dtb, "/ea-can0-osc", "clock-frequency") == ["16000000"]
        assert fdtget(dtb, "/soc/spi@7e204000", "status", "s") == ["okay"]
        assert fdtget(dtb, "/soc/spi@7e204000", "cs-gpios") == [*gpio, "8", "1"]
        assert fdtget(dtb, "/soc/spi@7e204000", "pinctrl-0") == fdtget(
            dtb, "/soc/gpio@7e200000/ea-spi0-pins", "phandle"
        )
        assert fdtget(dtb, "/soc/gpio@7e200000/ea-spi0-pins", "brcm,pins") == ["9", "10", "11"]
        assert fdtget(dtb, "/soc/gpio@7e200000/ea-can0-int", "brcm,pins") == ["25"]
        assert fdtget(dtb, can, "pinctrl-0") == fdtget(dtb, "/soc/gpio@7e200000/ea-can0-int", "phandle")
        handles = phandles(dtb)
        assert len(handles) == len(set(handles)) == 4  # gpio's own and three new, all distinct


def test_an_mcp2518fd_hat_from_the_environment(tmp_path: Path) -> None:
    boot = _boot_dir(tmp_path, ("bcm2711-rpi-4-b.dtb",))
    r = render(
        "A",
        boot,
        RPI_CAN_CHIP="mcp2518fd",
        RPI_CAN_OSCILLATOR="40000000",
        RPI_CAN_SPI_HZ="20000000",
        RPI_CAN_INTERRUPT="24",
    )
    assert r.returncode == 0, r.stderr
    dtb = boot / "bcm2711-rpi-4-b.dtb"
    assert fdtget(dtb, "/soc/spi@7e204000/can@0", "compatible", "s") == ["microchip,mcp2518fd"]
    assert fdtget(dtb, "/soc/spi@7e204000/can@0", "interrupts") == ["24", "8"]
    assert fdtget(dtb, "/ea-can0-osc", "clock-frequency") == ["40000000"]
    assert "rauc.slot=A" in (boot / "cmdline.txt").read_text()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RPI_CAN_CHIP": "sja1000"}, "RPI_CAN_CHIP='sja1000': expected mcp2515 or mcp2518fd"),
        ({"RPI_CAN_OSCILLATOR": "40000000"}, "an MCP2515 runs from an 8, 12, 16 or 20 MHz crystal"),
        ({"RPI_CAN_OSCILLATOR": "16MHz"}, "expected the crystal in Hz"),
        ({"RPI_CAN_SPI_HZ": "20000000"}, "the MCP2515's SPI is at most 10 MHz"),
        ({"RPI_CAN_INTERRUPT": "40"}, "expected a BCM GPIO number 0..27"),
        (
            {"RPI_CAN_CHIP": "mcp2518fd", "RPI_CAN_OSCILLATOR": "16000000"},
            "an MCP2518FD runs from a 4, 20 or 40 MHz",
        ),
    ],
)
def test_values_the_chip_cannot_take_are_refused_naming_the_file_and_key(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    boot = _boot_dir(tmp_path, ("bcm2711-rpi-4-b.dtb",))
    before = (boot / "bcm2711-rpi-4-b.dtb").read_bytes()
    r = render("A", boot, **env)
    assert r.returncode == 2
    assert str(RPI / "can.env") in r.stderr and expected in r.stderr
    assert not (boot / "config.txt").exists()
    assert (boot / "bcm2711-rpi-4-b.dtb").read_bytes() == before


def test_a_slot_rendered_twice_or_without_device_trees_is_refused(tmp_path: Path) -> None:
    boot = _boot_dir(tmp_path, ("bcm2711-rpi-4-b.dtb",))
    assert render("A", boot).returncode == 0
    again = render("A", boot)
    assert again.returncode == 1 and "already has a CAN controller" in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = render("A", empty)
    assert none.returncode == 1 and "no Raspberry Pi device tree" in none.stderr
    bad_slot = render("C", boot)
    assert bad_slot.returncode == 2 and "slot 'C': expected A or B" in bad_slot.stderr


def test_values_prints_the_checked_values_the_environment_winning(tmp_path: Path) -> None:
    r = render("--values", tmp_path, RPI_CAN_INTERRUPT="24")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "RPI_CAN_CHIP=mcp2515",
        "RPI_CAN_OSCILLATOR=16000000",
        "RPI_CAN_INTERRUPT=24",
        "RPI_CAN_SPI_HZ=10000000",
    ]
    assert not list(tmp_path.iterdir())  # writes nothing
    bad = render("--values", tmp_path, RPI_CAN_SPI_HZ="30000000")
    assert bad.returncode == 2 and "the MCP2515's SPI is at most 10 MHz" in bad.stderr and not bad.stdout


# ---------------------------------------------------------------- rauc-tryboot.sh


class Tryboot:
    """RAUC's custom bootloader backend with its files in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.autoboot = root / "autoboot.txt"
        self.autoboot.write_text((RPI / "autoboot.txt").read_text())
        self.dt_flag = root / "tryboot"
        self.reboot_param = root / "run" / "reboot-param"
        self.env = {
            "PATH": os.environ["PATH"],
            "EA_AUTOBOOT": str(self.autoboot),
            "EA_TRYBOOT_STATE": str(root / "state"),
            "EA_DT_TRYBOOT": str(self.dt_flag),
            "EA_REBOOT_PARAM": str(self.reboot_param),
        }
        self.boot(trial=False)

    def boot(self, *, trial: bool) -> None:
        """What the Pi firmware leaves in /proc/device-tree/chosen/bootloader/tryboot (a big-endian cell)."""
        self.dt_flag.write_bytes((1 if trial else 0).to_bytes(4, "big"))
        self.reboot_param.unlink(missing_ok=True)  # /run is empty after a boot

    def __call__(self, *args: str, ok: bool = True) -> str:
        r = subprocess.run(["sh", str(TRYBOOT), *args], env=self.env, capture_output=True, text=True)
        if ok:
            assert r.returncode == 0, r.stderr
            return r.stdout.strip()
        assert r.returncode != 0
        return r.stderr

    def partitions(self) -> dict[str, str]:
        """boot_partition per section of autoboot.txt."""
        found, section = {}, ""
        for line in self.autoboot.read_text().splitlines():
            if line.startswith("["):
                section = line.strip("[]")
            elif line.startswith("boot_partition="):
                found[section] = line.split("=", 1)[1]
        return found


def test_an_update_gets_one_trial_boot_and_is_committed_only_by_mark_good_in_it(tmp_path: Path) -> None:
    tb = Tryboot(tmp_path)
    assert tb("get-primary") == "A" and tb("get-state", "B") == "good"
    # RAUC installed into B: the next reboot is the trial of boot-b, [all] still names boot-a
    tb("set-primary", "B")
    assert tb.partitions() == {"all": "2", "tryboot": "3"}
    assert tb.reboot_param.read_text().strip() == "0 tryboot"
    assert tb("get-primary") == "B"
    # the trial boot reaches the health check: mark-good commits B
    tb.boot(trial=True)
    tb("set-state", "B", "good")
    assert tb.partitions()["all"] == "3" and tb("get-primary") == "B"
    # the next update goes back to A; its trial boot never gets healthy, and the reset (watchdog, power)
    # that follows is a plain boot of [all]: B. mark-good there does not commit A.
    tb("set-primary", "A")
    assert tb.partitions() == {"all": "3", "tryboot": "2"}
    tb.boot(trial=False)
    tb("set-state", "A", "good")
    assert tb.partitions()["all"] == "3"


def test_mark_bad_cancels_a_pending_trial(tmp_path: Path) -> None:
    tb = Tryboot(tmp_path)
    tb("set-primary", "B")
    tb("set-state", "B", "bad")
    assert tb("get-state", "B") == "bad" and tb("get-primary") == "A"
    assert not tb.reboot_param.exists()
    # set-primary of the committed slot cancels a trial as well
    tb("set-primary", "B")
    tb("set-primary", "A")
    assert tb("get-primary") == "A" and not tb.reboot_param.exists()


def test_bad_arguments_and_a_corrupt_autoboot_are_named(tmp_path: Path) -> None:
    tb = Tryboot(tmp_path)
    assert "slot 'C': expected A or B" in tb("set-primary", "C", ok=False)
    assert "expected good or bad" in tb("set-state", "A", "fine", ok=False)
    assert "usage:" in tb("reboot", ok=False)
    tb.autoboot.write_text("[all]\nboot_partition=7\n")
    err = tb("get-primary", ok=False)
    assert str(tb.autoboot) in err and "boot_partition=7, expected 2 or 3" in err
