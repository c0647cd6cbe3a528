"""Signed update bundles: build, verify, inspect.

A bundle (``*.eab``) is an uncompressed POSIX tar whose members come in a fixed order, so a device can
check it in one streaming pass with bounded memory:

1. ``manifest.json``: what the bundle is (see :class:`Manifest`): version, compatible boards, build time,
   optional anti-rollback ``min_version``, and every payload with its SHA-256 and size.
2. ``manifest.sig``: JSON ``{"algorithm": "ed25519", "key_id": ..., "signature": base64}`` over the exact
   bytes of ``manifest.json``.
3. ``payloads/<name>``: the payloads, in manifest order (a wheelhouse, the model cache, config files,
   systemd units). Regular files only.

Trust flows one way: the signature is checked against a keyring of Ed25519 public keys *before* the
manifest is parsed; every payload is then checked against the signed hash and size while it streams
past. Nothing from the archive is ever extracted by name through ``tarfile``: members are copied by
this module into a staging directory under names it has validated, so ``../`` members, symlinks,
hard links and device nodes are refused, each with an error naming the member.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edge_assistant.core.errors import ConfigError, UpdateError
from edge_assistant.update._util import (
    BOARDS,
    atomic_write_bytes,
    check_relative_name,
    compare_versions,
    parse_version,
)

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
PRODUCT = "edge-assistant"
MANIFEST_MEMBER = "manifest.json"
SIGNATURE_MEMBER = "manifest.sig"
PAYLOAD_PREFIX = "payloads/"
#: What a payload is for; the installer treats ``wheel`` specially (it builds the slot's venv from them).
KINDS: tuple[str, ...] = ("wheel", "models", "config", "systemd", "file")

_MAX_MANIFEST_BYTES = 1 << 20
_MAX_SIGNATURE_BYTES = 4096
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------- keys
def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("update bundles need the 'cryptography' package: pip install cryptography") from exc
    return ed25519, serialization, InvalidSignature


def key_id(public_key: Any) -> str:
    """A short stable name for a public key: the first 16 hex digits of SHA-256 of its 32 raw bytes."""
    _, serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(private_path: Path, public_path: Path, passphrase: bytes | None = None) -> str:
    """Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key (PEM); return its key id.

    Refuses to overwrite an existing private key.
    """
    ed25519, serialization, _ = _crypto()
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.exists():
        raise ConfigError(f"{private_path}: exists; refusing to overwrite a signing key")
    key = ed25519.Ed25519PrivateKey.generate()
    enc = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key()
    public_path.write_bytes(
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(pub)


def load_private_key(path: Path, passphrase: bytes | None = None) -> Any:
    """An Ed25519 private key from a PEM file; the error names the file."""
    ed25519, serialization, _ = _crypto()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"signing key {path}: cannot read ({exc.strerror})") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"signing key {path}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def load_public_key(path: Path) -> Any:
    ed25519, serialization, _ = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"public key {path}: cannot read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigError(f"public key {path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"public key {path}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def load_keyring(directory: Path) -> dict[str, Any]:
    """Trusted public keys: every ``*.pem``/``*.pub`` file in ``directory``, by key id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"keyring {directory}: not a directory of trusted *.pem/*.pub public keys")
    keys: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix in (".pem", ".pub") and path.is_file():
            key = load_public_key(path)
            keys[key_id(key)] = key
    if not keys:
        raise ConfigError(f"keyring {directory}: holds no *.pem/*.pub public key; nothing could verify a bundle")
    return keys


# ------------------------------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class Payload:
    """One file of the bundle. ``name`` is relative to the slot directory it is installed into."""

    name: str
    kind: str
    sha256: str
    size_bytes: int
    executable: bool = False  # installed 0755 instead of 0644 (signed, unlike the tar header's mode)


@dataclass(frozen=True)
class Manifest:
    """The signed description of a bundle."""

    version: str
    compatible: tuple[str, ...]
    build_time_utc: str
    payloads: tuple[Payload, ...]
    min_version: str | None = None  # anti-rollback: once installed and marked good, never go below this
    product: str = PRODUCT
    format: int = BUNDLE_FORMAT
    description: str = ""

    def to_json_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "format": self.format,
            "product": self.product,
            "version": self.version,
            "compatible": list(self.compatible),
            "build_time_utc": self.build_time_utc,
            "description": self.description,
            "payloads": [
                {"name": p.name, "kind": p.kind, "sha256": p.sha256, "size_bytes": p.size_bytes,
                 **({"executable": True} if p.executable else {})}
                for p in self.payloads
            ],
        }
        if self.min_version is not None:
            doc["min_version"] = self.min_version
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @property
    def total_size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.payloads)

    @classmethod
    def from_json_bytes(cls, data: bytes, where: str = MANIFEST_MEMBER) -> Manifest:
        """Parse and validate; every error names the key (``manifest.json:payloads[2].sha256``)."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UpdateError(where, f"not valid UTF-8 JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise UpdateError(where, "expected a JSON object")

        def get(key: str, typ: type | tuple[type, ...], required: bool = True) -> Any:
            if key not in doc:
                if required:
                    raise UpdateError(f"{where}:{key}", "missing")
                return None
            value = doc[key]
            if not isinstance(value, typ) or isinstance(value, bool):
                raise UpdateError(f"{where}:{key}", f"expected {_typename(typ)}, got {value!r}")
            return value

        fmt = get("format", int)
        if fmt != BUNDLE_FORMAT:
            raise UpdateError(f"{where}:format", f"bundle format {fmt} is not supported (this updater reads {BUNDLE_FORMAT})")
        product = get("product", str)
        if product != PRODUCT:
            raise UpdateError(f"{where}:product", f"bundle is for {product!r}, expected {PRODUCT!r}")
        version = get("version", str)
        vkey = parse_version(version, f"{where}:version")
        min_version = get("min_version", str, required=False)
        if min_version is not None and parse_version(min_version, f"{where}:min_version") > vkey:
            raise UpdateError(f"{where}:min_version", f"{min_version} is newer than the bundle's own version {version}")
        compatible = get("compatible", list)
        if not compatible:
            raise UpdateError(f"{where}:compatible", "empty; expected at least one of " + ", ".join(BOARDS))
        for i, board in enumerate(compatible):
            if board not in BOARDS:
                raise UpdateError(f"{where}:compatible[{i}]", f"{board!r} is not one of {', '.join(BOARDS)}")
        build_time = get("build_time_utc", str)
        _check_utc(build_time, f"{where}:build_time_utc")
        description = get("description", str, required=False) or ""
        payloads = []
        seen: set[str] = set()
        for i, item in enumerate(get("payloads", list)):
            key = f"{where}:payloads[{i}]"
            if not isinstance(item, dict):
                raise UpdateError(key, f"expected an object, got {item!r}")
            for field_name, typ in (("name", str), ("kind", str), ("sha256", str), ("size_bytes", int)):
                if not isinstance(item.get(field_name), typ) or isinstance(item.get(field_name), bool):
                    raise UpdateError(f"{key}.{field_name}", f"expected {_typename(typ)}, got {item.get(field_name)!r}")
            name = check_relative_name(item["name"], f"{key}.name")
            if name in seen:
                raise UpdateError(f"{key}.name", f"{name!r} is listed twice")
            seen.add(name)
            if item["kind"] not in KINDS:
                raise UpdateError(f"{key}.kind", f"{item['kind']!r} is not one of {', '.join(KINDS)}")
            digest = item["sha256"]
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise UpdateError(f"{key}.sha256", f"expected 64 lower-case hex digits, got {digest!r}")
            if item["size_bytes"] < 0:
                raise UpdateError(f"{key}.size_bytes", f"expected >= 0, got {item['size_bytes']}")
            executable = item.get("executable", False)
            if not isinstance(executable, bool):
                raise UpdateError(f"{key}.executable", f"expected true or false, got {executable!r}")
            payloads.append(Payload(name, item["kind"], digest, item["size_bytes"], executable))
        return cls(
            version=version,
            compatible=tuple(compatible),
            build_time_utc=build_time,
            payloads=tuple(payloads),
            min_version=min_version,
            product=product,
            format=fmt,
            description=description,
        )


def _typename(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, t.__name__) for t in typ)
    return names.get(typ, typ.__name__)


def _check_utc(text: str, where: str) -> None:
    try:
        time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise UpdateError(where, f"expected UTC time like 2026-01-31T12:00:00Z, got {text!r}") from exc


def _utc(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


# -------------------------------------------------------------------------------------------- build
@dataclass(frozen=True)
class PayloadSource:
    """A file to put into a bundle under ``name`` (relative to the slot)."""

    path: Path
    name: str
    kind: str
    executable: bool = False


def collect_payloads(kind: str, src: Path, dest: str | None = None) -> list[PayloadSource]:
    """Payload sources for a file or a directory tree (regular files only, sorted).

    A file goes to ``<dest or kind>/<file name>``; a directory's files to ``<dest or kind>/<relative path>``.
    """
    if kind not in KINDS:
        raise ConfigError(f"payload kind {kind!r}: expected one of {', '.join(KINDS)}")
    src = Path(src)
    prefix = check_relative_name(dest or kind, f"payload {kind}:{src} destination")
    if src.is_symlink() or not src.exists():
        raise ConfigError(f"payload {kind}:{src}: not a regular file or directory")
    if src.is_file():
        return [PayloadSource(src, check_relative_name(f"{prefix}/{src.name}", str(src)), kind, _is_exec(src))]
    out = []
    for path in sorted(src.rglob("*")):
        if path.is_symlink():
            raise ConfigError(f"payload {kind}:{path}: is a symlink; bundles carry regular files only")
        if path.is_file():
            rel = path.relative_to(src).as_posix()
            out.append(PayloadSource(path, check_relative_name(f"{prefix}/{rel}", str(path)), kind, _is_exec(path)))
    if not out:
        raise ConfigError(f"payload {kind}:{src}: directory holds no files")
    return out


def _is_exec(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class _HashingReader(io.RawIOBase):
    """Wraps a file; hashes what tarfile reads from it (to catch a file changed during the build)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.sha.update(data)
        return data


def build_bundle(
    out_path: Path,
    payloads: Iterable[PayloadSource],
    *,
    version: str,
    compatible: Iterable[str],
    private_key: Any,
    min_version: str | None = None,
    build_time_s: float | None = None,
    description: str = "",
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Write a signed bundle to ``out_path`` (atomically) and return its manifest.

    ``build_time_s`` (epoch seconds) fixes the recorded build time and member mtimes, so the same inputs
    give the same archive bytes apart from the signature. ``progress`` gets byte counts as payloads are written.
    """
    sources = list(payloads)
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"payload name(s) given twice: {', '.join(dupes)}")
    build_time_s = time.time() if build_time_s is None else build_time_s
    entries = []
    for s in sources:
        digest, size = _hash_file(s.path)
        entries.append(Payload(s.name, s.kind, digest, size, s.executable))
    manifest = Manifest(
        version=version,
        compatible=tuple(compatible),
        build_time_utc=_utc(build_time_s),
        payloads=tuple(entries),
        min_version=min_version,
        description=description,
    )
    manifest_bytes = manifest.to_json_bytes()
    Manifest.from_json_bytes(manifest_bytes, "manifest (being built)")  # the same checks a device runs
    signature = private_key.sign(manifest_bytes)
    sig_doc = {
        "algorithm": "ed25519",
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(signature).decode(),
    }
    sig_bytes = (json.dumps(sig_doc, indent=2, sort_keys=True) + "\n").encode()

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.building-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(MANIFEST_MEMBER, len(manifest_bytes), build_time_s), io.BytesIO(manifest_bytes))
            tar.addfile(_tarinfo(SIGNATURE_MEMBER, len(sig_bytes), build_time_s), io.BytesIO(sig_bytes))
            for s, entry in zip(sources, entries, strict=True):
                with open(s.path, "rb") as f:
                    reader = _HashingReader(f)
                    tar.addfile(_tarinfo(PAYLOAD_PREFIX + entry.name, entry.size_bytes, build_time_s), reader)
                if reader.sha.hexdigest() != entry.sha256:
                    raise ConfigError(f"payload {s.path}: changed while the bundle was being built")
                if progress is not None:
                    progress(entry.size_bytes)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("built %s: version %s for %s, %d payloads, %d bytes", out_path, version,
             ",".join(manifest.compatible), len(entries), manifest.total_size_bytes)
    return manifest


def _tarinfo(name: str, size: int, mtime_s: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime_s)
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# ------------------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class DeviceContext:
    """What the device knows when it checks a bundle. None skips that check (e.g. on a build host)."""

    board: str | None = None
    running_version: str | None = None
    rollback_floor: str | None = None
    allow_downgrade: bool = False


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, manifest and payloads all checked out."""

    path: Path
    manifest: Manifest
    key_id: str
    manifest_sha256: str
    checks: tuple[str, ...] = field(default_factory=tuple)  # what was checked, for the report


def verify_bundle(
    path: Path,
    keyring: Mapping[str, Any],
    device: DeviceContext | None = None,
    *,
    extract_to: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifiedBundle:
    """Check everything about a bundle in one streaming pass; raise :class:`UpdateError` at the first problem.

    With ``extract_to`` (an existing empty directory) each payload is written there as it is checked;
    the caller must discard that directory if this raises.
    """
    path = Path(path)
    device = device or DeviceContext()
    label = path.name
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in finally (the member being read names errors)
    except OSError as exc:
        raise UpdateError(str(path), f"cannot open bundle ({exc.strerror})") from exc
    checks: list[str] = []
    current = "(archive header)"
    try:
        tar = tarfile.open(fileobj=raw, mode="r|")  # noqa: SIM115 - same; stream mode: one forward pass
        members = iter(tar)

        current = MANIFEST_MEMBER
        manifest_bytes = _read_small(tar, _next_member(members, label, MANIFEST_MEMBER), label, _MAX_MANIFEST_BYTES)
        current = SIGNATURE_MEMBER
        sig_bytes = _read_small(tar, _next_member(members, label, SIGNATURE_MEMBER), label, _MAX_SIGNATURE_BYTES)
        kid = _check_signature(manifest_bytes, sig_bytes, keyring, label)
        checks.append(f"signature: ed25519 key {kid}")

        current = MANIFEST_MEMBER
        manifest = Manifest.from_json_bytes(manifest_bytes, f"{label}:{MANIFEST_MEMBER}")
        checks.extend(_check_device(manifest, device, label))

        expected = {PAYLOAD_PREFIX + p.name: p for p in manifest.payloads}
        seen: set[str] = set()
        for member in members:
            current = member.name
            where = f"{label}:{member.name}"
            check_relative_name(member.name, where)
            if not member.isreg():
                raise UpdateError(where, f"is a {_member_type(member)}; a bundle may hold regular files only")
            payload = expected.get(member.name)
            if payload is None:
                raise UpdateError(where, "is not listed in the signed manifest")
            if member.name in seen:
                raise UpdateError(where, "appears twice in the archive")
            seen.add(member.name)
            if member.size != payload.size_bytes:
                raise UpdateError(where, f"size {member.size} bytes, the signed manifest says {payload.size_bytes}")
            digest = _copy_member(tar, member, extract_to, payload, progress)
            if digest != payload.sha256:
                raise UpdateError(where, f"SHA-256 {digest} does not match the signed manifest ({payload.sha256})")
        missing = [n for n in expected if n not in seen]
        if missing:
            raise UpdateError(f"{label}:{missing[0]}",
                              f"listed in the manifest but absent from the archive ({len(missing)} missing;"
                              " truncated or incomplete bundle?)")
        checks.append(f"payloads: {len(expected)} files, {manifest.total_size_bytes} bytes, SHA-256 and size match")
    except tarfile.TarError as exc:
        raise UpdateError(f"{label}:{current}", f"archive is damaged or truncated while reading this member ({exc})") from exc
    except EOFError as exc:
        raise UpdateError(f"{label}:{current}", "archive ends inside this member (truncated bundle)") from exc
    finally:
        raw.close()
    return VerifiedBundle(path, manifest, kid, hashlib.sha256(manifest_bytes).hexdigest(), tuple(checks))


def inspect_bundle(path: Path) -> tuple[Manifest, str]:
    """The manifest and signing key id of a bundle, WITHOUT checking the signature or payloads."""
    path = Path(path)
    label = path.name
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            members = iter(tar)
            manifest_bytes = _read_small(tar, _next_member(members, label, MANIFEST_MEMBER), label, _MAX_MANIFEST_BYTES)
            sig_bytes = _read_small(tar, _next_member(members, label, SIGNATURE_MEMBER), label, _MAX_SIGNATURE_BYTES)
    except OSError as exc:
        raise UpdateError(str(path), f"cannot read bundle ({exc})") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise UpdateError(f"{label}", f"not a readable bundle archive ({exc})") from exc
    sig = _parse_signature(sig_bytes, label)
    return Manifest.from_json_bytes(manifest_bytes, f"{label}:{MANIFEST_MEMBER}"), sig["key_id"]


def _next_member(members, label: str, expected: str) -> tarfile.TarInfo:
    member = next(members, None)
    if member is None:
        raise UpdateError(f"{label}:{expected}", "missing: the archive ends before it (empty or truncated bundle)")
    if member.name != expected:
        raise UpdateError(f"{label}:{member.name}", f"found where {expected} must be (manifest, signature, then payloads)")
    if not member.isreg():
        raise UpdateError(f"{label}:{member.name}", f"is a {_member_type(member)}, expected a regular file")
    return member


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, label: str, limit: int) -> bytes:
    if member.size > limit:
        raise UpdateError(f"{label}:{member.name}", f"{member.size} bytes, larger than the {limit}-byte limit")
    f = tar.extractfile(member)
    assert f is not None  # a regular file
    data = f.read()
    if len(data) != member.size:
        raise UpdateError(f"{label}:{member.name}", "archive ends inside this member (truncated bundle)")
    return data


def _copy_member(tar, member, extract_to: Path | None, payload: Payload, progress) -> str:
    src = tar.extractfile(member)
    h = hashlib.sha256()
    out = None
    if extract_to is not None:
        dest = Path(extract_to) / payload.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o755 if payload.executable else 0o644
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        os.fchmod(fd, mode)  # not narrowed by the umask
        out = os.fdopen(fd, "wb")
    got = 0
    try:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            got += len(chunk)
            if out is not None:
                out.write(chunk)
            if progress is not None:
                progress(len(chunk))
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    finally:
        if out is not None:
            out.close()
    if got != member.size:
        raise EOFError(member.name)
    return h.hexdigest()


def _member_type(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symlink (to {member.linkname!r})"
    if member.islnk():
        return f"hard link (to {member.linkname!r})"
    if member.isdir():
        return "directory"
    if member.isdev() or member.isfifo():
        return "device node or FIFO"
    return "non-regular member"


def _parse_signature(sig_bytes: bytes, label: str) -> dict[str, str]:
    where = f"{label}:{SIGNATURE_MEMBER}"
    try:
        doc = json.loads(sig_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpdateError(where, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise UpdateError(where, "expected a JSON object")
    for key in ("algorithm", "key_id", "signature"):
        if not isinstance(doc.get(key), str):
            raise UpdateError(f"{where}:{key}", f"expected a string, got {doc.get(key)!r}")
    if doc["algorithm"] != "ed25519":
        raise UpdateError(f"{where}:algorithm", f"{doc['algorithm']!r} is not supported; expected 'ed25519'")
    return doc


def _check_signature(manifest_bytes: bytes, sig_bytes: bytes, keyring: Mapping[str, Any], label: str) -> str:
    _, _, invalid_signature = _crypto()
    doc = _parse_signature(sig_bytes, label)
    kid = doc["key_id"]
    where = f"{label}:{SIGNATURE_MEMBER}"
    key = keyring.get(kid)
    if key is None:
        known = ", ".join(sorted(keyring)) or "none"
        raise UpdateError(f"{where}:key_id", f"signed by key {kid}, which is not in the trusted keyring (trusted: {known})")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except ValueError as exc:
        raise UpdateError(f"{where}:signature", "not valid base64") from exc
    try:
        key.verify(signature, manifest_bytes)
    except invalid_signature as exc:
        raise UpdateError(f"{label}:{MANIFEST_MEMBER}",
                          f"Ed25519 signature by key {kid} does not match (manifest or signature altered)") from exc
    return kid


def _check_device(manifest: Manifest, device: DeviceContext, label: str) -> list[str]:
    checks = []
    where = f"{label}:{MANIFEST_MEMBER}"
    if device.board is not None:
        if device.board not in manifest.compatible:
            raise UpdateError(f"{where}:compatible",
                              f"bundle is for {', '.join(manifest.compatible)}; this device is {device.board}")
        checks.append(f"board: {device.board} is in {list(manifest.compatible)}")
    if device.rollback_floor is not None:
        if compare_versions(manifest.version, device.rollback_floor) < 0:
            raise UpdateError(f"{where}:version",
                              f"{manifest.version} is below this device's anti-rollback floor"
                              f" {device.rollback_floor}; refusing a rollback")
        checks.append(f"anti-rollback: {manifest.version} >= floor {device.rollback_floor}")
    if device.running_version is not None and compare_versions(manifest.version, device.running_version) < 0:
        if not device.allow_downgrade:
            raise UpdateError(f"{where}:version",
                              f"{manifest.version} is older than the running {device.running_version};"
                              " a downgrade needs --allow-downgrade")
        checks.append(f"downgrade allowed: {device.running_version} -> {manifest.version}")
    return checks


def write_public_key_copy(src: Path, keyring_dir: Path) -> Path:
    """Install a public key into a keyring directory under its key id (``<key_id>.pem``)."""
    key = load_public_key(src)
    dest = Path(keyring_dir) / f"{key_id(key)}.pem"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, Path(src).read_bytes())
    return dest
