"""The image's RAUC pre-install handler refuses bundles below the version floor (issue 10).

The real script runs here as RAUC runs it: the image's system.conf names it, its environment is the one
RAUC gives system handlers (slot variables, RAUC_CURRENT_BOOTNAME, the bundle mounted at
RAUC_BUNDLE_MOUNT_POINT with the manifest inside), and only its exit status and stderr count.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import skip_unless_ci

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "firmware" / "image"
HANDLER = IMAGE / "rauc-pre-install.sh"
RAISE = IMAGE / "raise-version-floor.sh"
SHIPPED_FLOOR = IMAGE / "version-floor"
INSTALLED_HANDLER = "/usr/lib/edge-assistant/rauc-pre-install.sh"
#: the build stamp build-image.sh appends to the pyproject version ("+%Y%m%d%H%M%S")
BUILD_STAMP = "+20261205035722"


def _system_conf() -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(interpolation=None)
    cp.read_string((IMAGE / "system.conf.in").read_text())
    return cp


def rauc_env(bundle: Path, *, legacy: bool = False) -> dict[str, str]:
    """What RAUC 1.8 puts into a system handler's environment for an install into the other slot
    (as dumped from a handler the real service ran: no RAUC_MF_*, the bundle mount, every slot)."""
    conf = _system_conf()
    slots = [s.removeprefix("slot.") for s in conf.sections() if s.startswith("slot.")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "RAUC_SYSTEM_CONFIG": "/etc/rauc/system.conf",
           "RAUC_CURRENT_BOOTNAME": "A", "RAUC_MOUNT_PREFIX": "/run/rauc", "RAUC_UPDATE_SOURCE": str(bundle)}
    if not legacy:  # RAUC 1.8 sets both; RAUC_UPDATE_SOURCE is the older, deprecated name
        env["RAUC_BUNDLE_MOUNT_POINT"] = str(bundle)
    for n, name in enumerate(slots, start=1):
        sec = conf[f"slot.{name}"]
        env |= {f"RAUC_SLOT_NAME_{n}": name, f"RAUC_SLOT_CLASS_{n}": name.split(".")[0],
                f"RAUC_SLOT_TYPE_{n}": sec["type"], f"RAUC_SLOT_DEVICE_{n}": sec["device"],
                f"RAUC_SLOT_BOOTNAME_{n}": sec.get("bootname", ""), f"RAUC_SLOT_PARENT_{n}": ""}
    target = next(n for n, name in enumerate(slots, start=1) if conf[f"slot.{name}"].get("bootname") != "A")
    env |= {"RAUC_SLOTS": " ".join(str(n) for n in range(1, len(slots) + 1)), "RAUC_TARGET_SLOTS": str(target),
            f"RAUC_IMAGE_NAME_{target}": "rootfs.ext4", f"RAUC_IMAGE_CLASS_{target}": "rootfs",
            f"RAUC_IMAGE_DIGEST_{target}": "0" * 64}
    return env


def mounted_bundle(tmp_path: Path, version: str | None, name: str = "bundle") -> Path:
    """A bundle's content as RAUC mounts it: manifest.raucm (as build-bundle.sh writes it) and the image."""
    d = tmp_path / name
    d.mkdir()
    update = "[update]\ncompatible=edge-assistant-qemu-x86_64\n"
    if version is not None:
        update += f"version={version}\n"
    (d / "manifest.raucm").write_text(f"{update}description=test\n\n[bundle]\nformat=verity\n\n"
                                      "[image.rootfs]\nfilename=rootfs.ext4\n")
    (d / "rootfs.ext4").write_bytes(b"")
    return d


def run_handler(env: dict[str, str], floor: Path = SHIPPED_FLOOR,
                stored: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The handler with the shipped floor ``floor`` and the device's stored floor ``stored`` (none: "")."""
    env = {**env, "EA_VERSION_FLOOR_FILE": str(floor), "EA_STORED_FLOOR_FILE": str(stored or "")}
    # RAUC passes the bundle's handler args (none here: one empty argument)
    return subprocess.run([str(HANDLER), ""], env=env, capture_output=True, text=True, timeout=30)


def raise_floor(floor: Path, stored: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "EA_VERSION_FLOOR_FILE": str(floor),
           "EA_STORED_FLOOR_FILE": str(stored)}
    return subprocess.run([str(RAISE)], env=env, capture_output=True, text=True, timeout=30)


def floor_file(tmp_path: Path, floor: str, name: str = "version-floor") -> Path:
    path = tmp_path / name
    path.write_text(f"# test floor\n{floor}\n")
    return path


def test_system_conf_names_the_handler_the_image_installs() -> None:
    assert _system_conf()["handlers"]["pre-install"] == INSTALLED_HANDLER
    customize = (IMAGE / "hooks" / "customize.sh").read_text()
    for name in ("rauc-pre-install.sh", "raise-version-floor.sh", "version-floor.lib.sh", "version-floor"):
        assert f'"$IMG/{name}"' in customize, f"customize.sh does not install {name}"
    assert os.access(HANDLER, os.X_OK) and os.access(RAISE, os.X_OK), "RAUC and systemd execute them directly"
    mark_good = (IMAGE.parent / "systemd" / "edge-assistant-mark-good.service").read_text()
    assert "ExecStartPost=-/usr/lib/edge-assistant/raise-version-floor.sh" in mark_good


@pytest.mark.parametrize(("version", "floor"), [
    ("0.9.9", "1.0.0"), ("0.10", "1.2"), ("1.4.0rc1", "1.4.0"), ("1.4.0.dev3", "1.4.0"), ("1.4.0a1+build7", "1.4"),
    ("1.9.0", "1.10.0"),  # numbers, not strings: 9 < 10
])
def test_below_the_floor_is_refused_naming_both_versions(tmp_path: Path, version: str, floor: str) -> None:
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, version)), floor_file(tmp_path, floor))
    assert proc.returncode == 1, proc.stderr
    assert f"bundle version {version} is below the version floor {floor}" in proc.stderr


@pytest.mark.parametrize(("version", "floor"), [
    ("1.0.0", "1.0.0"), ("1.0", "1.0.0"), ("1.0.0.0", "1.0"), ("1.0.0+20261205035722", "1.0.0"),
    ("1.0.0+20261205035722-broken", "1.0.0"), ("1.0.0.post1", "1.0.0"), ("1.0.0.post1.dev0", "1.0.0"),
    ("1.10.0", "1.9.0"), ("2.0.0rc1", "1.9"), ("007.1", "7.0"),
])
def test_at_or_above_the_floor_is_accepted(tmp_path: Path, version: str, floor: str) -> None:
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, version)), floor_file(tmp_path, floor))
    assert proc.returncode == 0, proc.stderr
    assert f"bundle version {version} is at or above the version floor {floor}" in proc.stderr


@pytest.mark.parametrize("version", ["", "abc", "v1.2.0", "1.2.0-rc1", "1!2.0", "1..2", "1.2.", "1.2.0+",
                                     "1.2.0 + x", "1234567890.1", "1.2.0rc", "1.2.0\\n0.1"])
def test_malformed_version_is_refused_with_the_expected_form(tmp_path: Path, version: str) -> None:
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, version)))
    assert proc.returncode == 1, proc.stderr
    assert "expected N[.N...]" in proc.stderr and "manifest.raucm [update] version" in proc.stderr, proc.stderr


def test_bundle_without_version_or_manifest_is_refused(tmp_path: Path) -> None:
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, None)))
    assert proc.returncode == 1 and "the bundle has no version" in proc.stderr, proc.stderr
    proc = run_handler(rauc_env(tmp_path / "not-mounted"))
    assert proc.returncode == 1 and "cannot read the bundle's manifest" in proc.stderr, proc.stderr
    env = {k: v for k, v in rauc_env(tmp_path).items() if k not in ("RAUC_BUNDLE_MOUNT_POINT", "RAUC_UPDATE_SOURCE")}
    proc = run_handler(env)
    assert proc.returncode == 1 and "not run by RAUC?" in proc.stderr, proc.stderr


def test_version_comes_from_rauc_mf_version_when_rauc_gives_it(tmp_path: Path) -> None:
    """Install hooks (and newer RAUC) get RAUC_MF_VERSION; it is the same signed manifest value."""
    env = rauc_env(mounted_bundle(tmp_path, "9.9.9")) | {"RAUC_MF_VERSION": "0.0.1"}
    proc = run_handler(env, floor_file(tmp_path, "0.1.0"))
    assert proc.returncode == 1 and "bundle version 0.0.1 is below the version floor 0.1.0" in proc.stderr


def test_older_rauc_environment_works(tmp_path: Path) -> None:
    """Older RAUC names the bundle mount RAUC_UPDATE_SOURCE only."""
    below = run_handler(rauc_env(mounted_bundle(tmp_path, "0.0.1", "old"), legacy=True), floor_file(tmp_path, "0.1"))
    equal = run_handler(rauc_env(mounted_bundle(tmp_path, "0.1", "new"), legacy=True), floor_file(tmp_path, "0.1"))
    assert (below.returncode, equal.returncode) == (1, 0), below.stderr + equal.stderr


@pytest.mark.parametrize("floor", ["", "1.0rc1", "1.0+x", "latest", "1.0\n2.0"])
def test_a_broken_floor_file_refuses_everything(tmp_path: Path, floor: str) -> None:
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, "99.0")), floor_file(tmp_path, floor))
    assert proc.returncode == 1 and "is not one release number" in proc.stderr, proc.stderr
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, "99.0", "b2")), tmp_path / "missing")
    assert proc.returncode == 1 and "no version floor at" in proc.stderr, proc.stderr


def test_this_release_is_not_below_the_shipped_floor(tmp_path: Path) -> None:
    """The image's own version (pyproject + build stamp, as build-image.sh makes it) must pass its floor,
    else none of its bundles could ever be installed (customize.sh checks the same at build time)."""
    base = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, base + BUILD_STAMP)))
    assert proc.returncode == 0, proc.stderr
    floor = re.search(r"version floor (\S+)", proc.stderr)
    assert floor and floor.group(1) == next(
        line.strip() for line in SHIPPED_FLOOR.read_text().splitlines() if line.strip() and not line.startswith("#"))


def test_a_version_of_several_lines_is_refused(tmp_path: Path) -> None:
    """GKeyFile turns an escaped \\n in the manifest into a real newline in RAUC_MF_VERSION."""
    env = rauc_env(mounted_bundle(tmp_path, "1.0")) | {"RAUC_MF_VERSION": "garbage\n9.9.9"}
    proc = run_handler(env)
    assert proc.returncode == 1 and "spans several lines" in proc.stderr, proc.stderr


# ------------------------------------------------------------------- the real RAUC runs the handler
RUN_SERVICE = """#!/bin/sh
# RAUC's service and client both use the session bus when DBUS_STARTER_BUS_TYPE=session
export DBUS_STARTER_BUS_TYPE=session
rauc -c "$1/system.conf" --mount="$1/mnt" --override-boot-slot=A service > "$1/service.log" 2>&1 &
pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
    busctl --user status de.pengutronix.rauc >/dev/null 2>&1 && break
    sleep 0.5
done
for b in old new; do
    timeout 120 rauc install "$1/$b.raucb" > "$1/install-$b.log" 2>&1
    echo "$b $?"
done
kill $pid; wait $pid
"""


def test_real_rauc_refuses_below_the_floor_and_installs_at_it(tmp_path: Path) -> None:
    """RAUC 1.8's own service (on a private D-Bus, slots in plain files, no bootloader) runs the handler
    from [handlers] pre-install with its real environment: the old bundle is refused before any slot
    write, the current one is written into slot B."""
    tools = ("rauc", "dbus-run-session", "busctl", "openssl", "mksquashfs")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        skip_unless_ci(f"{', '.join(missing)} not installed (Debian: rauc, dbus, systemd, openssl, squashfs-tools)")
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists():
        pytest.skip("RAUC mounts the bundle on a loop device: needs root and /dev/loop-control")
    subprocess.run(["sh", str(IMAGE / "make-dev-keys.sh"), str(tmp_path / "keys")], check=True,
                   capture_output=True, timeout=60)
    payload = os.urandom(64 * 1024)
    for name, version in (("old", "0.0.9"), ("new", "0.1.0+20261205035722")):
        content = tmp_path / f"{name}.d"
        content.mkdir()
        (content / "rootfs.img").write_bytes(payload)
        (content / "manifest.raucm").write_text(f"[update]\ncompatible=edge-assistant-test\nversion={version}\n\n"
                                               "[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n")
        keys = tmp_path / "keys"
        subprocess.run(["rauc", "bundle", f"--cert={keys / 'signing.cert.pem'}", f"--key={keys / 'signing.key.pem'}",
                        f"--keyring={keys / 'ca.cert.pem'}", str(content), str(tmp_path / f"{name}.raucb")],
                       check=True, capture_output=True, timeout=120)
    for slot in ("A", "B"):
        (tmp_path / f"slot{slot}.img").write_bytes(bytes(len(payload)))
    (tmp_path / "mnt").mkdir()
    floor = floor_file(tmp_path, "0.1.0")
    (tmp_path / "system.conf").write_text(
        f"[system]\ncompatible=edge-assistant-test\nbootloader=noop\ndata-directory={tmp_path / 'data'}\n"
        f"bundle-formats=plain\n\n[handlers]\npre-install={HANDLER}\n\n[keyring]\npath={keys / 'ca.cert.pem'}\n\n"
        f"[slot.rootfs.0]\ndevice={tmp_path / 'slotA.img'}\ntype=raw\nbootname=A\n\n"
        f"[slot.rootfs.1]\ndevice={tmp_path / 'slotB.img'}\ntype=raw\nbootname=B\n")
    script = tmp_path / "run.sh"
    script.write_text(RUN_SERVICE)
    env = {**os.environ, "EA_VERSION_FLOOR_FILE": str(floor), "EA_STORED_FLOOR_FILE": ""}
    proc = subprocess.run(["dbus-run-session", "--", "sh", str(script), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    service_log = (tmp_path / "service.log").read_text()
    if "Configured loop device" not in service_log and "Failed mounting bundle" in service_log:
        pytest.skip(f"this kernel/container cannot mount a bundle: {service_log[-300:]}")
    results = dict(line.split() for line in proc.stdout.splitlines())
    old_log, new_log = ((tmp_path / f"install-{b}.log").read_text() for b in ("old", "new"))
    assert results == {"old": "1", "new": "0"}, (proc.stdout, proc.stderr, old_log, new_log, service_log)
    assert "Pre-install handler error" in old_log, old_log
    assert "bundle version 0.0.9 is below the version floor 0.1.0" in service_log, service_log
    assert (tmp_path / "slotB.img").read_bytes() == payload  # the new release was written, by RAUC
    assert (tmp_path / "slotA.img").read_bytes() == bytes(len(payload))


# ------------------------------------------------------------- the stored floor on the data partition
def test_a_higher_stored_floor_wins(tmp_path: Path) -> None:
    shipped, stored = floor_file(tmp_path, "1.2"), floor_file(tmp_path, "1.4", "stored")
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, "1.3.0")), shipped, stored)
    assert proc.returncode == 1
    assert f"bundle version 1.3.0 is below the version floor 1.4 ({stored})" in proc.stderr, proc.stderr
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, "1.4.0", "b2")), shipped, stored)
    assert proc.returncode == 0 and f"floor 1.4 ({stored})" in proc.stderr, proc.stderr


def test_a_lower_or_absent_stored_floor_leaves_the_shipped_one(tmp_path: Path) -> None:
    shipped = floor_file(tmp_path, "1.4")
    for n, stored in enumerate((floor_file(tmp_path, "1.2", "stored"), tmp_path / "absent")):
        proc = run_handler(rauc_env(mounted_bundle(tmp_path, "1.3.0", f"b{n}")), shipped, stored)
        assert proc.returncode == 1 and f"below the version floor 1.4 ({shipped})" in proc.stderr, proc.stderr


def test_a_broken_stored_floor_refuses_with_its_name(tmp_path: Path) -> None:
    stored = floor_file(tmp_path, "garbage", "stored")
    proc = run_handler(rauc_env(mounted_bundle(tmp_path, "99.0")), floor_file(tmp_path, "1.0"), stored)
    assert proc.returncode == 1 and f"'garbage' in {stored} is not one release number" in proc.stderr


def test_raise_only_ever_raises(tmp_path: Path) -> None:
    stored = tmp_path / "data" / "version-floor"
    stored.parent.mkdir()
    proc = raise_floor(floor_file(tmp_path, "1.4", "shipped-1.4"), stored)
    assert proc.returncode == 0 and "raised to 1.4" in proc.stdout, proc.stderr
    assert stored.read_text().splitlines()[-1] == "1.4" and stored.read_text().startswith("# raised")
    proc = raise_floor(floor_file(tmp_path, "1.2", "shipped-1.2"), stored)  # a downgraded release
    assert proc.returncode == 0 and "stays at 1.4" in proc.stdout and stored.read_text().endswith("1.4\n")
    proc = raise_floor(floor_file(tmp_path, "1.10", "shipped-1.10"), stored)
    assert proc.returncode == 0 and stored.read_text().endswith("1.10\n")
    assert sorted(p.name for p in stored.parent.iterdir()) == ["version-floor"]  # no temporary file left


def test_raise_repairs_a_broken_stored_floor_and_needs_its_directory(tmp_path: Path) -> None:
    stored = floor_file(tmp_path, "1.4 1.5", "stored")
    proc = raise_floor(floor_file(tmp_path, "1.2"), stored)
    assert proc.returncode == 0 and "replacing a broken stored floor" in proc.stderr
    assert stored.read_text().endswith("1.2\n")
    proc = raise_floor(floor_file(tmp_path, "1.2"), tmp_path / "not-mounted" / "version-floor")
    assert proc.returncode == 1 and "data partition not mounted?" in proc.stderr
    proc = raise_floor(tmp_path / "missing", stored)
    assert proc.returncode == 1 and "no version floor at" in proc.stderr


def test_no_step_down_through_an_older_floor(tmp_path: Path) -> None:
    """1.5 (floor 1.4) is confirmed; a downgrade to 1.4 (floor 1.2) is allowed, but from there 1.3 is
    still refused: the stored floor remembers 1.4 (with the shipped floor alone 1.3 would go in)."""
    stored = tmp_path / "data" / "version-floor"
    stored.parent.mkdir()
    floor_15, floor_14 = floor_file(tmp_path, "1.4", "floor-of-1.5"), floor_file(tmp_path, "1.2", "floor-of-1.4")
    assert raise_floor(floor_15, stored).returncode == 0  # mark-good of 1.5
    assert run_handler(rauc_env(mounted_bundle(tmp_path, "1.4.0", "b1")), floor_15, stored).returncode == 0
    assert raise_floor(floor_14, stored).returncode == 0  # mark-good of 1.4: the floor stays 1.4
    refused = run_handler(rauc_env(mounted_bundle(tmp_path, "1.3.0", "b2")), floor_14, stored)
    assert refused.returncode == 1 and "below the version floor 1.4" in refused.stderr, refused.stderr
    assert run_handler(rauc_env(mounted_bundle(tmp_path, "1.3.0", "b3")), floor_14).returncode == 0
