"""A/B slots on plain directories: install, boot counting, automatic and manual rollback, mark-good."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from edge_assistant.core.errors import ConfigError, UpdateError
from edge_assistant.update import install as ins

from .conftest import Signing, no_temp_files


@pytest.fixture
def config(signing: Signing, tmp_path: Path) -> ins.UpdateConfig:
    return ins.UpdateConfig(root_dir=tmp_path / "root", keyring_dir=signing.keyring_dir, board="rpi4",
                            max_boot_attempts=3, build_venv=False)


def _install(path: Path, config: ins.UpdateConfig, signing: Signing) -> ins.InstallResult:
    return ins.install_bundle(path, config, keyring=signing.keyring)


def _good_release(make_bundle, config, signing, version="1.0.0", **kw) -> None:
    _install(make_bundle(version, **kw), config, signing)
    ins.boot(config.root_dir)
    ins.mark_good(config.root_dir)


def test_first_install_boot_and_mark_good(signing: Signing, make_bundle, config: ins.UpdateConfig) -> None:
    root = config.root_dir
    res = _install(make_bundle("1.0.0"), config, signing)
    assert res.slot == "a" and res.slot_dir == root / "slots" / "a"
    assert (root / "slots/a/models/wake/head.onnx").stat().st_size == 70_000
    assert json.loads((root / "slots/a/slot.json").read_text())["version"] == "1.0.0"
    assert os.readlink(root / "current") == "slots/a"
    st = ins.read_status(root)
    assert st["primary"] == "a" and st["booted"] is None
    assert st["slots"]["a"]["state"] == "pending" and st["slots"]["a"]["key_id"] == signing.key_id

    d = ins.boot(root)
    assert (d.slot, d.version, d.attempt, d.rolled_back_from) == ("a", "1.0.0", 1, None)
    st = ins.mark_good(root)
    assert st["slots"]["a"]["state"] == "good" and st["slots"]["a"]["attempts"] == 0
    assert ins.boot(root).attempt == 0  # a good slot is not counted
    assert no_temp_files(root) == []


def test_update_goes_to_the_inactive_slot_and_never_touches_the_running_one(
        signing: Signing, make_bundle, config: ins.UpdateConfig) -> None:
    root = config.root_dir
    _good_release(make_bundle, config, signing, "1.0.0")
    before = (root / "slots/a/config/assistant.json").stat().st_mtime_ns
    res = _install(make_bundle("1.1.0", seed=1), config, signing)
    assert res.slot == "b"
    assert (root / "slots/a/config/assistant.json").stat().st_mtime_ns == before
    st = ins.read_status(root)
    assert (st["primary"], st["booted"]) == ("b", "a")
    assert os.readlink(root / "current") == "slots/a"  # the running release keeps its files until restart
    # installing again before the restart replaces the pending slot, still not the booted one
    assert _install(make_bundle("1.1.1", seed=2), config, signing).slot == "b"
    assert ins.boot(root).slot == "b"
    assert os.readlink(root / "current") == "slots/b"
    ins.mark_good(root)
    assert _install(make_bundle("1.2.0"), config, signing).slot == "a"


def test_boot_counter_rolls_back_after_n_failed_starts(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    _good_release(make_bundle, config, signing, "1.0.0")
    _install(make_bundle("2.0.0"), config, signing)
    attempts = [ins.boot(root) for _ in range(3)]  # three starts that never reach mark-good
    assert [(d.slot, d.attempt) for d in attempts] == [("b", 1), ("b", 2), ("b", 3)]
    d = ins.boot(root)  # the fourth start falls back
    assert (d.slot, d.version, d.rolled_back_from) == ("a", "1.0.0", "b")
    st = ins.read_status(root)
    assert st["slots"]["b"]["state"] == "bad" and "3 starts" in st["slots"]["b"]["reason"]
    assert (st["primary"], st["booted"]) == ("a", "a") and os.readlink(root / "current") == "slots/a"
    assert any("rolled back" in e["event"] for e in st["events"])
    # marking good now confirms the old slot, not the failed one
    assert ins.mark_good(root)["slots"]["b"]["state"] == "bad"


def test_no_fallback_keeps_starting_the_only_install(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    _install(make_bundle("1.0.0"), config, signing)
    for _ in range(5):
        d = ins.boot(root)
    assert d.slot == "a" and d.rolled_back_from is None
    assert "no good fallback" in ins.read_status(root)["slots"]["a"]["reason"]


def test_anti_rollback_floor(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    _good_release(make_bundle, config, signing, "1.0.0")
    _good_release(make_bundle, config, signing, "1.3.0", min_version="1.2.0")
    st = ins.read_status(root)
    assert st["rollback_floor"] == "1.2.0"
    # slot a holds 1.0.0, below the floor: neither a manual rollback nor a re-install of it
    with pytest.raises(UpdateError, match="anti-rollback floor 1.2.0") as exc:
        ins.rollback(root)
    assert exc.value.where.endswith("slots.a")
    with pytest.raises(UpdateError, match="anti-rollback") as exc:
        _install(make_bundle("1.1.0", name="old.eab"), ins.UpdateConfig(
            root, config.keyring_dir, board="rpi4", allow_downgrade=True, build_venv=False), signing)
    assert exc.value.where.endswith("manifest.json:version")
    # a downgrade above the floor is possible only when allowed
    with pytest.raises(UpdateError, match="allow-downgrade"):
        _install(make_bundle("1.2.5"), config, signing)
    allow = ins.UpdateConfig(root, config.keyring_dir, board="rpi4", allow_downgrade=True, build_venv=False)
    assert _install(make_bundle("1.2.5", name="ok.eab"), allow, signing).slot == "a"


def test_manual_rollback(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    _good_release(make_bundle, config, signing, "1.0.0")
    _good_release(make_bundle, config, signing, "1.1.0")
    st = ins.rollback(root)
    assert st["primary"] == "a" and st["slots"]["b"]["state"] == "bad"
    assert os.readlink(root / "current") == "slots/b"  # effective at the next start
    assert ins.boot(root).slot == "a"
    assert os.readlink(root / "current") == "slots/a"
    with pytest.raises(UpdateError, match="is bad, not good"):
        ins.rollback(root)
    assert ins.rollback(root, force=True)["primary"] == "b"


def test_rollback_needs_something_to_roll_back_to(signing: Signing, make_bundle, config) -> None:
    for op in (ins.rollback, ins.boot, ins.mark_good, ins.read_status):
        with pytest.raises(UpdateError, match="no such update root"):
            op(config.root_dir)
    assert not config.root_dir.exists()  # reading never creates the root
    config.root_dir.mkdir()
    with pytest.raises(UpdateError, match="no slot holds an install"):
        ins.rollback(config.root_dir)
    _good_release(make_bundle, config, signing, "1.0.0")
    with pytest.raises(UpdateError, match="is empty") as exc:
        ins.rollback(config.root_dir)
    assert exc.value.where.endswith("slots.b")


def test_failed_install_leaves_state_and_running_slot_alone(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    _good_release(make_bundle, config, signing, "1.0.0")
    before = (root / "status.json").read_bytes()
    bad = make_bundle("1.1.0")
    with tarfile.open(bad) as tar:
        offset = tar.getmember("payloads/models/wake/head.onnx").offset_data + 1000
    data = bytearray(bad.read_bytes())
    data[offset] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(UpdateError, match="SHA-256"):
        _install(bad, config, signing)
    assert (root / "status.json").read_bytes() == before
    assert not (root / "slots" / "b").exists() and no_temp_files(root) == []
    with pytest.raises(UpdateError, match="this device is jetson-orin-nano"):
        ins.install_bundle(make_bundle("1.1.0", boards=("rpi4",), name="rpi.eab"),
                           ins.UpdateConfig(root, config.keyring_dir, board="jetson-orin-nano", build_venv=False),
                           keyring=signing.keyring)
    assert (root / "status.json").read_bytes() == before
    with pytest.raises(ConfigError, match="board"):
        ins.install_bundle(bad, ins.UpdateConfig(root, config.keyring_dir, board=None), keyring=signing.keyring)


def test_mark_good_runs_health_checks(signing: Signing, make_bundle, config) -> None:
    root = config.root_dir
    root.mkdir()
    with pytest.raises(UpdateError, match="no slot has been started"):
        ins.mark_good(root)
    _install(make_bundle("1.0.0"), config, signing)
    ins.boot(root)
    model = root / "slots/a/models/wake/head.onnx"
    model.write_bytes(b"corrupted on the SD card")
    with pytest.raises(UpdateError, match="changed since install") as exc:
        ins.mark_good(root)
    assert exc.value.where == str(model)
    assert ins.read_status(root)["slots"]["a"]["state"] == "pending"
    with pytest.raises(UpdateError, match="exit 1"):
        ins.mark_good(root, checks=[ins.command_check(["false"])])
    assert ins.mark_good(root, checks=[ins.command_check(["true"])])["slots"]["a"]["state"] == "good"


def test_unit_health_parsing() -> None:
    ins.parse_unit_health("ActiveState=active\nSubState=running\nNRestarts=0\n", "ea.service")
    with pytest.raises(UpdateError, match="restarted 2 times"):
        ins.parse_unit_health("ActiveState=active\nSubState=running\nNRestarts=2\n", "ea.service")
    with pytest.raises(UpdateError, match="activating/auto-restart"):
        ins.parse_unit_health("ActiveState=activating\nSubState=auto-restart\nNRestarts=0\n", "ea.service")
    with pytest.raises(UpdateError, match="no NRestarts"):
        ins.parse_unit_health("ActiveState=active\nSubState=running\n", "ea.service")


def test_status_file_errors_name_the_key(config: ins.UpdateConfig) -> None:
    root = config.root_dir
    root.mkdir(parents=True)
    (root / "status.json").write_text("{ torn")
    with pytest.raises(UpdateError, match="not valid JSON") as exc:
        ins.read_status(root)
    assert exc.value.where.endswith("status.json")
    doc = ins.empty_status()
    doc["slots"]["b"]["state"] = "weird"
    (root / "status.json").write_text(json.dumps(doc))
    with pytest.raises(UpdateError) as exc:
        ins.read_status(root)
    assert exc.value.where.endswith("status.json:slots.b.state")
    doc = ins.empty_status()
    doc["primary"] = "a"
    (root / "status.json").write_text(json.dumps(doc))
    with pytest.raises(UpdateError, match="empty") as exc:
        ins.boot(root)
    assert exc.value.where.endswith("status.json:primary")


def test_status_write_is_atomic(tmp_path: Path) -> None:
    """The old file stays intact until the new one is complete; no temporary file is left behind."""
    store = ins.SlotStore(tmp_path, create=True)
    with store:
        store.save(ins.empty_status())
        inode = (tmp_path / "status.json").stat().st_ino
        store.save(ins.empty_status())
    assert (tmp_path / "status.json").stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert no_temp_files(tmp_path) == []
    with pytest.raises(UpdateError, match="slots"), store:
        store.save({**ins.empty_status(), "slots": {}})
    assert ins.read_status(tmp_path) == ins.empty_status()


def test_spool_installs_good_bundles_and_rejects_bad_ones(signing: Signing, make_bundle, config) -> None:
    spool = config.root_dir.parent / "spool"
    spool.mkdir()
    good = make_bundle("1.0.0")
    os.replace(good, spool / good.name)
    bad = make_bundle("1.0.1", boards=("jetson-orin-nano",))
    os.replace(bad, spool / bad.name)
    os.utime(spool / bad.name, (1, 1))  # oldest first
    results = ins.install_from_spool(spool, config, keyring=signing.keyring)
    assert [r["ok"] for r in results] == [False, True]
    assert "compatible" in results[0]["error"]
    assert (spool / "rejected" / bad.name).exists() and (spool / "done" / good.name).exists()
    assert ins.read_status(config.root_dir)["slots"]["a"]["version"] == "1.0.0"


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_boot_attempts"):
        ins.UpdateConfig(Path("/x"), Path("/k"), max_boot_attempts=0)


def test_board_detection(tmp_path: Path) -> None:
    from edge_assistant.update._util import detect_board

    model = tmp_path / "model"
    for text, board in [("Raspberry Pi 4 Model B Rev 1.5\0", "rpi4"), ("Raspberry Pi 5 Model B Rev 1.0\0", "rpi5"),
                        ("NVIDIA Jetson Orin Nano Developer Kit\0", "jetson-orin-nano"), ("QEMU x86\0", None)]:
        model.write_text(text)
        assert detect_board(model, environ={}, board_file=tmp_path / "none") == board
    assert detect_board(tmp_path / "absent", environ={"EDGE_ASSISTANT_BOARD": "rpi5"}) == "rpi5"
    (tmp_path / "board").write_text("jetson-orin-nano\n")
    assert detect_board(model, environ={}, board_file=tmp_path / "board") == "jetson-orin-nano"
    with pytest.raises(UpdateError, match="EDGE_ASSISTANT_BOARD"):
        detect_board(model, environ={"EDGE_ASSISTANT_BOARD": "pc"})


def test_state_changes_are_serialised_by_the_lock(signing: Signing, make_bundle, config) -> None:
    """A boot step waits while another process (here: another open of the lock file) holds the state."""
    import threading

    root = config.root_dir
    _install(make_bundle("1.0.0"), config, signing)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (ins.boot(root), done.set()))
    with ins.SlotStore(root):
        worker.start()
        assert not done.wait(0.3)  # blocked on flock
        assert json.loads((root / "status.json").read_text())["slots"]["a"]["attempts"] == 0
    worker.join(10)
    assert done.is_set() and ins.read_status(root)["slots"]["a"]["attempts"] == 1
