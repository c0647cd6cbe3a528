"""``edge-assistant update ...`` end to end: keygen, build, verify, install, boot, mark-good, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.cli import main

from .conftest import write_payload_tree


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_update_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, root, src = tmp_path / "keys", tmp_path / "root", write_payload_tree(tmp_path / "src")
    ring = keys / "ring"
    kid = _json(capsys, ["update", "keygen", "--private", str(keys / "s.pem"), "--public", str(ring / "r.pem")])["key_id"]

    def build(version: str, *extra: str) -> Path:
        out = tmp_path / f"{version}.eab"
        res = _json(capsys, ["update", "build", "-o", str(out), "--version", version, "--board", "rpi4",
                             "--board", "jetson-orin-nano", "--key", str(keys / "s.pem"),
                             "--add", f"config:{src / 'config'}", "--add", f"models:{src / 'models'}:models",
                             "--add", f"file:{src / 'systemd' / 'edge-assistant.service'}:etc", *extra])
        assert res["payloads"] == 4 and res["version"] == version
        return out

    b1, b2 = build("1.0.0"), build("1.1.0", "--min-version", "1.1.0")
    v = _json(capsys, ["update", "verify", str(b2), "--keyring", str(ring), "--board", "jetson-orin-nano"])
    assert v["ok"] and v["key_id"] == kid and len(v["checks"]) == 3
    info = _json(capsys, ["update", "inspect", str(b2)])
    assert info["verified"] is False and info["manifest"]["min_version"] == "1.1.0"
    assert {p["name"] for p in info["manifest"]["payloads"]} == {
        "config/assistant.json", "config/health-check.sh", "models/wake/head.onnx", "etc/edge-assistant.service"}

    dev = ["--root", str(root), "--keyring", str(ring), "--board", "rpi4", "--no-venv"]
    assert _json(capsys, ["update", "install", str(b1), *dev])["slot"] == "a"
    assert _json(capsys, ["update", "boot", "--root", str(root)])["attempt"] == 1
    assert _json(capsys, ["update", "mark-good", "--root", str(root)])["slots"]["a"]["state"] == "good"
    assert _json(capsys, ["update", "install", str(b2), *dev])["slot"] == "b"
    assert _json(capsys, ["update", "boot", "--root", str(root)])["slot"] == "b"
    st = _json(capsys, ["update", "mark-good", "--root", str(root), "--check", "true"])
    assert st["rollback_floor"] == "1.1.0"
    # 1.0.0 is now below the floor: rollback refused with a clear message and exit 1
    assert main(["update", "rollback", "--root", str(root)]) == 1
    assert "anti-rollback floor 1.1.0" in capsys.readouterr().err
    st = _json(capsys, ["update", "status", "--root", str(root)])
    assert (st["primary"], st["slots"]["a"]["version"], st["slots"]["b"]["state"]) == ("b", "1.0.0", "good")
    # the human-readable forms work too
    assert main(["update", "status", "--root", str(root)]) == 0
    assert "slot b: good" in capsys.readouterr().out


def test_update_cli_errors_name_the_member(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, src = tmp_path / "keys", write_payload_tree(tmp_path / "src")
    assert main(["update", "keygen", "--private", str(keys / "s.pem"), "--public", str(keys / "ring" / "r.pem")]) == 0
    out = tmp_path / "x.eab"
    assert main(["update", "build", "-o", str(out), "--version", "2.0.0", "--board", "rpi5",
                 "--key", str(keys / "s.pem"), "--add", f"config:{src / 'config'}"]) == 0
    capsys.readouterr()
    assert main(["update", "verify", str(out), "--keyring", str(keys / "ring"), "--board", "rpi4"]) == 1
    assert "x.eab:manifest.json:compatible" in capsys.readouterr().err
    assert main(["update", "build", "-o", str(out), "--version", "2.0.0", "--board", "rpi5",
                 "--key", str(keys / "s.pem"), "--add", "config"]) == 1
    assert "KIND:SRC" in capsys.readouterr().err
    assert main(["update", "install", "--root", str(tmp_path / "r"), "--keyring", str(keys / "ring")]) == 1
    assert "either a BUNDLE or --spool" in capsys.readouterr().err
