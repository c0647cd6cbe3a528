"""Bundles: keygen -> build -> verify round trip, and every way a bundle can be bad or hostile."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from edge_assistant.core.errors import ConfigError, UpdateError
from edge_assistant.update import bundle as b

from .conftest import BUILD_TIME_S, Signing


def _offsets(path: Path) -> dict[str, tuple[int, int]]:
    """member name -> (header offset, data offset) in the archive."""
    with tarfile.open(path) as tar:
        return {m.name: (m.offset, m.offset_data) for m in tar.getmembers()}


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _craft(path: Path, signing: Signing, payload_entries: list[dict], members: list[tuple[tarfile.TarInfo, bytes]],
           key=None) -> Path:
    """A correctly signed manifest listing ``payload_entries``, followed by arbitrary ``members``."""
    doc = {"format": 1, "product": "edge-assistant", "version": "1.0.0", "compatible": ["rpi4"],
           "build_time_utc": "2026-09-21T10:00:00Z", "description": "", "payloads": payload_entries}
    manifest = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    key = key or signing.private_key
    sig = json.dumps({"algorithm": "ed25519", "key_id": b.key_id(key.public_key()),
                      "signature": base64.b64encode(key.sign(manifest)).decode()}).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((b.MANIFEST_MEMBER, manifest), (b.SIGNATURE_MEMBER, sig)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _entry(name: str, data: bytes, kind: str = "file") -> dict:
    import hashlib

    return {"name": name, "kind": kind, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


# ------------------------------------------------------------------------------------- round trip
def test_keygen_build_verify_round_trip(signing: Signing, make_bundle, tmp_path: Path) -> None:
    path = make_bundle("1.2.0", min_version="1.1.0")
    v = b.verify_bundle(path, signing.keyring, b.DeviceContext(board="rpi5", rollback_floor="1.0.0"))
    assert v.key_id == signing.key_id
    assert v.manifest.version == "1.2.0" and v.manifest.min_version == "1.1.0"
    assert v.manifest.compatible == ("rpi4", "rpi5")
    assert {p.name for p in v.manifest.payloads} == {
        "config/assistant.json", "config/health-check.sh", "models/wake/head.onnx", "systemd/edge-assistant.service"}
    assert [p.name for p in v.manifest.payloads if p.executable] == ["config/health-check.sh"]
    assert any(c.startswith("signature:") for c in v.checks) and any("anti-rollback" in c for c in v.checks)
    # inspect reads the same manifest without the keyring
    manifest, kid = b.inspect_bundle(path)
    assert manifest == v.manifest and kid == signing.key_id
    # extraction writes exactly the payloads, byte for byte
    out = tmp_path / "x"
    out.mkdir()
    b.verify_bundle(path, signing.keyring, extract_to=out)
    src = path.parent.parent / "src0"
    assert (out / "models/wake/head.onnx").read_bytes() == (src / "models/wake/head.onnx").read_bytes()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        p.name for p in v.manifest.payloads)
    # the mode comes from the signed manifest, not from the tar header
    assert (out / "config/health-check.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "config/assistant.json").stat().st_mode & 0o777 == 0o644


def test_archive_layout_is_manifest_signature_then_payloads(make_bundle) -> None:
    with tarfile.open(make_bundle()) as tar:
        names = tar.getnames()
        assert all(m.isreg() and m.uid == 0 and m.mtime == int(BUILD_TIME_S) for m in tar.getmembers())
    assert names[:2] == ["manifest.json", "manifest.sig"]
    assert all(n.startswith("payloads/") for n in names[2:])


def test_builds_are_reproducible(make_bundle) -> None:
    # Ed25519 signatures are deterministic and the build time is fixed: same inputs, same bytes.
    assert make_bundle(name="one.eab").read_bytes() == make_bundle(name="two.eab").read_bytes()


def test_private_key_is_0600_and_never_overwritten(signing: Signing) -> None:
    assert signing.private_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        b.generate_keypair(signing.private_path, signing.private_path.with_suffix(".pub"))


def test_encrypted_signing_key_needs_its_passphrase(tmp_path: Path) -> None:
    b.generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub", passphrase=b"s3cret")
    assert b.load_private_key(tmp_path / "k.pem", b"s3cret") is not None
    with pytest.raises(ConfigError, match=r"k\.pem"):
        b.load_private_key(tmp_path / "k.pem", b"wrong")


# --------------------------------------------------------------------------------- tampering
def test_tampered_payload_names_the_member(signing: Signing, make_bundle) -> None:
    path = make_bundle()
    _, data_off = _offsets(path)["payloads/models/wake/head.onnx"]
    _flip_byte(path, data_off + 12_345)
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/models/wake/head.onnx")
    assert "SHA-256" in exc.value.reason


def test_tampered_manifest_fails_the_signature(signing: Signing, make_bundle) -> None:
    path = make_bundle("1.0.0")
    data = path.read_bytes()
    _, off = _offsets(path)["manifest.json"]
    i = data.index(b'"version": "1.0.0"', off)
    path.write_bytes(data[:i] + b'"version": "9.0.0"' + data[i + 18 :])  # same length, still valid tar
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("manifest.json") and "signature" in exc.value.reason


def test_tampered_signature_fails(signing: Signing, make_bundle) -> None:
    path = make_bundle()
    data = path.read_bytes()
    _, off = _offsets(path)["manifest.sig"]
    i = data.index(b'"signature": "', off) + 20
    swapped = b"A" if data[i : i + 1] != b"A" else b"B"
    path.write_bytes(data[:i] + swapped + data[i + 1 :])
    with pytest.raises(UpdateError, match="signature"):
        b.verify_bundle(path, signing.keyring)


def test_wrong_key_is_refused(tmp_path: Path, make_bundle) -> None:
    b.generate_keypair(tmp_path / "other.pem", tmp_path / "ring" / "other.pem")
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(make_bundle(), b.load_keyring(tmp_path / "ring"))
    assert exc.value.where.endswith("manifest.sig:key_id") and "not in the trusted keyring" in exc.value.reason


def test_key_id_collision_still_needs_the_real_key(signing: Signing, tmp_path: Path) -> None:
    """A signature made by another key but claiming the trusted key id does not verify."""
    b.generate_keypair(tmp_path / "evil.pem", tmp_path / "evil.pub")
    evil = b.load_private_key(tmp_path / "evil.pem")
    data = b"x" * 10
    path = _craft(tmp_path / "evil.eab", signing, [_entry("file/x", data)], [_reg("payloads/file/x", data)], key=evil)
    raw = bytearray(path.read_bytes())
    fake_id, real_id = b.key_id(evil.public_key()).encode(), signing.key_id.encode()
    i = raw.index(fake_id)
    raw[i : i + len(fake_id)] = real_id
    path.write_bytes(bytes(raw))
    with pytest.raises(UpdateError, match="does not match"):
        b.verify_bundle(path, signing.keyring)


def test_wrong_board(signing: Signing, make_bundle) -> None:
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(make_bundle(boards=("rpi4",)), signing.keyring, b.DeviceContext(board="jetson-orin-nano"))
    assert exc.value.where.endswith("manifest.json:compatible") and "jetson-orin-nano" in exc.value.reason


def test_rollback_below_floor_is_refused(signing: Signing, make_bundle) -> None:
    path = make_bundle("1.4.2")
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring, b.DeviceContext(rollback_floor="1.5.0"))
    assert exc.value.where.endswith("manifest.json:version") and "anti-rollback" in exc.value.reason
    # a downgrade above the floor needs allow_downgrade
    with pytest.raises(UpdateError, match="allow-downgrade"):
        b.verify_bundle(path, signing.keyring, b.DeviceContext(running_version="1.5.0-rc1", rollback_floor="1.4.0"))
    b.verify_bundle(path, signing.keyring,
                    b.DeviceContext(running_version="1.5.0", rollback_floor="1.4.0", allow_downgrade=True))


# --------------------------------------------------------------------------- hostile archives
@pytest.mark.parametrize("member", ["payloads/../../../tmp/evil", "../evil", "/etc/cron.d/evil",
                                    "payloads/./file/x"])
def test_path_traversal_member_is_refused(signing: Signing, tmp_path: Path, member: str) -> None:
    data = b"pwned"
    path = _craft(tmp_path / "t.eab", signing, [_entry("file/x", data)],
                  [_reg("payloads/file/x", data), _reg(member, data)])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring, extract_to=out)
    assert member.lstrip("/") in exc.value.where or member in exc.value.where
    assert "traversal" in exc.value.reason or "absolute" in exc.value.reason
    assert not (tmp_path / "evil").exists()


def test_traversal_name_in_signed_manifest_is_refused(signing: Signing, tmp_path: Path) -> None:
    data = b"pwned"
    path = _craft(tmp_path / "t.eab", signing, [_entry("../../etc/passwd", data)], [_reg("payloads/x", data)])
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("manifest.json:payloads[0].name") and "traversal" in exc.value.reason


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE])
def test_non_regular_members_are_refused(signing: Signing, tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("payloads/file/x")
    info.type = kind
    info.linkname = "/etc/shadow"
    path = _craft(tmp_path / "t.eab", signing, [_entry("file/x", b"")], [(info, b"")])
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/file/x") and "regular files only" in exc.value.reason


def test_unlisted_and_duplicate_members_are_refused(signing: Signing, tmp_path: Path) -> None:
    data = b"abc"
    path = _craft(tmp_path / "u.eab", signing, [_entry("file/x", data)],
                  [_reg("payloads/file/x", data), _reg("payloads/file/smuggled", data)])
    with pytest.raises(UpdateError, match="not listed in the signed manifest") as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/file/smuggled")
    path = _craft(tmp_path / "d.eab", signing, [_entry("file/x", data)],
                  [_reg("payloads/file/x", data), _reg("payloads/file/x", data)])
    with pytest.raises(UpdateError, match="twice"):
        b.verify_bundle(path, signing.keyring)


def test_size_mismatch_names_the_member(signing: Signing, tmp_path: Path) -> None:
    path = _craft(tmp_path / "s.eab", signing, [_entry("file/x", b"abc")], [_reg("payloads/file/x", b"abcd")])
    with pytest.raises(UpdateError, match="size 4 bytes") as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/file/x")


def test_members_out_of_order_are_refused(signing: Signing, tmp_path: Path) -> None:
    path = tmp_path / "o.eab"
    with tarfile.open(path, "w") as tar:
        tar.addfile(*_reg("payloads/file/x", b"abc")[:1], io.BytesIO(b"abc"))
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/file/x") and "manifest.json must be" in exc.value.reason


# ---------------------------------------------------------------------------------- truncation
def test_truncated_inside_a_payload(signing: Signing, make_bundle) -> None:
    path = make_bundle()
    _, off = _offsets(path)["payloads/models/wake/head.onnx"]
    path.write_bytes(path.read_bytes()[: off + 5000])
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("payloads/models/wake/head.onnx") and "truncated" in exc.value.reason


def test_truncated_inside_the_manifest(signing: Signing, make_bundle) -> None:
    path = make_bundle()
    _, off = _offsets(path)["manifest.json"]
    path.write_bytes(path.read_bytes()[: off + 40])
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert exc.value.where.endswith("manifest.json") and "truncated" in exc.value.reason


def test_truncated_before_a_payload(signing: Signing, make_bundle) -> None:
    path = make_bundle()
    header_off, _ = _offsets(path)["payloads/models/wake/head.onnx"]
    path.write_bytes(path.read_bytes()[:header_off])
    with pytest.raises(UpdateError) as exc:
        b.verify_bundle(path, signing.keyring)
    assert "payloads/models/wake/head.onnx" in exc.value.where and "absent" in exc.value.reason


def test_empty_and_non_tar_files(signing: Signing, tmp_path: Path) -> None:
    (tmp_path / "empty.eab").write_bytes(b"")
    (tmp_path / "junk.eab").write_bytes(b"not a tar file at all" * 100)
    for name in ("empty.eab", "junk.eab"):
        with pytest.raises(UpdateError) as exc:
            b.verify_bundle(tmp_path / name, signing.keyring)
        assert name in exc.value.where
    with pytest.raises(UpdateError, match="cannot open"):
        b.verify_bundle(tmp_path / "missing.eab", signing.keyring)


# ----------------------------------------------------------------------------- manifest checks
@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"format": 2}, "format"),
        ({"product": "other"}, "product"),
        ({"version": "one"}, "version"),
        ({"min_version": "2.0.0"}, "min_version"),
        ({"compatible": ["pc"]}, "compatible[0]"),
        ({"compatible": []}, "compatible"),
        ({"build_time_utc": "yesterday"}, "build_time_utc"),
        ({"payloads": [{"name": "a", "kind": "blob", "sha256": "0" * 64, "size_bytes": 1}]}, "payloads[0].kind"),
        ({"payloads": [{"name": "a", "kind": "file", "sha256": "XYZ", "size_bytes": 1}]}, "payloads[0].sha256"),
        ({"payloads": [{"name": "a", "kind": "file", "sha256": "0" * 64, "size_bytes": True}]},
         "payloads[0].size_bytes"),
    ],
)
def test_manifest_errors_name_the_key(change: dict, key: str) -> None:
    doc = {"format": 1, "product": "edge-assistant", "version": "1.0.0", "compatible": ["rpi4"],
           "build_time_utc": "2026-09-21T10:00:00Z", "payloads": []}
    doc.update(change)
    with pytest.raises(UpdateError) as exc:
        b.Manifest.from_json_bytes(json.dumps(doc).encode())
    assert exc.value.where == f"manifest.json:{key}"


def test_build_refuses_bad_inputs(signing: Signing, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "d" / "link").symlink_to(tmp_path / "d" / "f")
    with pytest.raises(ConfigError, match="symlink"):
        b.collect_payloads("config", tmp_path / "d")
    with pytest.raises(ConfigError, match="kind"):
        b.collect_payloads("firmware", tmp_path / "d" / "f")
    src = b.collect_payloads("config", tmp_path / "d" / "f")
    with pytest.raises(UpdateError, match="compatible"):
        b.build_bundle(tmp_path / "x.eab", src, version="1.0.0", compatible=["pc"], private_key=signing.private_key)
    with pytest.raises(ConfigError, match="twice"):
        b.build_bundle(tmp_path / "x.eab", src + src, version="1.0.0", compatible=["rpi4"],
                       private_key=signing.private_key)
    assert not (tmp_path / "x.eab").exists() and not list(tmp_path.glob(".x.eab*"))


def test_keyring_errors_name_the_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        b.load_keyring(tmp_path / "nope")
    (tmp_path / "ring").mkdir()
    with pytest.raises(ConfigError, match="holds no"):
        b.load_keyring(tmp_path / "ring")
    (tmp_path / "ring" / "bad.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match=r"bad\.pem"):
        b.load_keyring(tmp_path / "ring")
