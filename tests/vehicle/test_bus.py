"""Buses: one contract every bus type reruns (python-can back2back style), bus specs, supervised reader."""

from __future__ import annotations

import errno
import socket
import threading
import time

import can
import pytest

from edge_assistant.core.errors import BusError, ConfigError
from edge_assistant.vehicle.bus import (
    BusConfig,
    BusReader,
    open_bus,
    parse_bus_spec,
    receive_batch,
    wait_until,
)

from .slcan_peer import SlcanPeer


def _socketcan_skip_reason() -> str | None:
    try:
        s = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT:
            return "kernel has no SocketCAN: socket(AF_CAN) failed with errno 97 (EAFNOSUPPORT)"
        return f"SocketCAN unavailable: {exc}"
    except AttributeError:
        return "this Python has no AF_CAN"
    try:
        s.bind(("vcan0",))
    except OSError as exc:
        return f"no vcan0 interface ({exc}); see firmware/can/ to create it"
    finally:
        s.close()
    return None


def _recv(bus, timeout_s: float = 2.0):
    """Next data frame (slcan also returns None for acks and empty polls)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        msg = bus.recv(0.05)
        if msg is not None:
            return msg
    return None


class BusContract:
    """Behaviour every bus type must show. Subclasses provide ``pair``: (a, b) connected to each other."""

    __test__ = False

    @pytest.fixture
    def pair(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_standard_frame_both_ways(self, pair):
        a, b = pair
        a.send(can.Message(arbitration_id=0x123, data=bytes([1, 2, 3, 4]), is_extended_id=False))
        got = _recv(b)
        assert got is not None and got.arbitration_id == 0x123 and bytes(got.data) == b"\x01\x02\x03\x04"
        assert not got.is_extended_id
        b.send(can.Message(arbitration_id=0x7DF, data=bytes.fromhex("0201000000000000"), is_extended_id=False))
        got = _recv(a)
        assert got is not None and got.arbitration_id == 0x7DF and bytes(got.data) == bytes.fromhex("0201000000000000")

    def test_extended_frame(self, pair):
        a, b = pair
        a.send(can.Message(arbitration_id=0x18DAF110, data=b"\x02\x3e\x00", is_extended_id=True))
        got = _recv(b)
        assert got.is_extended_id and got.arbitration_id == 0x18DAF110 and bytes(got.data) == b"\x02\x3e\x00"

    def test_empty_and_remote_frames(self, pair):
        a, b = pair
        a.send(can.Message(arbitration_id=0x001, data=b"", is_extended_id=False))
        got = _recv(b)
        assert got.arbitration_id == 0x001 and len(got.data) == 0
        a.send(can.Message(arbitration_id=0x321, is_remote_frame=True, dlc=4, is_extended_id=False))
        got = _recv(b)
        assert got.is_remote_frame and got.arbitration_id == 0x321 and got.dlc == 4

    def test_order_is_kept(self, pair):
        a, b = pair
        for i in range(50):
            a.send(can.Message(arbitration_id=0x200 + i, data=bytes([i] * 8), is_extended_id=False))
        got = [_recv(b) for _ in range(50)]
        assert [m.arbitration_id for m in got] == [0x200 + i for i in range(50)]
        assert all(bytes(m.data) == bytes([i] * 8) for i, m in enumerate(got))

    def test_recv_times_out_with_none(self, pair):
        _, b = pair
        t0 = time.monotonic()
        assert b.recv(0.1) is None
        assert time.monotonic() - t0 < 1.0


class TestVirtualBus(BusContract):
    __test__ = True

    @pytest.fixture
    def pair(self, channel):
        a = open_bus(BusConfig("virtual", channel))
        b = open_bus(BusConfig("virtual", channel))
        yield a, b
        a.shutdown()
        b.shutdown()


class TestSocketcanBus(BusContract):
    __test__ = True

    @pytest.fixture
    def pair(self):
        reason = _socketcan_skip_reason()
        if reason:
            pytest.skip(reason)
        a = open_bus(BusConfig("socketcan", "vcan0"))
        b = open_bus(BusConfig("socketcan", "vcan0"))
        yield a, b
        a.shutdown()
        b.shutdown()


class TestSlcanBus(BusContract):
    """slcan against an adapter emulator on a pseudo-terminal, bridged to a virtual bus (side a)."""

    __test__ = True

    @pytest.fixture
    def pair(self, channel):
        peer = SlcanPeer(channel)
        b = open_bus(parse_bus_spec(f"slcan:{peer.port}@500000"))
        assert wait_until(lambda: peer.is_open, 2.0)
        a = can.Bus(interface="virtual", channel=channel)
        yield a, b
        b.shutdown()
        a.shutdown()
        peer.close()



def test_slcan_bitrate_and_open_sequence(channel):
    peer = SlcanPeer(channel)
    try:
        bus = open_bus(parse_bus_spec(f"slcan:{peer.port}@250000"))
        assert wait_until(lambda: peer.is_open, 2.0)
        assert peer.bitrate == 250_000
        assert peer.commands.index("S5") < peer.commands.index("O")
        bus.shutdown()
        assert wait_until(lambda: not peer.is_open, 2.0)
    finally:
        peer.close()


def test_socketcan_reports_errno_97_clearly():
    if _socketcan_skip_reason() is None:
        pytest.skip("this kernel has SocketCAN; the errno-97 path cannot be exercised")
    with pytest.raises(BusError) as err:
        open_bus(BusConfig("socketcan", "vcan0"))
    msg = str(err.value)
    assert "socketcan:vcan0" in msg and ("errno 97" in msg or "vcan0" in msg)


@pytest.mark.parametrize("spec, expect", [
    ("virtual:can0", BusConfig("virtual", "can0")),
    ("socketcan:vcan0", BusConfig("socketcan", "vcan0")),
    ("slcan:/dev/ttyACM0@250000", BusConfig("slcan", "/dev/ttyACM0", 250_000)),
    ("slcan:/dev/ttyUSB1@1000000/921600", BusConfig("slcan", "/dev/ttyUSB1", 1_000_000, serial_baud=921_600)),
])
def test_parse_bus_spec(spec, expect):
    assert parse_bus_spec(spec) == expect


def test_parse_bus_spec_filters():
    cfg = parse_bus_spec("socketcan:can0,filter=7E8:7F8,filter=18DAF110:1FFFFFFF:ext")
    assert [(f.can_id, f.can_mask, f.extended) for f in cfg.filters] == [(0x7E8, 0x7F8, False),
                                                                         (0x18DAF110, 0x1FFFFFFF, True)]


@pytest.mark.parametrize("spec, words", [
    ("can0", ["INTERFACE:CHANNEL"]), ("pcan:usb1", ["'pcan'", "socketcan"]), ("slcan:/dev/x@fast", ["bitrate"]),
    ("virtual:can0,speed=3", ["unknown option"]), ("virtual:can0,filter=zz", ["hex"]),
])
def test_bad_bus_specs_name_the_problem(spec, words):
    with pytest.raises(ConfigError) as err:
        parse_bus_spec(spec)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_filters_apply_on_the_virtual_bus(channel):
    tx = can.Bus(interface="virtual", channel=channel)
    rx = open_bus(parse_bus_spec(f"virtual:{channel},filter=7E8:7F8"))
    try:
        for ident in (0x7E0, 0x7E8, 0x7EF, 0x100):
            tx.send(can.Message(arbitration_id=ident, data=b"\x00", is_extended_id=False))
        got = []
        while (m := rx.recv(0.1)) is not None:
            got.append(m.arbitration_id)
        assert got == [0x7E8, 0x7EF]
    finally:
        tx.shutdown()
        rx.shutdown()


# ---- supervised reader: faults are counted, the bus reopened, nothing crashes -----------------------

def test_reader_reconnects_after_the_bus_disappears(channel):
    batches: list[list] = []
    tx = can.Bus(interface="virtual", channel=channel)
    reader = BusReader(lambda: can.Bus(interface="virtual", channel=channel), batches.append, poll_s=0.02,
                       backoff_initial_s=0.01).start()
    try:
        assert reader.wait_connected(2.0)
        tx.send(can.Message(arbitration_id=0x100, data=b"\x01"))
        assert wait_until(lambda: reader.stats.frames == 1, 2.0)
        reader.bus.shutdown()  # the adapter goes away under the reader
        assert wait_until(lambda: reader.stats.reconnects == 1 and reader.stats.connected, 3.0)
        assert reader.stats.faults == 1 and "receive failed" in reader.stats.last_error
        tx.send(can.Message(arbitration_id=0x101, data=b"\x02"))
        assert wait_until(lambda: reader.stats.frames == 2, 2.0)
        assert [m.arbitration_id for b in batches for m in b] == [0x100, 0x101]
    finally:
        reader.stop()
        tx.shutdown()


def test_reader_backs_off_while_the_adapter_cannot_be_opened():
    calls: list[tuple[float, float]] = []  # (when, the back-off the reader waited before this attempt)
    six = threading.Event()

    def opener():
        calls.append((time.monotonic(), reader.stats.backoff_s))
        if len(calls) == 6:
            six.set()
        raise BusError("slcan:/dev/ttyACM9", "cannot open: no such device")

    reader = BusReader(opener, lambda b: None, backoff_initial_s=0.02, backoff_max_s=0.16)
    reader.start()
    assert six.wait(10.0)
    assert reader.stop()
    waits = [w for _, w in calls[1:6]]
    assert waits == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.16])  # exponential back-off, capped
    gaps = [b - a for (a, _), (b, _) in zip(calls, calls[1:6], strict=False)]
    assert all(g >= 0.95 * w for g, w in zip(gaps, waits, strict=True))  # really waited: no tight loop
    assert reader.stats.open_failures >= 6
    assert "no such device" in reader.stats.last_error and not reader.stats.connected


def test_stop_while_the_adapter_is_opening_does_not_leak_the_bus(channel):
    """stop() times out while the reader thread is inside the opener; the bus it gets is closed by it."""
    entered, release = threading.Event(), threading.Event()
    opened: list = []

    def opener():
        entered.set()
        release.wait(10.0)  # a slow adapter (USB enumeration, slcan handshake)
        opened.append(can.Bus(interface="virtual", channel=channel))
        return opened[-1]

    reader = BusReader(opener, lambda b: None, poll_s=0.02).start()
    assert entered.wait(5.0)
    assert reader.stop(timeout_s=0.01) is False  # the join timed out: the thread is still opening
    release.set()
    assert reader.stop(timeout_s=5.0)
    assert len(opened) == 1 and reader.bus is None and not reader.stats.connected
    with pytest.raises(can.CanOperationError):
        opened[0].recv(0)  # closed by the reader thread, not leaked


def test_error_frame_storm_cannot_hold_receive_batch(channel):
    """A batch takes at most max_batch frames, error frames included, so the caller sees its stop flag."""
    tx = can.Bus(interface="virtual", channel=channel)
    rx = can.Bus(interface="virtual", channel=channel)
    try:
        for _ in range(1000):
            tx.send(can.Message(is_error_frame=True, arbitration_id=0x004, data=bytes(8)))
        tx.send(can.Message(arbitration_id=0x123, data=b"\x01"))
        errors: list = []
        assert receive_batch(rx, 64, 1.0, errors.append) == []
        assert len(errors) == 64
        batches = [receive_batch(rx, 64, 1.0, errors.append) for _ in range(15)]  # 937 left: 14 x 64 + 41
        assert len(errors) == 1000 and [m.arbitration_id for b in batches for m in b] == [0x123]
    finally:
        tx.shutdown()
        rx.shutdown()


def test_frames_before_serial_noise_are_delivered(channel):
    """A frame, a truncated frame and a frame arrive in one read: the first is delivered, then the noise
    is counted, then the last frame follows."""
    peer = SlcanPeer(channel)
    cfg = parse_bus_spec(f"slcan:{peer.port}@500000")
    tx = can.Bus(interface="virtual", channel=channel)
    got: list[int] = []
    gate = threading.Event()

    def consumer(batch):
        got.extend(m.arbitration_id for m in batch)
        gate.wait(5.0)  # hold the reader while the next bytes queue up on the serial line

    reader = BusReader(lambda: open_bus(cfg), consumer, poll_s=0.02).start()
    try:
        assert reader.wait_connected(3.0) and wait_until(lambda: peer.is_open, 2.0)
        tx.send(can.Message(arbitration_id=0x100, data=b"\x01", is_extended_id=False))
        assert wait_until(lambda: got == [0x100], 2.0)  # the reader now waits in the consumer
        wire = b"t1231AA\rt12\rt1241BB\r"
        peer.noise(wire)
        assert wait_until(lambda: reader.bus.serialPortOrig.in_waiting >= len(wire), 2.0)
        gate.set()
        assert wait_until(lambda: len(got) == 3, 2.0)
        assert got == [0x100, 0x123, 0x124] and reader.stats.serial_noise == 1
    finally:
        gate.set()
        reader.stop()
        tx.shutdown()
        peer.close()


def test_error_frames_and_bus_off_are_counted_not_passed_on(channel, caplog):
    got: list = []
    tx = can.Bus(interface="virtual", channel=channel)
    reader = BusReader(lambda: can.Bus(interface="virtual", channel=channel), got.extend, poll_s=0.02).start()
    try:
        assert reader.wait_connected(2.0)
        tx.send(can.Message(is_error_frame=True, arbitration_id=0x004, data=bytes(8)))  # controller problem
        tx.send(can.Message(is_error_frame=True, arbitration_id=0x040, data=bytes(8)))  # bus-off
        tx.send(can.Message(arbitration_id=0x123, data=b"\x01"))
        assert wait_until(lambda: reader.stats.frames == 1, 2.0)
        assert reader.stats.error_frames == 2 and reader.stats.bus_off == 1
        assert [m.arbitration_id for m in got] == [0x123]
        assert "BUS-OFF" in caplog.text
    finally:
        reader.stop()
        tx.shutdown()


def test_consumer_exception_does_not_kill_the_reader(channel, caplog):
    seen: list = []

    def consumer(batch):
        seen.extend(batch)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    tx = can.Bus(interface="virtual", channel=channel)
    reader = BusReader(lambda: can.Bus(interface="virtual", channel=channel), consumer, poll_s=0.02).start()
    try:
        assert reader.wait_connected(2.0)
        tx.send(can.Message(arbitration_id=0x1, data=b""))
        assert wait_until(lambda: len(seen) == 1, 2.0)
        tx.send(can.Message(arbitration_id=0x2, data=b""))
        assert wait_until(lambda: len(seen) == 2, 2.0)
        assert "consumer failed" in caplog.text
    finally:
        reader.stop()
        tx.shutdown()


def test_slcan_noise_is_counted_and_unplug_is_survived(channel, caplog):
    peer = SlcanPeer(channel)
    got: list = []
    cfg = parse_bus_spec(f"slcan:{peer.port}@500000")
    tx = can.Bus(interface="virtual", channel=channel)  # the car side of the emulated adapter
    reader = BusReader(lambda: open_bus(cfg), got.extend, poll_s=0.02, backoff_initial_s=0.02,
                       backoff_max_s=0.1).start()
    try:
        assert reader.wait_connected(3.0) and wait_until(lambda: peer.is_open, 2.0)
        tx.send(can.Message(arbitration_id=0x123, data=b"\xaa\xbb", is_extended_id=False))
        assert wait_until(lambda: len(got) == 1, 2.0)
        peer.noise(b"t12\r")        # truncated frame
        peer.noise(b"tXYZ8zz\r")    # garbage
        tx.send(can.Message(arbitration_id=0x124, data=b"\x01", is_extended_id=False))
        assert wait_until(lambda: len(got) == 2, 2.0)
        assert reader.stats.serial_noise == 2
        assert [m.arbitration_id for m in got] == [0x123, 0x124]
        peer.unplug()
        assert wait_until(lambda: reader.stats.faults >= 1, 3.0)
        assert wait_until(lambda: reader.stats.open_failures >= 2, 5.0)  # reopening keeps failing, with back-off
        assert reader._thread.is_alive() and not reader.stats.connected
        assert "cannot open" in reader.stats.last_error or "receive failed" in reader.stats.last_error
    finally:
        reader.stop()
        tx.shutdown()
        peer.close()


def test_adapter_that_opens_but_always_fails_is_retried_with_back_off(channel):
    waits: list[float] = []  # the back-off the reader waited before each open
    five = threading.Event()

    def opener():
        waits.append(reader.stats.backoff_s)
        if len(waits) == 5:
            five.set()
        bus = can.Bus(interface="virtual", channel=channel)
        bus.shutdown()  # opens fine, then every receive fails (a half-dead USB adapter)
        return bus

    reader = BusReader(opener, lambda b: None, poll_s=0.01, backoff_initial_s=0.02, backoff_max_s=0.1)
    reader.start()
    assert five.wait(10.0)
    assert reader.stop()
    assert waits[1:5] == pytest.approx([0.02, 0.04, 0.08, 0.1])  # retried, but not in a tight loop
    assert reader.stats.faults >= 4 and "receive failed" in reader.stats.last_error
    assert reader._thread is not None and not reader._thread.is_alive()
