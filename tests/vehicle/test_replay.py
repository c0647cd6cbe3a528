"""Replay onto the virtual bus, received by a python-can reader on the same channel."""

from __future__ import annotations

import statistics
import threading
import time

import can
import pytest

from edge_assistant.vehicle.logs import read_log
from edge_assistant.vehicle.replay import replay, replay_file


def _open(kind: str, channel: str):
    if kind == "socketcan":
        from .test_bus import _socketcan_skip_reason

        reason = _socketcan_skip_reason()
        if reason:
            pytest.skip(reason)
        return can.Bus(interface="socketcan", channel="vcan0")
    return can.Bus(interface="virtual", channel=channel)


def _collect(channel, kind: str = "virtual"):
    rx = _open(kind, channel)
    reader = can.BufferedReader()
    notifier = can.Notifier(rx, [reader], timeout=0.02)

    def stop():
        time.sleep(0.1)
        notifier.stop()
        rx.shutdown()
        out = []
        while (m := reader.get_message(0)) is not None:
            out.append(m)
        return out

    return stop


def _first_seconds(log, seconds):
    frames = []
    for m in read_log(log):
        if frames and m.timestamp - frames[0].timestamp > seconds:
            break
        frames.append(m)
    return frames


@pytest.mark.parametrize("kind", ["virtual", "socketcan"])
def test_replay_keeps_frames_and_timing(demo_log, channel, kind):
    frames = _first_seconds(demo_log, 4.0)
    stop = _collect(channel, kind)
    tx = _open(kind, channel)
    stats = replay(frames, tx, speed=1.0)
    tx.shutdown()
    got = stop()
    assert [(m.arbitration_id, bytes(m.data)) for m in got] == [(m.arbitration_id, bytes(m.data)) for m in frames]
    assert stats.frames_sent == len(frames) and stats.duration_s == pytest.approx(4.0, abs=0.2)
    # receive times (stamped by the virtual bus at send) against the log's own timing
    errs = [abs((g.timestamp - got[0].timestamp) - (f.timestamp - frames[0].timestamp)) for g, f in zip(got, frames, strict=True)]
    assert statistics.median(errs) < 0.005
    assert sorted(errs)[int(0.95 * len(errs))] < 0.030
    t = stats.timing_error_ms()
    assert t["p50"] < 5.0


def test_replay_speed_factor_and_max(demo_log, channel):
    frames = _first_seconds(demo_log, 2.0)
    tx = can.Bus(interface="virtual", channel=channel)
    t0 = time.perf_counter()
    replay(frames, tx, speed=4.0)
    assert time.perf_counter() - t0 == pytest.approx(0.5, abs=0.15)
    stop = _collect(channel)
    stats = replay(frames, tx, speed=None)
    tx.shutdown()
    assert len(stop()) == len(frames) and stats.timing_errors_s == []


def test_replay_loop_and_stop(demo_log, channel):
    frames = _first_seconds(demo_log, 0.5)
    tx = can.Bus(interface="virtual", channel=channel)
    stop = _collect(channel)
    stats = replay(lambda: iter(frames), tx, speed=None, loop=True, max_frames=3 * len(frames) + 5)
    got = stop()
    assert stats.loops == 4 and stats.frames_sent == 3 * len(frames) + 5
    assert [m.arbitration_id for m in got[len(frames):2 * len(frames)]] == [m.arbitration_id for m in frames]
    ev = threading.Event()
    threading.Timer(0.3, ev.set).start()
    t0 = time.perf_counter()
    stats = replay(lambda: iter(frames), tx, speed=1.0, loop=True, stop=ev)
    tx.shutdown()
    assert time.perf_counter() - t0 < 1.0 and stats.frames_sent > 0


def test_replay_goes_on_past_bad_lines(tmp_path, channel, caplog):
    path = tmp_path / "dirty.log"
    path.write_text("(10.000) can0 100#01\n(10.001) can0 1#\n(10.002) can0 1XY#00\n(10.003) can0 101#02\n"
                    "(10.004) can0 102#0\n(10.005) can0 103#03\n", encoding="ascii")
    stop = _collect(channel)
    tx = can.Bus(interface="virtual", channel=channel)
    stats = replay_file(path, tx, speed=None)
    tx.shutdown()
    got = stop()
    assert [m.arbitration_id for m in got] == [0x100, 0x101, 0x103] and stats.frames_sent == 3
    assert f"{path}:2:" in caplog.text and f"{path}:3:" in caplog.text and f"{path}:5:" in caplog.text


def test_send_errors_are_counted_and_replay_goes_on(channel, caplog):
    """The adapter goes away in the middle of a replay: every later frame fails, is counted, no crash."""
    frames = [can.Message(timestamp=i * 0.001, arbitration_id=i, data=b"") for i in range(6)]
    tx = can.Bus(interface="virtual", channel=channel)
    stop = _collect(channel)

    def after(msg):
        if msg.arbitration_id == 2:
            tx.shutdown()

    stats = replay(frames, tx, speed=None, on_frame=after)
    assert [m.arbitration_id for m in stop()] == [0, 1, 2]
    assert stats.frames_sent == 3 and stats.send_errors == 3 and "frame 0x3" in caplog.text


def test_bad_speed():
    with pytest.raises(ValueError, match="speed"):
        replay([], None, speed=0)


def test_error_frames_in_a_log_are_replayed_and_counted(tmp_path, channel):
    from edge_assistant.vehicle.bus import BusReader, wait_until

    path = tmp_path / "busoff.log"
    path.write_text("(5.000) can0 100#D007030000000000\n(5.010) can0 20000040#0000000000000000\n"
                    "(5.020) can0 100#E803030000000000\n", encoding="ascii")
    got: list = []
    reader = BusReader(lambda: can.Bus(interface="virtual", channel=channel), got.extend, poll_s=0.02).start()
    tx = can.Bus(interface="virtual", channel=channel)
    try:
        assert reader.wait_connected(2.0)
        stats = replay_file(path, tx, speed=None)
        assert stats.frames_sent == 3
        assert wait_until(lambda: len(got) == 2 and reader.stats.bus_off == 1, 2.0)
        assert [bytes(m.data)[:2] for m in got] == [b"\xd0\x07", b"\xe8\x03"]
    finally:
        reader.stop()
        tx.shutdown()


def test_full_transmit_queue_is_waited_out(channel):
    """A virtual bus whose receiver queue is full refuses with ENOBUFS-like errors until it drains."""
    import errno as _errno

    class QueueFullOnce:
        """A real virtual bus, refusing the first two sends as a full SocketCAN queue does (ENOBUFS)."""

        def __init__(self):
            self.bus = can.Bus(interface="virtual", channel=channel)
            self.refusals = 2

        def send(self, msg):
            if self.refusals:
                self.refusals -= 1
                raise can.CanOperationError("Failed to transmit: No buffer space available", _errno.ENOBUFS)
            self.bus.send(msg)

    stop = _collect(channel)
    tx = QueueFullOnce()
    stats = replay([can.Message(arbitration_id=0x7, data=b"\x01")], tx, speed=None)
    tx.bus.shutdown()
    assert stats.frames_sent == 1 and stats.send_errors == 0
    assert [m.arbitration_id for m in stop()] == [0x7]
