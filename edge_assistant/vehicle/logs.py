"""Read and write CAN logs as ``can.Message`` streams.

Formats, chosen by suffix (and, for ``.csv``, by the header line):

* candump ``.log`` (``(1436509052.249713) can0 123#DEADBEEF``, remote ``123#R``, CAN FD ``123##1..``):
  our own tolerant reader;
* SavvyCAN/GVRET ``.csv`` (``Time Stamp,ID,Extended,[Dir,]Bus,LEN,D1..D8``, time in microseconds):
  our own reader;
* everything python-can's ``LogReader`` reads: Vector ``.asc``/``.blf``, PCAN ``.trc``, python-can
  ``.csv``, ``.db``, and ASAM MDF4 ``.mf4`` (needs the optional ``asammdf``: ``pip install
  'edge-assistant[mdf]'``).

Truncated or garbage lines in the text formats we parse ourselves are skipped with a warning naming
``file:line`` and counted in :class:`LogStats`; reading goes on. A python-can reader that fails mid-file
stops that file with a :class:`DataFormatError` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

#: At most this many bad lines are warned about per file (all are counted).
MAX_WARNINGS_PER_FILE = 10

#: SocketCAN's error-frame flag in a candump id (``20000004#...``: error class 0x004, controller problem).
CAN_ERR_FLAG = 0x20000000


@dataclass
class LogStats:
    """What a reader saw: frames yielded and lines skipped (with the first few reasons)."""

    path: str = ""
    frames: int = 0
    bad_lines: int = 0
    first_errors: list[str] = field(default_factory=list)

    def bad(self, lineno: int, reason: str) -> None:
        self.bad_lines += 1
        where = f"{self.path}:{lineno}"
        if self.bad_lines <= MAX_WARNINGS_PER_FILE:
            log.warning("%s: skipped: %s", where, reason)
            self.first_errors.append(f"{where}: {reason}")
        elif self.bad_lines == MAX_WARNINGS_PER_FILE + 1:
            log.warning("%s: more bad lines; counting without warning", self.path)


def _parse_candump_line(line: str):
    """Parse one candump -L line; returns (ts, channel, id, ext, data, remote, fd, brs, esi) or raises."""
    if not line.startswith("("):
        raise ValueError("expected '(timestamp) interface frame'")
    close = line.index(")")
    ts = float(line[1:close])
    parts = line[close + 1:].split()
    if len(parts) < 2:
        raise ValueError("missing interface or frame")
    channel, frame = parts[0], parts[1]
    hash_at = frame.index("#")
    can_id = frame[:hash_at]
    if not can_id or len(can_id) not in (3, 8):
        raise ValueError(f"CAN id {can_id!r} must have 3 (11-bit) or 8 (29-bit) hex digits")
    arb = int(can_id, 16)
    ext = len(can_id) == 8
    body = frame[hash_at + 1:]
    remote = fd = brs = esi = False
    if body.startswith("#"):  # CAN FD: ##<flags><data>
        fd = True
        flags = int(body[1], 16)
        brs, esi = bool(flags & 1), bool(flags & 2)
        body = body[2:]
    elif body.startswith(("R", "r")):
        remote = True
        body = ""
    if len(body) % 2:
        raise ValueError(f"odd number of hex digits in data {body!r} (truncated line?)")
    data = bytes.fromhex(body)
    if len(data) > (64 if fd else 8):
        raise ValueError(f"{len(data)} data bytes is too long for a {'CAN FD' if fd else 'classic CAN'} frame")
    if not ext and arb > 0x7FF:
        raise ValueError(f"11-bit id 0x{arb:X} out of range")
    return ts, channel, arb, ext, data, remote, fd, brs, esi


def read_candump(path: str | Path, stats: LogStats | None = None) -> Iterator:
    """Yield ``can.Message`` from a candump ``-L`` log; bad lines are warned about and counted."""
    stats = stats if stats is not None else LogStats()
    stats.path = str(path)
    import can

    Message = can.Message
    with open(path, encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                ts, channel, arb, ext, data, remote, fd, brs, esi = _parse_candump_line(line)
            except (ValueError, IndexError) as exc:
                stats.bad(lineno, f"{exc} in {line[:60]!r}")
                continue
            stats.frames += 1
            if ext and arb & CAN_ERR_FLAG:  # an error frame: the id holds the error class (linux/can/error.h)
                yield Message(timestamp=ts, arbitration_id=arb & 0x1FFFFFFF, is_error_frame=True, data=data,
                              dlc=len(data), channel=channel, check=False)
                continue
            yield Message(timestamp=ts, arbitration_id=arb, is_extended_id=ext, is_remote_frame=remote,
                          data=data, dlc=len(data), channel=channel, is_fd=fd, bitrate_switch=brs,
                          error_state_indicator=esi, check=False)


_GVRET_REQUIRED = ("time stamp", "id", "extended", "len")


def read_gvret_csv(path: str | Path, stats: LogStats | None = None) -> Iterator:
    """Yield ``can.Message`` from a SavvyCAN/GVRET CSV (time stamps in microseconds)."""
    stats = stats if stats is not None else LogStats()
    stats.path = str(path)
    import can

    Message = can.Message
    with open(path, encoding="ascii", errors="replace") as fh:
        header = fh.readline().strip().lower().split(",")
        cols = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in _GVRET_REQUIRED if c not in cols]
        if missing:
            raise DataFormatError(f"{path}:1", f"not a SavvyCAN/GVRET CSV header (missing {missing})")
        i_ts, i_id, i_ext, i_len = (cols[c] for c in _GVRET_REQUIRED)
        i_bus = cols.get("bus")
        i_dir = cols.get("dir")
        i_d1 = cols.get("d1", i_len + 1)
        for lineno, line in enumerate(fh, 2):
            line = line.strip()
            if not line:
                continue
            f = line.split(",")
            try:
                raw_ts = f[i_ts]
                ts = float(raw_ts) if "." in raw_ts else int(raw_ts) / 1e6  # SavvyCAN: integer microseconds
                arb = int(f[i_id], 16)
                ext = f[i_ext].strip().lower() in ("true", "1")
                dlc = int(f[i_len])
                if not 0 <= dlc <= 64:
                    raise ValueError(f"LEN {dlc} out of range")
                fields = f[i_d1:i_d1 + dlc]
                if len(fields) < dlc:
                    raise ValueError(f"LEN {dlc} but {len(fields)} data bytes (truncated line?)")
                data = bytes(int(b, 16) for b in fields)
                if not ext and arb > 0x7FF:
                    raise ValueError(f"11-bit id 0x{arb:X} out of range")
            except (ValueError, IndexError) as exc:
                stats.bad(lineno, f"{exc} in {line[:60]!r}")
                continue
            stats.frames += 1
            yield Message(timestamp=ts, arbitration_id=arb, is_extended_id=ext, data=data, dlc=dlc,
                          is_fd=dlc > 8, channel=f[i_bus] if i_bus is not None and i_bus < len(f) else None,
                          is_rx=not (i_dir is not None and i_dir < len(f) and f[i_dir].lower() == "tx"),
                          check=False)


def _python_can_reader(path: Path, stats: LogStats) -> Iterator:
    import can

    stats.path = str(path)
    if path.suffix.lower() in (".mf4", ".mdf"):
        try:
            import asammdf  # noqa: F401 - python-can's MF4 reader needs it
        except ImportError as exc:
            raise ConfigError(f"{path}: reading MDF4 needs the optional asammdf package: "
                              "pip install 'edge-assistant[mdf]'") from exc
    try:
        reader = can.LogReader(str(path))
    except Exception as exc:  # readers raise struct.error, ValueError, OSError... on a corrupt header
        raise DataFormatError(str(path), f"python-can cannot open this log: {exc}") from exc
    with reader:
        it = iter(reader)
        while True:
            try:
                msg = next(it)
            except StopIteration:
                return
            except Exception as exc:  # readers raise many types on corrupt input; report and stop this file
                raise DataFormatError(f"{path} (after frame {stats.frames})", f"corrupt log: {exc}") from exc
            stats.frames += 1
            yield msg


def detect_format(path: str | Path) -> str:
    """``candump``, ``gvret`` or ``python-can`` for a log file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".log", ".candump"):
        return "candump"
    if suffix == ".csv":
        try:
            with open(p, encoding="ascii", errors="replace") as fh:
                first = fh.readline().lower()
        except OSError as exc:
            raise DataFormatError(str(p), f"cannot read: {exc.strerror or exc}") from exc
        return "gvret" if first.startswith("time stamp") else "python-can"
    return "python-can"


def read_log(path: str | Path, stats: LogStats | None = None, channel: str | int | None = None) -> Iterator:
    """Yield every frame of a log as ``can.Message`` (format from the suffix; see module doc).

    ``channel`` keeps only the frames of one bus of a multi-bus log (compared as text: ``0``/``1`` for
    the GVRET ``Bus`` column, ``can0`` for candump), e.g. the P-CAN half of a P-CAN + C-CAN capture
    where the gateway repeats ids with a different layout on each bus.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(str(p), "no such log file")
    stats = stats if stats is not None else LogStats()
    fmt = detect_format(p)
    if fmt == "candump":
        frames = read_candump(p, stats)
    elif fmt == "gvret":
        frames = read_gvret_csv(p, stats)
    else:
        frames = _python_can_reader(p, stats)
    if channel is None:
        return frames
    want = str(channel)
    return (m for m in frames if str(m.channel) == want)


def format_candump_line(msg, channel: str = "can0") -> str:
    """One candump ``-L`` line for ``msg`` (error frames as ``2000xxxx#`` with the error class, like candump)."""
    if msg.is_error_frame:
        return f"({msg.timestamp:.6f}) {channel} {CAN_ERR_FLAG | (msg.arbitration_id & 0x1FFFFFFF):08X}#" \
               f"{bytes(msg.data).hex().upper()}"
    ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    if msg.is_remote_frame:
        body = "R"
    elif msg.is_fd:
        body = f"#{(1 if msg.bitrate_switch else 0) | (2 if msg.error_state_indicator else 0):X}{msg.data.hex().upper()}"
    else:
        body = bytes(msg.data).hex().upper()
    return f"({msg.timestamp:.6f}) {channel} {ident}#{body}"


def write_log(path: str | Path, messages: Iterable, channel: str | None = None) -> int:
    """Write ``messages`` (error frames included) to a candump ``-L`` log; returns frames written."""
    n = 0
    with open(path, "w", encoding="ascii") as fh:
        for msg in messages:
            ch = channel or (str(msg.channel) if msg.channel is not None else "can0")
            fh.write(format_candump_line(msg, ch) + "\n")
            n += 1
    return n


class CandumpWriter:
    """Incremental candump writer (for ``can record``); flushes every line so a crash loses nothing."""

    def __init__(self, path: str | Path, channel: str = "can0") -> None:
        self.path = str(path)
        self.channel = channel
        self.frames = 0
        self._fh = open(path, "w", encoding="ascii")  # noqa: SIM115 - closed in close()

    def write(self, msg) -> None:
        self._fh.write(format_candump_line(msg, self.channel) + "\n")
        self.frames += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CandumpWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
