"""``edge-assistant diag dtc`` against the in-process demo ECUs on the virtual bus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.cli import main


def test_diag_dtc_virtual_ecu_json(tmp_path: Path) -> None:
    out = tmp_path / "dtc.json"
    # --timeout 1: the virtual ECUs are threads of this process; on a loaded machine the default 0.3 s P2 was
    # once too short for one of them (pending and permanent codes missing)
    assert main(["diag", "dtc", "--virtual-ecu", "--ecu", "0x7E0", "--ecu", "0x7E4", "--timeout", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["obd"]["0x7EC"] == {"stored": ["P0AA6"], "pending": ["P0AA6"], "permanent": ["P0AA6"]}
    assert data["obd"]["0x7E8"]["stored"] == []
    (row,) = data["uds"]["0x7EC"]
    assert row["code"] == "P0AA6" and row["status"] == "0x8F"
    assert row["explanation"]["severity"] == "critical"
    assert row["explanation"]["module"] == "battery management system (BMS)"


def test_diag_dtc_before_the_fault_and_masks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diag", "dtc", "--virtual-ecu", "--at", "350", "--mask", "0x08", "--no-obd"]) == 0
    text = capsys.readouterr().out
    assert "UDS ECU 0x7EC: 0 DTC(s) matching mask 0x08" in text  # pending at 350 s, not yet confirmed
    assert main(["diag", "dtc", "--virtual-ecu", "--at", "350", "--mask", "0x04", "--no-obd"]) == 0
    assert "P0AA6" in capsys.readouterr().out


def test_diag_dtc_reports_absent_ecus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diag", "dtc", "--bus", "virtual:diag-empty", "--timeout", "0.05", "--no-obd"]) == 1
    assert "UDS 19 02 to 0x7E0: TimeoutException" in capsys.readouterr().out
    assert main(["diag", "dtc", "--bus", "socketcan:can0", "--virtual-ecu"]) == 1
    assert "--virtual-ecu runs on the virtual bus only" in capsys.readouterr().err


def test_diag_dtc_through_an_elm327_on_a_pty(tmp_path: Path) -> None:
    import can

    from edge_assistant.diagnostics.clients import ObdClient, ObdClientConfig
    from edge_assistant.diagnostics.demo import demo_ecus
    from edge_assistant.diagnostics.elm327 import Elm327Emulator

    out = tmp_path / "elm.json"
    bus = can.Bus(interface="virtual", channel="can0")
    try:
        with demo_ecus(None, [("P0AA6", 0x8F)]), \
                ObdClient(bus, ObdClientConfig(ecus=((0x7E0, 0x7E8), (0x7E4, 0x7EC)), p2_s=0.25)) as tester, \
                Elm327Emulator(tester, noise=True) as emu:
            assert main(["diag", "dtc", "--elm327", emu.port, "--vehicle", "demo_ev", "--json", str(out)]) == 0
    finally:
        bus.shutdown()
    data = json.loads(out.read_text())
    assert data["adapter_version"] == "ELM327 v1.5"
    assert data["obd"]["0x7EC"]["stored"] == ["P0AA6"]
    assert data["uds"]["0x7EC"][0]["explanation"]["source"] == "vehicle:demo_ev"
    assert data["uds"]["0x7E8"] == []


def test_diag_ecu_serves_an_elm327_pty(tmp_path: Path) -> None:
    """`diag ecu --elm327` serves the virtual ECUs through an emulated adapter until SIGTERM (exit 0; Ctrl-C
    too, but a test run in the background inherits SIGINT ignored, as Python's children then do). The
    client asks the adapter for its longest ECU wait (AT ST FF, 1020 ms), as a tool talking to slow ECUs
    would: the emulated ECUs are threads, and a loaded machine may not run them within the 100 ms default."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from edge_assistant.diagnostics.elm327 import Elm327Client

    info = tmp_path / "ecu.json"
    env = {**os.environ, "EDGE_ASSISTANT_MODELS": str(tmp_path / "models"), "PYTHONFAULTHANDLER": "1"}
    server = subprocess.Popen([sys.executable, "-m", "edge_assistant", "diag", "ecu", "--elm327", "--at", "600",
                               "--json", str(info)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert info.exists(), f"no {info} (exit {server.poll()}): {server.stderr.read().decode() if server.poll() is not None else ''}"
        data = json.loads(info.read_text())
        with Elm327Client(data["elm327_pty"], ecu_timeout_ms=1020) as elm:
            elm.initialize()
            assert elm.read_dtcs(0x03)[0x7EC].codes == ("P0AA6",)
            (speed,) = elm.read_pids(0x0D, ecu=0x7E8)[0x7E8]
            assert 0 <= speed.value <= 200
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            out, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # hung on the way out: faulthandler prints every thread's stack
            server.send_signal(signal.SIGABRT)
            out, err = server.communicate(timeout=30)
            pytest.fail(f"diag ecu did not exit within 60 s of SIGTERM; its threads:\n{err.decode()[-6000:]}")
    assert server.returncode == 0, err.decode()
