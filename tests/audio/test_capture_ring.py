"""The capture ring buffer: order, wrap-around, overrun accounting, waiting and closing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge_assistant.audio.ring import RingBuffer


def ramp(start: int, n: int) -> np.ndarray:
    return (np.arange(start, start + n) % 30000).astype(np.int16)


def test_fifo_order_across_wraparound_with_any_chunk_sizes() -> None:
    ring = RingBuffer(100)
    rng = np.random.default_rng(0)
    written = read = 0
    out = []
    for _ in range(500):
        n = int(rng.integers(1, 60))
        if len(ring) + n <= ring.capacity:
            ring.write(ramp(written, n))
            written += n
        got = ring.read(1, timeout_s=0, max_samples=int(rng.integers(1, 70)))
        if got is not None:
            out.append(got)
            read += got.size
    rest = ring.read(1, timeout_s=0, max_samples=1000)
    if rest is not None:
        out.append(rest)
    assert np.array_equal(np.concatenate(out), ramp(0, written))
    assert ring.overruns == ring.overrun_samples == 0


def test_full_ring_drops_the_oldest_and_counts_it() -> None:
    ring = RingBuffer(10)
    assert ring.write(ramp(0, 8)) == 0
    assert ring.write(ramp(8, 5)) == 3  # 3 oldest dropped
    assert (ring.overruns, ring.overrun_samples) == (1, 3)
    assert np.array_equal(ring.read(10, timeout_s=0), ramp(3, 10))
    # A write larger than the ring keeps only its newest samples.
    ring.write(ramp(100, 4))
    assert ring.write(ramp(200, 25)) == 4 + 15
    assert (ring.overruns, ring.overrun_samples) == (2, 3 + 19)
    assert np.array_equal(ring.read(10, timeout_s=0), ramp(215, 10))
    assert ring.read(1, timeout_s=0) is None


def test_read_waits_for_a_whole_chunk_or_returns_what_is_there_at_timeout() -> None:
    ring = RingBuffer(100)
    ring.write(ramp(0, 5))
    got = ring.read(10, timeout_s=0.01)  # timeout: the 5 there are returned
    assert np.array_equal(got, ramp(0, 5))
    assert ring.read(10, timeout_s=0.01) is None

    result: list[np.ndarray | None] = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        result.append(ring.read(10, timeout_s=None))

    t = threading.Thread(target=reader)
    t.start()
    waiting.wait()
    ring.write(ramp(5, 4))  # not enough: the reader keeps waiting
    ring.write(ramp(9, 6))
    t.join(10)
    assert not t.is_alive() and np.array_equal(result[0], ramp(5, 10))
    assert len(ring) == 0


def test_close_wakes_a_waiting_reader_and_reads_no_longer_wait() -> None:
    ring = RingBuffer(100)
    result: list[np.ndarray | None] = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        result.append(ring.read(10, timeout_s=None))

    t = threading.Thread(target=reader)
    t.start()
    waiting.wait()
    ring.write(ramp(0, 3))
    ring.close()
    t.join(10)
    assert not t.is_alive()
    assert np.array_equal(result[0], ramp(0, 3))
    assert ring.read(10, timeout_s=None) is None  # closed and empty: returns at once
    ring.reopen()
    ring.write(ramp(3, 10))
    assert np.array_equal(ring.read(10, timeout_s=None), ramp(3, 10))


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity_samples"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="want"):
        RingBuffer(4).read(0, timeout_s=0)
