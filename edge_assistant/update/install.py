"""A/B slot installation with a boot counter, mark-good and rollback.

Layout under the update root (``/opt/edge-assistant`` on a device, a temporary directory in tests)::

    status.json        the selection state (schema below), replaced atomically on every change
    current -> slots/a the running slot (``booted``; ``primary`` before the first start); ExecStart uses it
    slots/a/ slots/b/  the two installs; each holds the payloads, ``slot.json`` and, with wheels, ``venv/``
    .lock              flock() so an installer and a boot step never interleave

Life of an update (the application-level equivalent of a bootloader's A/B + boot-count scheme):

``install``  streams and verifies a bundle into a staging dir, renames it over the slot that is NOT
             booted, builds the slot's venv from its wheels, marks it ``pending`` with ``attempts = 0`` and makes it ``primary``.
``boot``     runs before every start of the service (``ExecStartPre=+``). For a pending primary it
             counts one attempt; once ``max_attempts`` starts went by without ``mark-good`` the slot is
             marked ``bad`` and ``primary`` falls back to the other slot (automatic rollback).
``mark-good`` after the health checks pass: the booted slot becomes ``good`` and the anti-rollback
             floor rises to its ``min_version``.
``rollback`` switches ``primary`` to the other good slot by hand (never below the floor).

status.json::

    {"format": 1, "primary": "a"|"b"|null, "booted": "a"|"b"|null, "rollback_floor": "1.2.0"|null,
     "slots": {"a": {"state": "empty"|"pending"|"good"|"bad", "version": ..., "min_version": ...,
                     "attempts": 0, "max_attempts": 3, "installed_at_utc": ..., "manifest_sha256": ...,
                     "key_id": ..., "reason": ...}, "b": {...}},
     "events": [{"time_utc": ..., "event": ...}, ...]}   # the last 20
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_assistant.core.errors import ConfigError, UpdateError
from edge_assistant.core.paths import fsync_dir
from edge_assistant.update._util import atomic_symlink, atomic_write_json, compare_versions, parse_version
from edge_assistant.update.bundle import DeviceContext, Manifest, VerifiedBundle, verify_bundle

log = logging.getLogger(__name__)

SLOTS: tuple[str, str] = ("a", "b")
STATES: tuple[str, ...] = ("empty", "pending", "good", "bad")
STATUS_FORMAT = 1
STATUS_FILE = "status.json"
SLOT_MANIFEST = "slot.json"
_MAX_EVENTS = 20


@dataclass(frozen=True)
class UpdateConfig:
    """Where the slots live and the install policy.

    root_dir: the update root holding ``status.json``, ``current`` and ``slots/``.
    keyring_dir: trusted Ed25519 public keys (``*.pem``); bundles signed by any other key are refused.
    board: this device (rpi4, rpi5, jetson-orin-nano); None = detect (install refuses an unknown board).
    max_boot_attempts: starts a new slot gets without ``mark-good`` before rolling back.
    allow_downgrade: accept a version older than the running one (never one below the rollback floor).
    build_venv: build ``venv/`` in the slot from the bundle's ``wheel`` payloads (``pip --no-index``).
    """

    root_dir: Path
    keyring_dir: Path
    board: str | None = None
    max_boot_attempts: int = 3
    allow_downgrade: bool = False
    build_venv: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_boot_attempts <= 100:
            raise ConfigError(f"max_boot_attempts: expected 1..100, got {self.max_boot_attempts}")


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _empty_slot() -> dict[str, Any]:
    return {"state": "empty", "version": None, "min_version": None, "attempts": 0, "max_attempts": 0,
            "installed_at_utc": None, "manifest_sha256": None, "key_id": None, "reason": None}


def empty_status() -> dict[str, Any]:
    return {"format": STATUS_FORMAT, "primary": None, "booted": None, "rollback_floor": None,
            "slots": {s: _empty_slot() for s in SLOTS}, "events": []}


def other_slot(slot: str) -> str:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


# ------------------------------------------------------------------------------------ state file
class SlotStore:
    """The status file and slot directories under one update root. Use as a context manager (takes the lock)."""

    def __init__(self, root_dir: Path, create: bool = False) -> None:
        self.root = Path(root_dir)
        self.create = create  # only an install may create the root; everything else needs it to exist
        self._lock_fd: int | None = None

    @property
    def status_path(self) -> Path:
        return self.root / STATUS_FILE

    def slot_dir(self, slot: str) -> Path:
        return self.root / "slots" / slot

    def __enter__(self) -> SlotStore:
        if self.create:
            (self.root / "slots").mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise UpdateError(str(self.root), "no such update root; provision the device or pass --root")
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> dict[str, Any]:
        """The status, validated; a fresh root (no file yet) reads as two empty slots."""
        path = self.status_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return empty_status()
        except OSError as exc:
            raise UpdateError(str(path), f"cannot read ({exc.strerror})") from exc
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UpdateError(str(path), f"not valid JSON ({exc}); restore it or re-provision the device") from exc
        return validate_status(doc, str(path))

    def save(self, status: dict[str, Any]) -> None:
        """Write the status atomically, then point ``current`` at the running slot.

        ``current`` follows ``booted`` (the primary only before the first start): a running release
        that opens a file late (a model loaded on first use) must never find the next release's file.
        """
        validate_status(status, "status (about to be written)")
        atomic_write_json(self.status_path, status)
        slot = status["booted"] or status["primary"]
        link = self.root / "current"
        if slot is not None:
            atomic_symlink(link, f"slots/{slot}")
        elif link.is_symlink():
            link.unlink()
            fsync_dir(self.root)


def validate_status(doc: Any, where: str) -> dict[str, Any]:
    """Check the status schema; errors name the key (``status.json:slots.b.state``)."""
    if not isinstance(doc, dict):
        raise UpdateError(where, "expected a JSON object")
    if doc.get("format") != STATUS_FORMAT:
        raise UpdateError(f"{where}:format", f"expected {STATUS_FORMAT}, got {doc.get('format')!r}")
    for key in ("primary", "booted"):
        if doc.get(key) not in (*SLOTS, None):
            raise UpdateError(f"{where}:{key}", f"expected 'a', 'b' or null, got {doc.get(key)!r}")
    if doc.get("rollback_floor") is not None:
        parse_version(doc["rollback_floor"], f"{where}:rollback_floor")
    slots = doc.get("slots")
    if not isinstance(slots, dict) or set(slots) != set(SLOTS):
        raise UpdateError(f"{where}:slots", f"expected an object with keys 'a' and 'b', got {slots!r}")
    for name, slot in slots.items():
        key = f"{where}:slots.{name}"
        if not isinstance(slot, dict):
            raise UpdateError(key, "expected an object")
        if slot.get("state") not in STATES:
            raise UpdateError(f"{key}.state", f"expected one of {', '.join(STATES)}, got {slot.get('state')!r}")
        for int_key in ("attempts", "max_attempts"):
            if not isinstance(slot.get(int_key), int) or slot[int_key] < 0:
                raise UpdateError(f"{key}.{int_key}", f"expected an integer >= 0, got {slot.get(int_key)!r}")
        if slot["state"] != "empty":
            parse_version(slot.get("version"), f"{key}.version")
    if doc.get("primary") is not None and slots[doc["primary"]]["state"] == "empty":
        raise UpdateError(f"{where}:primary", f"points at slot {doc['primary']}, which is empty")
    if not isinstance(doc.get("events"), list):
        raise UpdateError(f"{where}:events", "expected a list")
    return doc


def _event(status: dict[str, Any], text: str) -> None:
    log.info("update: %s", text)
    status["events"] = [*status["events"], {"time_utc": _utc_now(), "event": text}][-_MAX_EVENTS:]


def running_version(status: Mapping[str, Any]) -> str | None:
    """The version in the booted slot (or the primary one before the first boot)."""
    slot = status.get("booted") or status.get("primary")
    return None if slot is None else status["slots"][slot]["version"]


# -------------------------------------------------------------------------------------- install
@dataclass(frozen=True)
class InstallResult:
    slot: str
    version: str
    slot_dir: Path
    verified: VerifiedBundle


def install_bundle(
    bundle: Path,
    config: UpdateConfig,
    *,
    keyring: Mapping[str, Any],
    progress: Callable[[int], None] | None = None,
) -> InstallResult:
    """Verify ``bundle`` while streaming it into the inactive slot; make that slot the pending primary.

    The booted slot is never written. A failure at any point leaves the status file as it was (apart
    from the target slot being marked ``empty`` if its old content was already removed).
    """
    if config.board is None:
        raise ConfigError("board: unknown for this device; set $EDGE_ASSISTANT_BOARD or /etc/edge-assistant/board")
    with SlotStore(config.root_dir, create=True) as store:
        status = store.load()
        target = _target_slot(status)
        device = DeviceContext(board=config.board, running_version=running_version(status),
                               rollback_floor=status["rollback_floor"], allow_downgrade=config.allow_downgrade)
        slot_dir = store.slot_dir(target)
        staging = slot_dir.with_name(f".{target}.staging")
        _remove_tree(staging)
        staging.mkdir(parents=True)
        try:
            verified = verify_bundle(bundle, keyring, device, extract_to=staging, progress=progress)
        except BaseException:
            _remove_tree(staging)
            raise

        # The bundle is good; the old content of the target slot goes now. Record that first, so a power
        # cut between here and the end never leaves status.json describing a slot that is not there.
        if status["slots"][target]["state"] != "empty":
            status["slots"][target] = _empty_slot()
            if status["primary"] == target:
                status["primary"] = other_slot(target) if status["slots"][other_slot(target)]["state"] != "empty" else None
            store.save(status)
        _remove_tree(slot_dir)
        os.replace(staging, slot_dir)
        try:
            # The venv is built at its final path: venvs embed absolute paths (script shebangs).
            if config.build_venv and any(p.kind == "wheel" for p in verified.manifest.payloads):
                _build_venv(slot_dir, verified.manifest)
            (slot_dir / SLOT_MANIFEST).write_bytes(verified.manifest.to_json_bytes())
            _fsync_tree(slot_dir)
        except BaseException:
            _remove_tree(slot_dir)
            fsync_dir(slot_dir.parent)
            raise

        m = verified.manifest
        status["slots"][target] = {
            "state": "pending", "version": m.version, "min_version": m.min_version, "attempts": 0,
            "max_attempts": config.max_boot_attempts, "installed_at_utc": _utc_now(),
            "manifest_sha256": verified.manifest_sha256, "key_id": verified.key_id, "reason": None,
        }
        status["primary"] = target
        _event(status, f"installed {m.version} into slot {target} (pending; {config.max_boot_attempts} boot attempts)")
        store.save(status)
    return InstallResult(target, m.version, slot_dir, verified)


def _target_slot(status: Mapping[str, Any]) -> str:
    """The slot an install may overwrite: never the booted one; before any boot, not the primary one."""
    busy = status["booted"] or status["primary"]
    return SLOTS[0] if busy is None else other_slot(busy)


def _build_venv(slot_dir: Path, manifest: Manifest) -> None:
    """Create ``venv/`` in the slot and install the bundle's wheels offline (its wheelhouse)."""
    wheels = [slot_dir / p.name for p in manifest.payloads if p.kind == "wheel" and p.name.endswith(".whl")]
    if not wheels:
        raise UpdateError("manifest.json:payloads", "has 'wheel' payloads but none ends in .whl")
    venv = slot_dir / "venv"
    # The slot's own interpreter must match the device's Python; the venv is built by the agent's one.
    # No pip inside the slot (it is never changed in place): the agent's pip installs into it.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "creating the slot's venv")
    find_links = sorted({str(w.parent) for w in wheels})
    cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-index",
           "--no-cache-dir", "--disable-pip-version-check", "--quiet"]
    for d in find_links:
        cmd += ["--find-links", d]
    # Install the project itself; its dependencies resolve from the same wheelhouse, never the network.
    own = [w for w in wheels if w.name.startswith("edge_assistant-")] or wheels
    _run(cmd + [str(w) for w in own], "installing the bundle's wheels into the slot's venv")


def _run(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise UpdateError(cmd[0], f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


# ------------------------------------------------------------------------ boot, mark-good, rollback
@dataclass(frozen=True)
class BootDecision:
    slot: str
    version: str
    attempt: int  # 0 when the slot is already good
    rolled_back_from: str | None = None


def boot(root_dir: Path) -> BootDecision:
    """Count a start of the service and pick the slot to run (call before every start).

    A pending primary that has used up its attempts is marked bad and the other good slot becomes
    primary. With no good slot to fall back on the pending one keeps running (nothing better exists);
    that is logged as an error and recorded.
    """
    with SlotStore(root_dir) as store:
        status = store.load()
        primary = status["primary"]
        if primary is None:
            raise UpdateError(str(store.status_path), "no slot holds an install; run 'edge-assistant update install' first")
        rolled_back_from = None
        slot = status["slots"][primary]
        if slot["state"] == "pending" and slot["attempts"] >= slot["max_attempts"]:
            fallback = other_slot(primary)
            if status["slots"][fallback]["state"] == "good":
                slot["state"] = "bad"
                slot["reason"] = f"{slot['attempts']} starts without mark-good"
                _event(status, f"slot {primary} ({slot['version']}) failed {slot['attempts']} starts; "
                               f"rolled back to slot {fallback} ({status['slots'][fallback]['version']})")
                status["primary"] = primary = fallback
                rolled_back_from = other_slot(fallback)
                slot = status["slots"][primary]
            else:
                log.error("slot %s failed %d starts and there is no good slot to roll back to; starting it again",
                          primary, slot["attempts"])
                slot["reason"] = "attempts used up, no good fallback slot"
        if slot["state"] == "bad":
            # A primary marked bad by hand (rollback with no other good slot) still runs if it is all we have.
            log.error("primary slot %s is marked bad (%s); starting it anyway", primary, slot["reason"])
        if slot["state"] == "pending":
            slot["attempts"] += 1
            _event(status, f"start {slot['attempts']}/{slot['max_attempts']} of pending slot {primary} ({slot['version']})")
        status["booted"] = primary
        store.save(status)
        return BootDecision(primary, slot["version"], slot["attempts"] if slot["state"] == "pending" else 0,
                            rolled_back_from)


HealthCheck = Callable[[Path], None]  # raises UpdateError with a reason when the slot is unhealthy


def check_slot_files(slot_dir: Path) -> None:
    """Health check: every payload in the slot still has the size and SHA-256 of its signed manifest."""
    manifest_path = slot_dir / SLOT_MANIFEST
    try:
        manifest = Manifest.from_json_bytes(manifest_path.read_bytes(), str(manifest_path))
    except OSError as exc:
        raise UpdateError(str(manifest_path), f"cannot read ({exc.strerror})") from exc
    for p in manifest.payloads:
        path = slot_dir / p.name
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise UpdateError(str(path), f"payload cannot be read ({exc.strerror})") from exc
        if h.hexdigest() != p.sha256:
            raise UpdateError(str(path), "payload changed since install (SHA-256 differs from the signed manifest)")


def command_check(cmd: Sequence[str], timeout_s: float = 60.0) -> HealthCheck:
    """A health check that runs ``cmd`` (e.g. ``systemctl is-active edge-assistant``) and wants exit 0."""

    def check(_slot_dir: Path) -> None:
        try:
            proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpdateError(f"health check {' '.join(cmd)}", f"could not run ({exc})") from exc
        if proc.returncode != 0:
            out = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise UpdateError(f"health check {' '.join(cmd)}", f"exit {proc.returncode} {out[0]}".strip())

    return check


def parse_unit_health(show_output: str, unit: str) -> None:
    """Judge ``systemctl show -p ActiveState -p SubState -p NRestarts UNIT`` output; raise when unhealthy.

    Healthy: active/running and not restarted since it was started (``NRestarts=0``).
    """
    props = dict(line.split("=", 1) for line in show_output.splitlines() if "=" in line)
    where = f"health check {unit}"
    for key in ("ActiveState", "SubState", "NRestarts"):
        if key not in props:
            raise UpdateError(where, f"systemctl show gave no {key}; output was {show_output!r}")
    if (props["ActiveState"], props["SubState"]) != ("active", "running"):
        raise UpdateError(where, f"is {props['ActiveState']}/{props['SubState']}, expected active/running")
    if props["NRestarts"] != "0":
        raise UpdateError(where, f"restarted {props['NRestarts']} times since it started (crash or watchdog)")


def unit_check(unit: str) -> HealthCheck:
    """A health check that asks systemd whether ``unit`` is running and has not been restarted."""

    def check(_slot_dir: Path) -> None:
        cmd = ["systemctl", "show", "-p", "ActiveState", "-p", "SubState", "-p", "NRestarts", unit]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpdateError(f"health check {unit}", f"cannot ask systemd ({exc})") from exc
        if proc.returncode != 0:
            raise UpdateError(f"health check {unit}", f"systemctl show failed: {proc.stderr.strip()}")
        parse_unit_health(proc.stdout, unit)

    return check


def mark_good(root_dir: Path, checks: Sequence[HealthCheck] = (check_slot_files,)) -> dict[str, Any]:
    """Run the health checks on the booted slot; when all pass, mark it good and raise the rollback floor."""
    with SlotStore(root_dir) as store:
        status = store.load()
        booted = status["booted"]
        if booted is None:
            raise UpdateError(f"{store.status_path}:booted", "no slot has been started yet; nothing to mark good")
        slot = status["slots"][booted]
        if slot["state"] == "empty":
            raise UpdateError(f"{store.status_path}:slots.{booted}", "booted slot is empty")
        for check in checks:
            check(store.slot_dir(booted))
        changed = slot["state"] != "good"
        slot["state"], slot["attempts"], slot["reason"] = "good", 0, None
        floor = status["rollback_floor"]
        if slot["min_version"] and (floor is None or compare_versions(slot["min_version"], floor) > 0):
            status["rollback_floor"] = slot["min_version"]
            changed = True
            _event(status, f"anti-rollback floor raised to {slot['min_version']}")
        if changed:
            _event(status, f"slot {booted} ({slot['version']}) marked good")
            store.save(status)
        return status


def rollback(root_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Make the other slot primary (it must hold a good install at or above the rollback floor).

    The slot left behind is marked bad. ``force`` also accepts a pending or bad other slot, never one
    below the floor and never an empty one. Takes effect at the next start of the service.
    """
    with SlotStore(root_dir) as store:
        status = store.load()
        current = status["booted"] or status["primary"]
        if current is None:
            raise UpdateError(f"{store.status_path}:primary", "no slot holds an install; nothing to roll back")
        target = other_slot(current)
        tslot = status["slots"][target]
        where = f"{store.status_path}:slots.{target}"
        if tslot["state"] == "empty":
            raise UpdateError(where, "is empty; there is nothing to roll back to")
        if tslot["state"] != "good" and not force:
            raise UpdateError(where, f"is {tslot['state']}, not good; use --force to switch to it anyway")
        floor = status["rollback_floor"]
        if floor is not None and compare_versions(tslot["version"], floor) < 0:
            raise UpdateError(where, f"holds {tslot['version']}, below the anti-rollback floor {floor}; refusing")
        cslot = status["slots"][current]
        cslot["state"], cslot["reason"] = "bad", "rolled back by hand"
        if tslot["state"] != "good":
            tslot["attempts"] = 0
        status["primary"] = target
        _event(status, f"rollback: slot {current} ({cslot['version']}) -> slot {target} ({tslot['version']})")
        store.save(status)
        return status


def read_status(root_dir: Path) -> dict[str, Any]:
    """The current status (with the lock, so it is never read half-way through a change)."""
    with SlotStore(root_dir) as store:
        return copy.deepcopy(store.load())


def install_from_spool(spool_dir: Path, config: UpdateConfig, *, keyring: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Install the ``*.eab`` bundles dropped into ``spool_dir`` (oldest first); move each to done/ or rejected/.

    One bad bundle does not stop the others; each result names the bundle and the error.
    """
    spool_dir = Path(spool_dir)
    results = []
    bundles = sorted(spool_dir.glob("*.eab"), key=lambda p: (p.stat().st_mtime, p.name))
    for bundle in bundles:
        try:
            res = install_bundle(bundle, config, keyring=keyring)
        except (UpdateError, ConfigError) as exc:
            log.error("rejected %s: %s", bundle.name, exc)
            results.append({"bundle": bundle.name, "ok": False, "error": str(exc)})
            _move(bundle, spool_dir / "rejected")
        else:
            results.append({"bundle": bundle.name, "ok": True, "slot": res.slot, "version": res.version})
            _move(bundle, spool_dir / "done")
    return results


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / path.name)
