"""ELM327 client against the ELM327 emulator on a real pseudo-terminal (os.openpty), the emulator backed
by an ISO-TP tester and the virtual ECU on the virtual CAN bus."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import can
import pytest

from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.core.state import VehicleState
from edge_assistant.diagnostics.clients import DiagnosticTimeout, ObdClient, ObdClientConfig
from edge_assistant.diagnostics.elm327 import (
    MAX_COMMAND_BYTES,
    SKIPPED_LINES_KEPT,
    Elm327Client,
    Elm327Emulator,
    Elm327Error,
)
from edge_assistant.diagnostics.virtual_ecu import VirtualEcu, VirtualEcuConfig

BMS = VirtualEcuConfig(name="BMS", request_id=0x7E4, response_id=0x7EC, vin="KMHK381GFMU000001")


@pytest.fixture()
def tester() -> Iterator[ObdClient]:
    st = VehicleState()
    st.update("Vehicle.Speed", 42.0, "km/h", 1.0, "test")
    st.update("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 80.0, "percent", 1.0, "test")
    bus = can.Bus(interface="virtual", channel="can0")
    with VirtualEcu(BMS, state=st, dtcs=[("P0AA6", 0x2F), ("U0146", 0x04)]), \
            ObdClient(bus, ObdClientConfig(ecus=((0x7E0, 0x7E8), (0x7E4, 0x7EC)), p2_s=0.25)) as client:
        yield client
    bus.shutdown()


@pytest.mark.parametrize("noise", [False, True], ids=["clean", "noisy-serial"])
def test_elm327_reads_pids_dtcs_and_vin(tester: ObdClient, noise: bool) -> None:
    with Elm327Emulator(tester, noise=noise) as emu, Elm327Client(emu.port, timeout_s=2.0) as elm:
        assert elm.initialize() == "ELM327 v1.5"
        assert elm.command("ATDP") == ["ISO 15765-4 (CAN 11/500)"]
        (speed,) = elm.read_pids(0x0D)[0x7EC]
        assert speed.value == 42
        assert elm.read_dtcs(0x03)[0x7EC].codes == ("P0AA6",)
        assert elm.read_dtcs(0x07)[0x7EC].codes == ("P0AA6", "U0146")
        assert elm.read_vin() == {0x7EC: "KMHK381GFMU000001"}       # multi-frame, headered lines
        assert elm.read_vin(ecu=0x7EC) == {0x7EC: "KMHK381GFMU000001"}  # physical via ATSH 7E4
        if noise:
            assert elm.noise_bytes > 0


def test_no_data_and_unknown_commands(tester: ObdClient) -> None:
    with Elm327Emulator(tester) as emu, Elm327Client(emu.port) as elm:
        elm.initialize()
        with pytest.raises(DiagnosticTimeout, match="NO DATA for 010C"):
            elm.read_pids(0x0C)
        with pytest.raises(DataFormatError, match=r"did not understand 'ATXYZ'"):
            elm.command("ATXYZ")
        assert elm.read_pids(0x0D)[0x7EC][0].value == 42          # still usable afterwards


def test_searching_and_headerless_answers_from_raw_commands(tester: ObdClient) -> None:
    with Elm327Emulator(tester) as emu, Elm327Client(emu.port) as elm:
        assert elm.command("ATZ", timeout_s=2.0)[-1] == "ELM327 v1.5"
        elm.command("ATE0")
        lines = elm.command("010D")                               # protocol auto: SEARCHING... is dropped
        assert lines == ["41 0D 2A"]
        vin_lines = elm.command("0902")                           # headers off: ELM's "0:", "1:" layout
        assert vin_lines[0] == "014" and vin_lines[1].startswith("0: 49 02 01")


def test_garbage_lines_are_skipped_with_a_warning(tester: ObdClient, caplog: pytest.LogCaptureFixture) -> None:
    with Elm327Emulator(tester) as emu, Elm327Client(emu.port) as elm:
        elm.initialize()
        frames = elm._parse_frames(["7EC03410D2AAAAAAAAA", "BUS INIT: OK", "7EC0Z", "12"], "010D")
        assert frames == {0x7EC: bytes.fromhex("410d2a")}
        assert len(elm.skipped_lines) == 3
        assert "not a headered CAN frame" in caplog.text
        with pytest.raises(DataFormatError, match="no complete answer to 0902"):
            elm._parse_frames(["7EC1014490201"], "0902")


def test_counters_and_buffers_stay_bounded_over_a_long_session(tester: ObdClient) -> None:
    with Elm327Emulator(tester) as emu, Elm327Client(emu.port) as elm:
        elm.initialize()
        n = 5 * SKIPPED_LINES_KEPT
        for i in range(n):
            assert elm._parse_frames(["7EC03410D2AAAAAAAAA", f"BUS INIT: {i}"], "010D") == {0x7EC: b"\x41\x0d\x2a"}
        assert elm.skipped_count == n and len(elm.skipped_lines) == SKIPPED_LINES_KEPT
        assert elm.skipped_lines[-1] == f"BUS INIT: {n - 1}"  # the latest are kept
        # a peer that never sends CR cannot grow the emulator's command buffer
        garbage = memoryview(b"X" * 20_000)
        fd = os.open(emu.port, os.O_WRONLY | os.O_NOCTTY)
        try:
            while garbage:
                garbage = garbage[os.write(fd, garbage):]
        finally:
            os.close(fd)
        deadline = time.monotonic() + 10.0
        while emu.dropped_bytes < 20_000 - MAX_COMMAND_BYTES and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.dropped_bytes == 20_000 - MAX_COMMAND_BYTES
        with pytest.raises(DataFormatError, match="did not understand"):
            elm.command("ATI")  # the garbage's tail and ATI make one command line
        assert elm.command("ATI") == ["ELM327 v1.5"]


def test_silent_port_times_out_with_the_port_named() -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    try:
        with Elm327Client(os.ttyname(slave), timeout_s=0.3, reset_timeout_s=0.3) as elm, \
                pytest.raises(Elm327Error, match=rf"{os.ttyname(slave)}: no '>' prompt within 0.3 s"):
            elm.initialize()
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(Elm327Error, match="cannot open serial port"):
        Elm327Client("/dev/does-not-exist-elm").open()


def test_at_st_sets_the_wait_for_the_ecus_and_a_reset_restores_it(tester: ObdClient) -> None:
    """The client's ``ecu_timeout_ms`` becomes AT ST (4 ms steps); the emulated adapter passes it on as the
    tester's first-answer wait, and ATZ brings back the adapter's default."""
    default = tester.config.p2_s
    with Elm327Emulator(tester) as emu, Elm327Client(emu.port, ecu_timeout_ms=1020) as elm:
        elm.initialize()
        assert tester.config.p2_s == pytest.approx(1.02)
        assert elm.read_pids(0x0D, ecu=0x7EC)[0x7EC][0].value == 42
        assert elm.command("ATST00") == ["OK"] and tester.config.p2_s == default
        assert elm.command("ATST19") == ["OK"] and tester.config.p2_s == pytest.approx(0.1)
        elm.command("ATZ", timeout_s=elm.reset_timeout_s)
        assert tester.config.p2_s == default
    for bad in (0, 3, 1021):
        with pytest.raises(ConfigError, match="ecu_timeout_ms"):
            Elm327Client("/dev/null", ecu_timeout_ms=bad)
