"""Small helpers for the updater: crash-safe file replacement, versions, names, board detection."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from edge_assistant.core.errors import UpdateError
from edge_assistant.core.paths import fsync_dir

#: Boards a bundle may declare in ``compatible``. The string is what the device reports (see detect_board).
BOARDS: tuple[str, ...] = ("rpi4", "rpi5", "jetson-orin-nano")

#: Environment variable and file that override board detection (images set one of them).
BOARD_ENV = "EDGE_ASSISTANT_BOARD"
BOARD_FILE = Path("/etc/edge-assistant/board")

_VERSION_RE = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.]+))?$")
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` so that a power cut leaves either the old or the new content, never a mix.

    Write a temporary file in the same directory, fsync it, rename it over the target, fsync the directory.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode)


def atomic_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` (relative) atomically: make a new link, rename it over the old one."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def parse_version(text: object, where: str) -> tuple:
    """``1.2.3`` / ``1.2.3-rc1`` -> a tuple that sorts like the versions (a pre-release before its release)."""
    if not isinstance(text, str):
        raise UpdateError(where, f"expected a version string like '1.2.3', got {text!r}")
    m = _VERSION_RE.match(text)
    if not m:
        raise UpdateError(where, f"expected a version like '1.2.3' or '1.2.3-rc1', got {text!r}")
    nums = tuple(int(g) if g is not None else 0 for g in m.groups()[:4])
    pre = m.group(5)
    # A release sorts after any of its pre-releases: (1,) > (0, "rc1").
    return (*nums, (1,) if pre is None else (0, pre))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``."""
    va, vb = parse_version(a, "version"), parse_version(b, "version")
    return (va > vb) - (va < vb)


def check_relative_name(name: object, where: str) -> str:
    """A payload or member name: relative, ``/``-separated, no ``..``/``.``/empty parts, plain characters."""
    if not isinstance(name, str) or not name:
        raise UpdateError(where, f"expected a non-empty relative path, got {name!r}")
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise UpdateError(where, f"path {name!r} is absolute or has a backslash/NUL; refusing it")
    parts = name.split("/")
    if len(parts) > 16:
        raise UpdateError(where, f"path {name!r} is nested deeper than 16 levels")
    for part in parts:
        if part in ("", ".", ".."):
            raise UpdateError(where, f"path {name!r} has an empty, '.' or '..' component (path traversal)")
        if not _COMPONENT_RE.match(part):
            raise UpdateError(where, f"path component {part!r} of {name!r} has characters outside [A-Za-z0-9._+-]")
    return name


def detect_board(model_file: Path = Path("/proc/device-tree/model"), environ: dict | None = None,
                 board_file: Path = BOARD_FILE) -> str | None:
    """This device's board string, or None when it is none of :data:`BOARDS` (e.g. a dev PC).

    Order: ``$EDGE_ASSISTANT_BOARD``, ``/etc/edge-assistant/board``, then the device-tree model string
    (``Raspberry Pi 4 Model B Rev 1.4``, ``Raspberry Pi 5 Model B``, ``NVIDIA Jetson Orin Nano ...``).
    """
    env = os.environ if environ is None else environ
    for raw, where in ((env.get(BOARD_ENV), f"${BOARD_ENV}"), (_read_text(board_file), str(board_file))):
        if raw:
            board = raw.strip()
            if board not in BOARDS:
                raise UpdateError(where, f"board {board!r} is not one of {', '.join(BOARDS)}")
            return board
    model = (_read_text(model_file) or "").rstrip("\0").strip().lower()
    if model.startswith("raspberry pi 4") or model.startswith("raspberry pi compute module 4"):
        return "rpi4"
    if model.startswith("raspberry pi 5") or model.startswith("raspberry pi compute module 5"):
        return "rpi5"
    if "jetson" in model and "orin nano" in model:
        return "jetson-orin-nano"
    return None


def _read_text(path: Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
