"""firmware/can: the bring-up script parses, and its --check tells SocketCAN support the way the tests do."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_bus import _socketcan_skip_reason

CAN_DIR = Path(__file__).resolve().parents[2] / "firmware" / "can"


def test_bringup_script_syntax():
    subprocess.run(["sh", "-n", str(CAN_DIR / "can-bringup.sh")], check=True)


def test_bringup_check_reports_socketcan_support():
    if shutil.which("python3") is None:
        pytest.skip("python3 not on PATH")
    out = subprocess.run(["sh", str(CAN_DIR / "can-bringup.sh"), "--check", "can0"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    reason = _socketcan_skip_reason()
    if reason and "errno 97" in reason:
        assert "NOT available" in out and "errno 97" in out
    else:
        assert "SocketCAN: available" in out


def test_bringup_without_arguments_prints_usage():
    r = subprocess.run(["sh", str(CAN_DIR / "can-bringup.sh")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "usage" in r.stderr


@pytest.mark.parametrize("name", ["80-can0.network", "80-can0.link", "81-vcan0.netdev", "81-vcan0.network",
                                  "edge-assistant-can@.service"])
def test_systemd_files_parse(name):
    cp = configparser.ConfigParser(strict=True, interpolation=None)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string((CAN_DIR / name).read_text(encoding="utf-8"))
    assert cp.sections()
    if name == "80-can0.network":
        assert cp["CAN"]["BitRate"] == "500K" and cp["Match"]["Name"] == "can0"
    if name == "81-vcan0.netdev":
        assert cp["NetDev"]["Kind"] == "vcan"
