"""Replay onto the virtual bus, received by a python-can reader on the same channel.

Timing is checked without wall-clock windows: the schedule exactly, on a simulated clock that replay's
waits advance; on the real clock only what load cannot break (no frame leaves before it is due).
"""

from __future__ import annotations

import pickle
import threading
import time

import can
import pytest

from edge_assistant.vehicle.logs import read_log
from edge_assistant.vehicle.replay import TIMING_SAMPLE_SIZE, ReplayStats, replay, replay_file


class SimClock:
    """Simulated time for ``replay(clock=..., wait=...)``: a wait advances it, sending takes no time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.start = self.now = now

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False

    def elapsed(self) -> float:
        return self.now - self.start


def _open(kind: str, channel: str):
    if kind == "socketcan":
        from .test_bus import _socketcan_skip_reason

        reason = _socketcan_skip_reason()
        if reason:
            pytest.skip(reason)
        return can.Bus(interface="socketcan", channel="vcan0")
    return can.Bus(interface="virtual", channel=channel)


def _collect(channel, kind: str = "virtual"):
    """Start receiving; the returned ``finish(expected)`` waits for that many frames, then returns every
    frame received (extras included: for the virtual bus a send has queued its copy before it returns)."""
    rx = _open(kind, channel)
    reader = can.BufferedReader()
    notifier = can.Notifier(rx, [reader], timeout=0.02)

    def finish(expected: int) -> list:
        out = []
        deadline = time.monotonic() + 10.0
        while len(out) < expected:
            m = reader.get_message(max(0.0, deadline - time.monotonic()))
            if m is None:
                break
            out.append(m)
        notifier.stop()
        while (m := reader.get_message(0)) is not None:
            out.append(m)
        while (m := rx.recv(0)) is not None:
            out.append(m)
        rx.shutdown()
        return out

    return finish


def _first_seconds(log, seconds):
    frames = []
    for m in read_log(log):
        if frames and m.timestamp - frames[0].timestamp > seconds:
            break
        frames.append(m)
    return frames


def _sim_replay(frames, bus, speed: float = 1.0, **kw) -> tuple:
    """Replay on a :class:`SimClock`; returns the stats and each frame's send time from the start."""
    sim = SimClock()
    sent_at: list[float] = []
    stats = replay(frames, bus, speed=speed, clock=sim, wait=sim.wait,
                   on_frame=lambda m: sent_at.append(sim.elapsed()), **kw)
    return stats, sent_at


def _ids(msgs) -> list[tuple[int, bytes]]:
    return [(m.arbitration_id, bytes(m.data)) for m in msgs]


def _frames(*stamps: float) -> list[can.Message]:
    return [can.Message(timestamp=t, arbitration_id=0x100 + i, data=bytes([i])) for i, t in enumerate(stamps)]


@pytest.mark.parametrize("kind", ["virtual", "socketcan"])
def test_replay_keeps_frames_and_timing(demo_log, channel, kind):
    frames = _first_seconds(demo_log, 4.0)
    rel = [f.timestamp - frames[0].timestamp for f in frames]
    finish = _collect(channel, kind)
    tx = _open(kind, channel)
    sent_at: list[float] = []
    before = time.perf_counter()
    stats = replay(frames, tx, speed=1.0, on_frame=lambda m: sent_at.append(time.perf_counter()))
    got = finish(len(frames))
    # the same frames, in order, each sent no earlier than due on the real clock
    assert _ids(got) == _ids(frames)
    assert stats.frames_sent == stats.timed_frames == len(frames)
    assert all(t - before >= r - 0.001 for t, r in zip(sent_at, rel, strict=True))
    assert stats.duration_s >= rel[-1] - 0.001
    t = stats.timing_error_ms()
    assert 0.0 <= t["p50"] <= t["p99"] <= t["max"] and t["mean"] <= t["max"]
    # the schedule itself, exactly, on simulated time: frame i leaves at t_i - t_0
    stats, sim_at = _sim_replay(frames, tx)
    tx.shutdown()
    assert sim_at == pytest.approx(rel, abs=1e-9)
    assert stats.timing_error_ms() == {"p50": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    assert stats.duration_s == pytest.approx(rel[-1], abs=1e-9)


def test_replay_speed_factor_and_max(demo_log, channel):
    frames = _first_seconds(demo_log, 2.0)
    rel = [f.timestamp - frames[0].timestamp for f in frames]
    tx = can.Bus(interface="virtual", channel=channel)
    stats, sim_at = _sim_replay(frames, tx, speed=4.0)
    assert sim_at == pytest.approx([r / 4.0 for r in rel], abs=1e-9)
    assert stats.duration_s == pytest.approx(rel[-1] / 4.0, abs=1e-9)
    stats = replay(frames, tx, speed=4.0)  # real clock: a quarter of the time, never less
    assert stats.frames_sent == len(frames) and stats.duration_s >= rel[-1] / 4.0 - 0.001
    finish = _collect(channel)
    stats = replay(frames, tx, speed=None)
    tx.shutdown()
    assert _ids(finish(len(frames))) == _ids(frames) and stats.timed_frames == 0


def test_replay_loop_and_stop(demo_log, channel):
    frames = _first_seconds(demo_log, 0.5)
    n = len(frames)
    tx = can.Bus(interface="virtual", channel=channel)
    finish = _collect(channel)
    stats = replay(lambda: iter(frames), tx, speed=None, loop=True, max_frames=3 * n + 5)
    got = finish(3 * n + 5)
    assert stats.loops == 4 and stats.frames_sent == 3 * n + 5 and len(got) == 3 * n + 5
    assert [m.arbitration_id for m in got[n:2 * n]] == [m.arbitration_id for m in frames]
    # looping in time: the clock runs on, one mean gap between the last frame and the first again
    ev = threading.Event()
    sim = SimClock()
    sim_at: list[float] = []

    def count(_msg):
        sim_at.append(sim.elapsed())
        if len(sim_at) == 2 * n + 3:
            ev.set()

    stats = replay(lambda: iter(frames), tx, speed=1.0, loop=True, stop=ev, clock=sim, wait=sim.wait,
                   on_frame=count)
    span = frames[-1].timestamp - frames[0].timestamp
    mean_gap = span / (n - 1)
    assert stats.frames_sent == 2 * n + 3 and stats.loops == 3
    assert sim_at[n] == pytest.approx(span + mean_gap, abs=1e-9)
    assert sim_at[2 * n] == pytest.approx(2 * (span + mean_gap), abs=1e-9)
    # stop ends a wait at once (real clock): the second frame is due a minute later and never leaves
    first_sent, ev = threading.Event(), threading.Event()
    threading.Thread(target=lambda: first_sent.wait(10.0) and ev.set(), daemon=True).start()
    stats = replay(_frames(0.0, 60.0), tx, speed=1.0, stop=ev, max_gap_s=120.0,
                   on_frame=lambda m: first_sent.set())
    tx.shutdown()
    assert stats.frames_sent == 1 and ev.is_set()


def test_long_loop_keeps_constant_memory(channel):
    """--loop at bus rate for hours: the statistics must not grow with the frames sent."""
    frames = _frames(*(i * 0.001 for i in range(100)))
    tx = can.Bus(interface="virtual", channel=channel)
    try:
        small = replay(lambda: iter(frames), tx, speed=1e6, loop=True, max_frames=2_000)
        large = replay(lambda: iter(frames), tx, speed=1e6, loop=True, max_frames=20_000)
    finally:
        tx.shutdown()
    assert small.timed_frames == 2_000 and large.timed_frames == 20_000
    # the same few kilobytes after 2,000 and 20,000 frames (a list of every error would be ~180 kB)
    size_small, size_large = len(pickle.dumps(small)), len(pickle.dumps(large))
    assert size_large < 32_000 and abs(size_large - size_small) < 2_000
    t = large.timing_error_ms()
    assert 0.0 <= t["p50"] <= t["p99"] <= t["max"] and 0.0 <= t["mean"] <= t["max"]


def test_timing_statistics_are_exact_where_they_can_be_and_sampled_otherwise():
    stats = ReplayStats()
    for i in range(10_000):
        stats.add_timing_error((-1) ** i * i / 1000.0)  # |error| 0 .. 9.999 s
    t = stats.timing_error_ms()
    assert stats.timed_frames == 10_000 and t["max"] == 9999.0 and t["mean"] == pytest.approx(4999.5)
    assert t["p50"] == pytest.approx(5000.0, rel=0.1) and t["p99"] == pytest.approx(9900.0, rel=0.02)
    assert len(pickle.dumps(stats)) < len(pickle.dumps([0.5] * 2 * TIMING_SAMPLE_SIZE))


def test_a_corrupt_time_stamp_does_not_stall_the_replay(channel, caplog):
    """One frame stamped 30 years ahead: counted as two discontinuities (there and back), no wait."""
    frames = _frames(10.000, 10.010, 1e9, 10.020, 10.030)
    finish = _collect(channel)
    tx = can.Bus(interface="virtual", channel=channel)
    stop = threading.Event()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(replay(frames, tx, speed=1.0, stop=stop)),
                              daemon=True)
    worker.start()
    worker.join(30.0)
    stop.set()  # unstick a replay that waits for the corrupt frame's time
    worker.join(5.0)
    assert _ids(finish(len(frames))) == _ids(frames)
    assert result and result[0].frames_sent == 5 and result[0].discontinuities == 2
    assert "log time jumps" in caplog.text
    stats, sim_at = _sim_replay(frames, tx)
    assert sim_at == pytest.approx([0.0, 0.01, 0.01, 0.01, 0.02], abs=1e-6)
    assert stats.discontinuities == 2
    stats, sim_at = _sim_replay(_frames(0.0, 3.0, 3.5), tx, max_gap_s=2.0)  # the cap is configurable
    tx.shutdown()
    assert stats.discontinuities == 1 and sim_at == pytest.approx([0.0, 0.0, 0.5], abs=1e-9)


def test_non_finite_time_stamps_are_skipped_and_counted(channel, caplog):
    frames = _frames(10.0, float("inf"), 10.01, float("nan"), 10.02)
    finish = _collect(channel)
    tx = can.Bus(interface="virtual", channel=channel)
    stats = replay(frames, tx, speed=1.0)
    got = finish(3)
    assert [m.arbitration_id for m in got] == [0x100, 0x102, 0x104]
    assert stats.frames_sent == 3 and stats.bad_timestamps == 2 and "time stamp inf" in caplog.text
    _, sim_at = _sim_replay([can.Message(timestamp=float("nan"), arbitration_id=1), *frames], tx)
    tx.shutdown()
    assert sim_at == pytest.approx([0.0, 0.01, 0.02], abs=1e-9)  # a bad first stamp does not set t0


def test_replay_goes_on_past_bad_lines(tmp_path, channel, caplog):
    path = tmp_path / "dirty.log"
    path.write_text("(10.000) can0 100#01\n(10.001) can0 1#\n(10.002) can0 1XY#00\n(10.003) can0 101#02\n"
                    "(10.004) can0 102#0\n(10.005) can0 103#03\n", encoding="ascii")
    finish = _collect(channel)
    tx = can.Bus(interface="virtual", channel=channel)
    stats = replay_file(path, tx, speed=None)
    tx.shutdown()
    got = finish(3)
    assert [m.arbitration_id for m in got] == [0x100, 0x101, 0x103] and stats.frames_sent == 3
    assert f"{path}:2:" in caplog.text and f"{path}:3:" in caplog.text and f"{path}:5:" in caplog.text


def test_send_errors_are_counted_and_replay_goes_on(channel, caplog):
    """The adapter goes away in the middle of a replay: every later frame fails, is counted, no crash."""
    frames = [can.Message(timestamp=i * 0.001, arbitration_id=i, data=b"") for i in range(6)]
    tx = can.Bus(interface="virtual", channel=channel)
    finish = _collect(channel)

    def after(msg):
        if msg.arbitration_id == 2:
            tx.shutdown()

    stats = replay(frames, tx, speed=None, on_frame=after)
    assert [m.arbitration_id for m in finish(3)] == [0, 1, 2]
    assert stats.frames_sent == 3 and stats.send_errors == 3 and "frame 0x3" in caplog.text


def test_bad_speed_and_gap():
    with pytest.raises(ValueError, match="speed"):
        replay([], None, speed=0)
    with pytest.raises(ValueError, match="max_gap_s"):
        replay([], None, max_gap_s=0)


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

    finish = _collect(channel)
    tx = QueueFullOnce()
    stats = replay([can.Message(arbitration_id=0x7, data=b"\x01")], tx, speed=None)
    tx.bus.shutdown()
    assert stats.frames_sent == 1 and stats.send_errors == 0
    assert [m.arbitration_id for m in finish(1)] == [0x7]
