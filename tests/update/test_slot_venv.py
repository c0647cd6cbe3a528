"""A bundle's wheelhouse becomes a working venv in the slot, installed offline (pip --no-index)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from edge_assistant.core.errors import UpdateError
from edge_assistant.update import bundle as b
from edge_assistant.update import install as ins

from .conftest import Signing


def make_wheel(folder: Path, name: str, version: str, code: str, requires: str | None = None,
               script: str | None = None) -> Path:
    """A minimal pure-Python wheel (PEP 427): the module, METADATA, WHEEL and RECORD."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": code.encode(),
        f"{dist}.dist-info/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       + (f"Requires-Dist: {requires}\n" if requires else "")).encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: edge-assistant-tests\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n",
    }
    if script:
        files[f"{dist}.dist-info/entry_points.txt"] = f"[console_scripts]\n{script} = {name}:main\n".encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return out


@pytest.mark.slow
def test_wheel_payloads_become_the_slot_venv(signing: Signing, tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_wheel(house, "ea_probe_dep", "2.0", "ANSWER = 42\n")
    make_wheel(house, "ea_probe", "1.0", "from ea_probe_dep import ANSWER\n\ndef main():\n    print(ANSWER)\n",
               requires="ea_probe_dep>=2", script="ea-probe")
    out = tmp_path / "w.eab"
    b.build_bundle(out, b.collect_payloads("wheel", house), version="1.0.0", compatible=["rpi5"],
                   private_key=signing.private_key)
    config = ins.UpdateConfig(tmp_path / "root", signing.keyring_dir, board="rpi5", build_venv=True)
    res = ins.install_bundle(out, config, keyring=signing.keyring)
    py = res.slot_dir / "venv" / "bin" / "python"
    got = subprocess.run([str(py), "-c", "import ea_probe; print(ea_probe.ANSWER)"], capture_output=True,
                         text=True, timeout=60)
    assert got.stdout.strip() == "42", got.stderr
    # the console script, through the `current` link, as the systemd unit starts the assistant
    got = subprocess.run([str(config.root_dir / "current" / "venv" / "bin" / "ea-probe")], capture_output=True,
                         text=True, timeout=60)
    assert got.stdout.strip() == "42", got.stderr
    assert "staging" not in (res.slot_dir / "venv" / "bin" / "ea-probe").read_text()


@pytest.mark.slow
def test_missing_dependency_fails_the_install_cleanly(signing: Signing, tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_wheel(house, "ea_probe", "1.0", "", requires="ea_not_in_the_bundle")
    out = tmp_path / "w.eab"
    b.build_bundle(out, b.collect_payloads("wheel", house), version="1.0.0", compatible=["rpi5"],
                   private_key=signing.private_key)
    config = ins.UpdateConfig(tmp_path / "root", signing.keyring_dir, board="rpi5", build_venv=True)
    with pytest.raises(UpdateError, match="installing the bundle's wheels"):
        ins.install_bundle(out, config, keyring=signing.keyring)
    assert ins.read_status(config.root_dir)["primary"] is None
    assert not (config.root_dir / "slots" / "a").exists()
