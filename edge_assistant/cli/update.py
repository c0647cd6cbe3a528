"""``edge-assistant update``: signed update bundles and A/B slots (keygen, build, verify, install, ...)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from edge_assistant.cli._common import write_json

DEFAULT_ROOT = "/opt/edge-assistant"
DEFAULT_KEYRING = "/etc/edge-assistant/keyring"
ROOT_ENV = "EDGE_ASSISTANT_UPDATE_ROOT"
KEYRING_ENV = "EDGE_ASSISTANT_KEYRING"


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "signed update bundles and A/B slot installs"
    p = subparsers.add_parser("update", help=help_text, description=help_text)
    sub = p.add_subparsers(dest="update_command", metavar="COMMAND")
    p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])

    def json_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="machine-readable output to FILE (stdout when FILE is omitted)")

    def root_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)),
                        help=f"update root with status.json and slots/ (default ${ROOT_ENV} or {DEFAULT_ROOT})")

    def keyring_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--keyring", type=Path, default=Path(os.environ.get(KEYRING_ENV, DEFAULT_KEYRING)),
                        help=f"directory of trusted Ed25519 public keys (default ${KEYRING_ENV} or {DEFAULT_KEYRING})")

    def board_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--board", default="auto",
                        help="this device's board (rpi4, rpi5, jetson-orin-nano); 'auto' detects it (default)")

    sp = sub.add_parser("keygen", help="make an Ed25519 signing key pair",
                        description="Write a new Ed25519 signing key (PKCS#8 PEM, 0600) and its public key.")
    sp.add_argument("--private", type=Path, required=True, help="signing key to write (refuses to overwrite)")
    sp.add_argument("--public", type=Path, required=True, help="public key to write (put it in the device keyring)")
    sp.add_argument("--passphrase-env", metavar="VAR", help="encrypt the signing key with the passphrase in $VAR")
    json_opt(sp)
    sp.set_defaults(func=_keygen)

    sp = sub.add_parser("build", help="build and sign a bundle",
                        description="Build a signed bundle from payload files and directories.")
    sp.add_argument("-o", "--output", type=Path, required=True, help="bundle to write (*.eab)")
    sp.add_argument("--version", dest="bundle_version", required=True, help="release version, e.g. 1.4.0")
    sp.add_argument("--board", action="append", required=True, dest="boards",
                    help="compatible board (repeat): rpi4, rpi5, jetson-orin-nano")
    sp.add_argument("--key", type=Path, required=True, help="Ed25519 signing key (PEM)")
    sp.add_argument("--passphrase-env", metavar="VAR", help="the signing key's passphrase is in $VAR")
    sp.add_argument("--add", action="append", default=[], metavar="KIND:SRC[:DEST]", required=True,
                    help="payload file or directory; KIND is wheel, models, config, systemd or file (repeat)")
    sp.add_argument("--min-version", help="anti-rollback: once this release is marked good, refuse anything older")
    sp.add_argument("--description", default="", help="free text stored in the manifest")
    json_opt(sp)
    sp.set_defaults(func=_build)

    sp = sub.add_parser("verify", help="check a bundle's signature, payloads and compatibility",
                        description="Check signature, every payload hash and size, the board and, with --root,"
                                    " anti-rollback against the device's state.")
    sp.add_argument("bundle", type=Path)
    keyring_opt(sp)
    sp.add_argument("--board", default="auto", help="board to check against; 'auto' detects it, 'any' skips")
    sp.add_argument("--root", type=Path, help="also check anti-rollback/downgrade against this update root")
    json_opt(sp)
    sp.set_defaults(func=_verify)

    sp = sub.add_parser("inspect", help="show a bundle's manifest (signature NOT checked)",
                        description="Print the manifest of a bundle without verifying it.")
    sp.add_argument("bundle", type=Path)
    json_opt(sp)
    sp.set_defaults(func=_inspect)

    sp = sub.add_parser("install", help="verify and install a bundle into the inactive slot",
                        description="Stream-verify a bundle into the slot that is not running and make it the"
                                    " pending primary; it becomes permanent after 'mark-good'.")
    sp.add_argument("bundle", type=Path, nargs="?", help="the bundle (or use --spool)")
    sp.add_argument("--spool", type=Path, help="install every *.eab in this directory (moved to done/ or rejected/)")
    root_opt(sp)
    keyring_opt(sp)
    board_opt(sp)
    sp.add_argument("--max-attempts", type=int, default=3, help="starts without mark-good before rollback (3)")
    sp.add_argument("--allow-downgrade", action="store_true", help="accept an older version (never below the floor)")
    sp.add_argument("--no-venv", action="store_true", help="do not build the slot's venv from wheel payloads")
    json_opt(sp)
    sp.set_defaults(func=_install)

    sp = sub.add_parser("status", help="show the A/B slot state", description="Show the A/B slot state.")
    root_opt(sp)
    json_opt(sp)
    sp.set_defaults(func=_status)

    sp = sub.add_parser("boot", help="count a start and pick the slot (ExecStartPre of the service)",
                        description="Count one start of the service; roll back a pending slot that used up"
                                    " its attempts. Run before every start (ExecStartPre=+).")
    root_opt(sp)
    json_opt(sp)
    sp.set_defaults(func=_boot)

    sp = sub.add_parser("mark-good", help="run health checks and confirm the running slot",
                        description="Run the health checks; when they pass, mark the booted slot good and"
                                    " raise the anti-rollback floor.")
    root_opt(sp)
    sp.add_argument("--check", action="append", default=[], metavar="CMD",
                    help="extra health check command that must exit 0 (repeat), e.g."
                         " 'systemctl is-active --quiet edge-assistant.service'")
    sp.add_argument("--unit", action="append", default=[], metavar="UNIT",
                    help="systemd unit that must be active/running with no restart since it started (repeat)")
    sp.add_argument("--no-file-check", action="store_true", help="skip re-hashing the slot's payloads")
    json_opt(sp)
    sp.set_defaults(func=_mark_good)

    sp = sub.add_parser("rollback", help="switch to the other slot",
                        description="Make the other (good) slot primary; effective at the next start.")
    root_opt(sp)
    sp.add_argument("--force", action="store_true", help="also switch to a pending or bad slot")
    json_opt(sp)
    sp.set_defaults(func=_rollback)


def _passphrase(var: str | None) -> bytes | None:
    from edge_assistant.core.errors import ConfigError

    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise ConfigError(f"--passphrase-env {var}: the variable is not set or empty")
    return value.encode()


def _emit(args: argparse.Namespace, data: Any, lines: list[str]) -> None:
    if args.json:
        write_json(data, args.json)
    if args.json != "-":
        for line in lines:
            print(line)


def _resolve_board(value: str | None) -> str | None:
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.update._util import BOARDS, detect_board

    if value in (None, "any"):
        return None
    if value == "auto":
        return detect_board()
    if value not in BOARDS:
        raise ConfigError(f"--board {value}: expected one of {', '.join(BOARDS)}, 'auto' or 'any'")
    return value


def _keygen(args: argparse.Namespace) -> int:
    from edge_assistant.update.bundle import generate_keypair

    kid = generate_keypair(args.private, args.public, _passphrase(args.passphrase_env))
    _emit(args, {"key_id": kid, "private": str(args.private), "public": str(args.public)},
          [f"key {kid}: signing key {args.private} (keep it off the device), public key {args.public}"])
    return 0


def _build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_assistant.core.errors import ConfigError
    from edge_assistant.update.bundle import build_bundle, collect_payloads, load_private_key

    sources = []
    for spec in args.add:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ConfigError(f"--add {spec!r}: expected KIND:SRC or KIND:SRC:DEST")
        sources += collect_payloads(parts[0], Path(parts[1]), parts[2] if len(parts) == 3 else None)
    key = load_private_key(args.key, _passphrase(args.passphrase_env))
    total = sum(s.path.stat().st_size for s in sources)
    with tqdm(total=total, unit="B", unit_scale=True, desc="build", file=sys.stderr, disable=None) as bar:
        manifest = build_bundle(args.output, sources, version=args.bundle_version, compatible=args.boards,
                                private_key=key, min_version=args.min_version, description=args.description,
                                progress=bar.update)
    data = {"bundle": str(args.output), "version": manifest.version, "compatible": list(manifest.compatible),
            "payloads": len(manifest.payloads), "payload_bytes": manifest.total_size_bytes,
            "min_version": manifest.min_version}
    _emit(args, data, [f"{args.output}: {manifest.version} for {', '.join(manifest.compatible)},"
                       f" {len(manifest.payloads)} payloads, {manifest.total_size_bytes} bytes"])
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge_assistant.update.bundle import DeviceContext, load_keyring, verify_bundle
    from edge_assistant.update.install import read_status, running_version

    board = _resolve_board(args.board)
    device = DeviceContext(board=board)
    if args.root is not None:
        status = read_status(args.root)
        device = DeviceContext(board=board, running_version=running_version(status),
                               rollback_floor=status["rollback_floor"])
    v = verify_bundle(args.bundle, load_keyring(args.keyring), device)
    checks = list(v.checks) + ([] if board else ["board: not checked (unknown board or --board any)"])
    data = {"bundle": str(args.bundle), "ok": True, "version": v.manifest.version, "key_id": v.key_id,
            "compatible": list(v.manifest.compatible), "manifest_sha256": v.manifest_sha256, "checks": checks}
    _emit(args, data, [f"{args.bundle}: OK ({v.manifest.version})", *(f"  {c}" for c in checks)])
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import json

    from edge_assistant.update.bundle import inspect_bundle

    manifest, kid = inspect_bundle(args.bundle)
    data = {"verified": False, "key_id": kid, "manifest": json.loads(manifest.to_json_bytes())}
    lines = [f"{args.bundle}: {manifest.version} for {', '.join(manifest.compatible)}, built"
             f" {manifest.build_time_utc}, signed by key {kid} (NOT verified)"]
    if manifest.min_version:
        lines.append(f"  anti-rollback min_version {manifest.min_version}")
    lines += [f"  {p.kind:8s} {p.size_bytes:>12d}  {p.sha256[:16]}  {p.name}" for p in manifest.payloads]
    _emit(args, data, lines)
    return 0


def _install(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_assistant.core.errors import ConfigError
    from edge_assistant.update.bundle import load_keyring
    from edge_assistant.update.install import UpdateConfig, install_bundle, install_from_spool

    if (args.bundle is None) == (args.spool is None):
        raise ConfigError("install: give either a BUNDLE or --spool DIR")
    config = UpdateConfig(root_dir=args.root, keyring_dir=args.keyring, board=_resolve_board(args.board),
                          max_boot_attempts=args.max_attempts, allow_downgrade=args.allow_downgrade,
                          build_venv=not args.no_venv)
    keyring = load_keyring(args.keyring)
    if args.spool is not None:
        results = install_from_spool(args.spool, config, keyring=keyring)
        _emit(args, {"results": results},
              [f"{r['bundle']}: " + (f"slot {r['slot']} {r['version']}" if r["ok"] else f"REJECTED {r['error']}")
               for r in results] or [f"{args.spool}: no *.eab bundle"])
        return 0 if all(r["ok"] for r in results) else 1
    with tqdm(total=args.bundle.stat().st_size, unit="B", unit_scale=True, desc="install",
              file=sys.stderr, disable=None) as bar:
        res = install_bundle(args.bundle, config, keyring=keyring, progress=bar.update)
    data = {"bundle": str(args.bundle), "slot": res.slot, "version": res.version, "slot_dir": str(res.slot_dir),
            "checks": list(res.verified.checks)}
    _emit(args, data, [f"installed {res.version} into slot {res.slot} ({res.slot_dir}); pending until mark-good"])
    return 0


def _status_lines(status: dict[str, Any]) -> list[str]:
    lines = [f"primary: {status['primary']}  booted: {status['booted']}  rollback floor: {status['rollback_floor']}"]
    for name, s in status["slots"].items():
        extra = f" attempts {s['attempts']}/{s['max_attempts']}" if s["state"] == "pending" else ""
        reason = f" ({s['reason']})" if s.get("reason") else ""
        lines.append(f"  slot {name}: {s['state']:7s} {s['version'] or '-'}{extra}{reason}")
    lines += [f"  {e['time_utc']} {e['event']}" for e in status["events"][-5:]]
    return lines


def _status(args: argparse.Namespace) -> int:
    from edge_assistant.update.install import read_status

    status = read_status(args.root)
    _emit(args, status, _status_lines(status))
    return 0


def _boot(args: argparse.Namespace) -> int:
    from edge_assistant.update.install import boot

    d = boot(args.root)
    data = {"slot": d.slot, "version": d.version, "attempt": d.attempt, "rolled_back_from": d.rolled_back_from}
    msg = f"starting slot {d.slot} ({d.version})"
    if d.attempt:
        msg += f", attempt {d.attempt} before mark-good"
    if d.rolled_back_from:
        msg += f"; rolled back from slot {d.rolled_back_from}"
    _emit(args, data, [msg])
    return 0


def _mark_good(args: argparse.Namespace) -> int:
    import shlex

    from edge_assistant.update.install import check_slot_files, command_check, mark_good, unit_check

    checks = [] if args.no_file_check else [check_slot_files]
    checks += [unit_check(u) for u in args.unit]
    checks += [command_check(shlex.split(c)) for c in args.check]
    status = mark_good(args.root, checks)
    _emit(args, status, [f"slot {status['booted']} marked good", *_status_lines(status)])
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from edge_assistant.update.install import rollback

    status = rollback(args.root, force=args.force)
    _emit(args, status, [f"primary is now slot {status['primary']}; restart the service to use it",
                         *_status_lines(status)])
    return 0
