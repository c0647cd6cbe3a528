"""A store-and-forward message queue on disk (SQLite), safe across power cuts.

Durability: one SQLite transaction per ``put`` and per ``remove``, in WAL mode with ``synchronous=FULL``.
``put`` returns only after the WAL is fsynced, so a message reported as queued survives a power cut at any
later point, and a cut during ``put`` leaves the message either fully in or not at all (WAL frames carry
checksums and a commit marker; a torn tail is ignored on open). NORMAL would be faster but in WAL mode it
syncs only at checkpoints: a power cut could take back messages already reported as queued. The uplink
queues a few messages a minute; one fsync each (0.3-3 ms measured, see README) costs nothing at that rate.

Order: messages are delivered in ``id`` order (AUTOINCREMENT, never reused). A message is removed only
when the caller says so (the client does it after the broker's PUBACK).

Bound and drop policy: at most ``max_messages`` messages and ``max_bytes`` bytes (payload + topic). A new
message that does not fit evicts queued messages of the same or a lower priority, lowest priority first and
oldest first within a priority; if that cannot make room (or the message alone exceeds ``max_bytes``) the
new message is dropped instead. So a health report never pushes out a DTC change. Every drop is counted in
the database (total and per kind, kept across restarts) and logged (a warning at most once a minute).

A database that cannot be opened or fails SQLite's ``quick_check`` is moved aside (``<name>.corrupt-<time>``,
with its ``-wal``/``-shm``) with an error log line, and an empty queue is started in its place.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_assistant.core.paths import fsync_dir

__all__ = ["MessageQueue", "QueuedMessage"]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1  # PRAGMA user_version of a queue database
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DROP_LOG_INTERVAL_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_priority ON messages (priority, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counters (name, value) VALUES ('count', 0), ('bytes', 0), ('dropped', 0);
CREATE TRIGGER IF NOT EXISTS messages_added AFTER INSERT ON messages BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'count';
    UPDATE counters SET value = value + NEW.size WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS messages_removed AFTER DELETE ON messages BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'count';
    UPDATE counters SET value = value - OLD.size WHERE name = 'bytes';
END;
"""


@dataclass(frozen=True)
class QueuedMessage:
    """One message waiting to be sent; ``id`` gives the delivery order."""

    id: int
    kind: str
    topic: str
    payload: bytes


class _Unusable(Exception):
    """The database file exists but is corrupt or not a queue."""


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()  # Python 3.10 has no sqlite_errorcode
    return "malformed" in text or "not a database" in text


class MessageQueue:
    """A bounded FIFO of MQTT messages in one SQLite file; safe to share between threads (one lock)."""

    def __init__(self, path: Path | str, max_messages: int = 10_000, max_bytes: int = 20 * 1024 * 1024) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"queue bound must be positive: max_messages={max_messages}, max_bytes={max_bytes}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_drop_log_s = -_DROP_LOG_INTERVAL_S
        self._db: sqlite3.Connection | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._check_header()  # before SQLite opens it: SQLite would delete the -wal of a foreign file
            self._db = self._connect()
        except _Unusable as exc:
            self._move_aside(str(exc))
            self._db = self._connect()

    # -- opening -------------------------------------------------------------------------------------------

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except FileNotFoundError:
            return
        if head and head != _SQLITE_MAGIC:
            raise _Unusable(f"not an SQLite database: header {head[:16]!r}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise _Unusable(f"cannot switch to WAL mode (journal_mode={mode})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA journal_size_limit=4194304")
            check = [row[0] for row in db.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                raise _Unusable(f"quick_check failed: {'; '.join(map(str, check[:3]))}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _FORMAT_VERSION):
                raise _Unusable(f"queue format {version}, this code reads {_FORMAT_VERSION}")
            if version == 0:
                db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={_FORMAT_VERSION};COMMIT;")
        except sqlite3.DatabaseError as exc:
            db.close()
            if _is_corruption(exc):
                raise _Unusable(str(exc)) from exc
            raise
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{target}{suffix}")
        fsync_dir(self.path.parent)
        log.error("uplink queue %s is unusable (%s): moved it aside to %s and started an empty queue",
                  self.path, reason, target)

    # -- queue operations -----------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, kind: str, priority: int = 0) -> int | None:
        """Store one message durably and return its id, or None when the drop policy refused it.

        May evict older messages of the same or a lower priority to stay within the bound (see module doc).
        """
        size = len(payload) + len(topic.encode("utf-8"))
        row_id: int | None = None
        with self._lock:
            db = self._open_db()
            db.execute("BEGIN IMMEDIATE")
            try:
                victims = self._victims(size, priority)
                if victims is None:
                    self._count_drops(db, {kind: 1})
                else:
                    if victims:
                        db.executemany("DELETE FROM messages WHERE id = ?", [(v[0],) for v in victims])
                        by_kind: dict[str, int] = {}
                        for _, _, vkind in victims:
                            by_kind[vkind] = by_kind.get(vkind, 0) + 1
                        self._count_drops(db, by_kind)
                    row_id = db.execute("INSERT INTO messages (priority, kind, topic, payload, size) "
                                        "VALUES (?, ?, ?, ?, ?)", (priority, kind, topic, payload, size)).lastrowid
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if victims is None:
            self._log_drops(f"refused a new {kind} message ({size} bytes)")
        elif victims:
            kinds = "/".join(sorted({v[2] for v in victims}))
            self._log_drops(f"dropped {len(victims)} oldest {kinds} message(s) for a new {kind} message")
        return row_id

    def _victims(self, size: int, priority: int) -> list[tuple[int, int, str]] | None:
        """Messages to evict so that ``size`` more bytes fit, or None when the new message must be dropped."""
        if size > self.max_bytes:
            return None
        count, nbytes = self._totals()
        need_n, need_b = count + 1 - self.max_messages, nbytes + size - self.max_bytes
        victims: list[tuple[int, int, str]] = []
        if need_n <= 0 and need_b <= 0:
            return victims
        rows = self._open_db().execute(
            "SELECT id, size, kind FROM messages WHERE priority <= ? ORDER BY priority, id", (priority,))
        for row in rows:
            victims.append(row)
            need_n, need_b = need_n - 1, need_b - row[1]
            if need_n <= 0 and need_b <= 0:
                return victims
        return None

    def _count_drops(self, db: sqlite3.Connection, by_kind: dict[str, int]) -> None:
        for name, n in [("dropped", sum(by_kind.values()))] + [(f"dropped:{k}", n) for k, n in by_kind.items()]:
            db.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, n))

    def _log_drops(self, what: str) -> None:
        now = time.monotonic()
        level = logging.WARNING if now - self._last_drop_log_s >= _DROP_LOG_INTERVAL_S else logging.DEBUG
        if level == logging.WARNING:
            self._last_drop_log_s = now
        log.log(level, "uplink queue %s full (bound %d messages / %d bytes): %s; %d dropped in total",
                self.path, self.max_messages, self.max_bytes, what, self.dropped)

    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Up to ``limit`` messages with id > ``after_id``, oldest first (nothing is removed)."""
        with self._lock:
            rows = self._open_db().execute(
                "SELECT id, kind, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [QueuedMessage(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def remove(self, ids: Iterable[int]) -> int:
        """Delete delivered messages (one durable transaction); ids already gone are ignored. Returns how many."""
        keys = [(int(i),) for i in ids]
        if not keys:
            return 0
        with self._lock:
            db = self._open_db()
            before = self._totals()[0]
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM messages WHERE id = ?", keys)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return before - self._totals()[0]

    # -- figures -----------------------------------------------------------------------------------------

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError(f"uplink queue {self.path} is closed")
        return self._db

    def _totals(self) -> tuple[int, int]:
        rows = dict(self._open_db().execute("SELECT name, value FROM counters WHERE name IN ('count', 'bytes')"))
        return int(rows["count"]), int(rows["bytes"])

    def __len__(self) -> int:
        with self._lock:
            return self._totals()[0]

    @property
    def size_bytes(self) -> int:
        """Bytes queued (payloads + topics), the figure ``max_bytes`` bounds."""
        with self._lock:
            return self._totals()[1]

    @property
    def dropped(self) -> int:
        """Messages dropped by the bound since the database was created."""
        with self._lock:
            return int(self._open_db().execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])

    def dropped_by_kind(self) -> dict[str, int]:
        """``{"health": n, ...}``: drops per message kind since the database was created."""
        with self._lock:
            rows = self._open_db().execute("SELECT name, value FROM counters WHERE name LIKE 'dropped:%'").fetchall()
        return {name.removeprefix("dropped:"): int(value) for name, value in rows}

    # -- lifetime ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL back into the file)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> MessageQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
