"""The store-and-forward queue: order, bound and drop policy, corrupt files, and power-cut safety.

Power cuts are simulated two ways. (1) A writer process is killed with SIGKILL at random points: this
proves the transaction structure (a message is fully in or not; counters agree with the rows) but not the
fsyncs, since the kernel keeps what the process wrote. (2) The on-disk state of a power cut is built by
hand: the WAL is cut, or its tail overwritten, anywhere inside the commit after the last acknowledged
``put``: the state a disk holds when power fails during a write, given that every acknowledged ``put``
was fsynced (``synchronous=FULL``).
"""

from __future__ import annotations

import logging
import random
import signal
import sqlite3
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from edge_assistant.uplink import schema
from edge_assistant.uplink.queue import MessageQueue, _is_corruption

PROC = Path(__file__).with_name("proc.py")
PRIO = schema.PRIORITY


def _put(q: MessageQueue, kind: str, tag: str, size: int = 10) -> int | None:
    return q.put(f"fleet/car-1/{kind}", tag.encode().ljust(size, b"."), kind, PRIO[kind])


def _tags(q: MessageQueue) -> list[str]:
    return [m.payload.rstrip(b".").decode() for m in q.peek(0, 10_000)]


def _check_consistent(path: Path) -> list[int]:
    """integrity_check passes and the counters agree with the rows; returns the ids present."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT id, size, length(payload) + length(CAST(topic AS BLOB)) FROM messages "
                          "ORDER BY id").fetchall()
        counters = dict(db.execute("SELECT name, value FROM counters"))
    finally:
        db.close()
    assert all(size == real for _, size, real in rows)
    assert (counters["count"], counters["bytes"]) == (len(rows), sum(r[1] for r in rows))
    return [r[0] for r in rows]


def test_fifo_order_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with MessageQueue(path) as q:
        ids = [_put(q, "health", f"h{i}") for i in range(10)]
        assert ids == sorted(ids) and len(q) == 10
        assert _tags(q) == [f"h{i}" for i in range(10)]
        assert [m.id for m in q.peek(ids[3], 2)] == ids[4:6]
        assert q.remove([ids[0], ids[9], 12345]) == 2
    with MessageQueue(path) as q:
        assert _tags(q) == [f"h{i}" for i in range(1, 9)]
        assert _put(q, "dtc", "d") > ids[9], "ids are never reused, so order and acknowledgements stay unambiguous"
        assert q.size_bytes == 8 * (10 + len("fleet/car-1/health")) + 10 + len("fleet/car-1/dtc")
    assert _check_consistent(path)


def test_count_bound_drops_oldest_of_lowest_priority_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_assistant.uplink.queue")
    with MessageQueue(tmp_path / "q.db", max_messages=5) as q:
        for kind, tag in [("health", "h0"), ("health", "h1"), ("dtc", "d0"), ("health", "h2"), ("trip", "t0")]:
            assert _put(q, kind, tag)
        assert _put(q, "dtc", "d1")                  # full: the oldest health goes
        assert _tags(q) == ["h1", "d0", "h2", "t0", "d1"]
        assert _put(q, "health", "h3")               # a health report pushes out only an older health report
        assert _tags(q) == ["d0", "h2", "t0", "d1", "h3"]
        assert _put(q, "trip", "t1") and _put(q, "trip", "t2")     # trips push out health first
        assert _tags(q) == ["d0", "t0", "d1", "t1", "t2"]
        assert _put(q, "health", "h4") is None       # nothing of its priority or lower to make room: refused
        assert _put(q, "dtc", "d2")                  # then the oldest trip
        assert _tags(q) == ["d0", "d1", "t1", "t2", "d2"]
        for i in range(3, 6):
            assert _put(q, "dtc", f"d{i}")
        assert _tags(q) == ["d1", "d2", "d3", "d4", "d5"]  # only DTCs left: the oldest DTC goes
        assert q.dropped == 9
        assert q.dropped_by_kind() == {"health": 5, "trip": 3, "dtc": 1}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped 1 oldest health message(s) for a new dtc message" in warnings[0].message
    assert sum("full" in r.message for r in caplog.records) == 9  # every drop event logged (later ones at debug)


def test_byte_bound_and_oversized_messages(tmp_path: Path) -> None:
    topic_len = len("fleet/car-1/health")
    with MessageQueue(tmp_path / "q.db", max_bytes=3 * (100 + topic_len)) as q:
        for i in range(3):
            assert _put(q, "health", f"h{i}", size=100)
        assert _put(q, "dtc", "big", size=150)     # needs the room of two 100-byte messages
        assert _tags(q) == ["h2", "big"]
        assert q.size_bytes <= q.max_bytes
        assert _put(q, "dtc", "huge", size=1000) is None  # larger than the whole bound: refused, counted
        assert q.dropped_by_kind() == {"health": 2, "dtc": 1}
        assert _tags(q) == ["h2", "big"]


def test_drop_counts_survive_a_restart(tmp_path: Path) -> None:
    with MessageQueue(tmp_path / "q.db", max_messages=1) as q:
        _put(q, "health", "a")
        _put(q, "health", "b")
    with MessageQueue(tmp_path / "q.db", max_messages=1) as q:
        assert (q.dropped, _tags(q)) == (1, ["b"])


def _moved_aside(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if ".corrupt-" in p.name)


@pytest.mark.parametrize("junk", [b"this is not a database " * 200, bytes(8192), b"SQLite for"],
                         ids=["text", "zeros", "torn-header"])
def test_garbage_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture, junk: bytes) -> None:
    path = tmp_path / "q.db"
    path.write_bytes(junk)
    Path(f"{path}-wal").write_bytes(b"stale wal")
    (tmp_path / "other.txt").write_text("kept")
    with MessageQueue(path) as q:
        assert len(q) == 0 and _put(q, "dtc", "after")
        assert _tags(q) == ["after"]
    aside, aside_wal = _moved_aside(path)
    assert aside.read_bytes() == junk and aside_wal.name == aside.name + "-wal"
    assert aside_wal.read_bytes() == b"stale wal" and (tmp_path / "other.txt").read_text() == "kept"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "moved it aside to" in record.message and str(aside) in record.message and str(path) in record.message


def test_damaged_pages_are_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "q.db"
    with MessageQueue(path) as q:
        for i in range(300):
            _put(q, "health", f"h{i}", size=200)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    rng = random.Random(3)
    for n in range(2, len(data) // page):  # scribble over every page but the first (header and schema)
        data[n * page + 8: n * page + 40] = rng.randbytes(32)
    path.write_bytes(bytes(data))
    with MessageQueue(path) as q:
        assert len(q) == 0
    assert len(_moved_aside(path)) == 1
    assert "quick_check failed" in caplog.text or "malformed" in caplog.text


def test_unknown_format_version_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with MessageQueue(path) as q:
        assert len(q) == 0
    assert len(_moved_aside(path)) == 1


def test_a_locked_database_is_not_mistaken_for_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    MessageQueue(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            sqlite3.connect(path, timeout=0).execute("PRAGMA quick_check").fetchall()
    finally:
        holder.close()
    assert not _is_corruption(locked.value)  # so MessageQueue raises it instead of moving the file aside
    (tmp_path / "junk.db").write_bytes(b"x" * 4096)
    with pytest.raises(sqlite3.DatabaseError) as junk:
        sqlite3.connect(tmp_path / "junk.db").execute("PRAGMA quick_check").fetchall()
    assert _is_corruption(junk.value)


def test_torn_wal_after_the_last_acknowledged_put(tmp_path: Path) -> None:
    """Power cut during a put: the WAL holds every fsynced commit, then part of the next one (or junk)."""
    live = tmp_path / "live"
    live.mkdir()
    q = MessageQueue(live / "q.db")
    wal = live / "q.db-wal"
    sizes = [wal.stat().st_size]
    for i in range(40):
        _put(q, "health", f"h{i}", size=60)
        sizes.append(wal.stat().st_size)
    assert all(b > a for a, b in pairwise(sizes)), "a checkpoint ran; the WAL offsets below are wrong"
    db_bytes, wal_bytes = (live / "q.db").read_bytes(), wal.read_bytes()
    rng = random.Random(11)
    for trial in range(12):
        acked = rng.randrange(0, 40)                 # puts acknowledged before the cut
        lo, hi = sizes[acked], sizes[acked + 1]      # the commit being written when power failed
        cut = rng.randrange(lo + 1, hi)
        tail = wal_bytes[lo:cut] if trial % 2 else rng.randbytes(hi - lo)
        d = tmp_path / f"cut{trial}"
        d.mkdir()
        (d / "q.db").write_bytes(db_bytes)
        (d / "q.db-wal").write_bytes(wal_bytes[:lo] + tail)
        with MessageQueue(d / "q.db") as copy:
            assert _tags(copy) == [f"h{i}" for i in range(acked)], f"trial {trial}: cut at {cut} in [{lo}, {hi})"
        assert _moved_aside(d / "q.db") == []
        _check_consistent(d / "q.db")
    q.close()


def test_writer_killed_at_random_points_keeps_every_acknowledged_message(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    rng = random.Random(5)
    queued: dict[int, int] = {}  # row id -> message number, for every put the writer reported as done
    removed: set[int] = set()    # row ids whose removal the writer reported as done
    removing: set[int] = set()   # row ids whose removal the writer started
    start = 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, str(PROC), "write", "--queue", str(path), "--start", str(start),
                                 "--count", "100000"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(rng.randint(5, 60))]  # let it run a random while,
        time.sleep(rng.uniform(0.0, 0.005))                                  # then kill it mid-operation
        proc.send_signal(signal.SIGKILL)
        lines += proc.stdout.read().splitlines()
        proc.wait()
        for line in lines:
            word, *args = line.split()
            if word == "queued":
                queued[int(args[1])] = int(args[0])
            elif word in ("removing", "removed"):  # a removal cut short by the kill may or may not be done
                (removing if word == "removing" else removed).update(int(x) for x in args[0].split(","))
        _check_consistent(path)
        with MessageQueue(path) as q:
            present = {m.id: int(schema.decode(m.payload)["id"][1:]) for m in q.peek(0, 1_000_000)}
        assert _moved_aside(path) == []
        assert {r: n for r, n in queued.items() if r not in removing}.items() <= present.items()
        assert not present.keys() & removed
        start = max([*queued.values(), *present.values()]) + 1
    assert len(queued) >= 40 and removed
