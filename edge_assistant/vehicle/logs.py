"""Read and write CAN logs as ``can.Message`` streams.

Formats, chosen by suffix (and, for ``.csv``, by the header line):

* candump ``.log`` (``(1436509052.249713) can0 123#DEADBEEF``, remote ``123#R``, CAN FD ``123##1..``):
  our own tolerant reader;
* SavvyCAN/GVRET ``.csv`` (``Time Stamp,ID,Extended,[Dir,]Bus,LEN,D1..D8``, time in microseconds):
  our own reader;
* Vector ``.blf``: our own bounded reader (:mod:`edge_assistant.vehicle._blf`);
* everything else python-can's ``LogReader`` reads: Vector ``.asc``, PCAN ``.trc``, python-can
  ``.csv``, ``.db``, and ASAM MDF4 ``.mf4`` (needs the optional ``asammdf``: ``pip install
  'edge-assistant[mdf]'``).

Truncated or garbage lines in the text formats we parse ourselves are skipped with a warning naming
``file:line`` and counted in :class:`LogStats`; reading goes on. Time stamps must be plain decimal numbers
(no ``inf``/``nan``, no sign), ids plain hex digits that fit 11 bits (3 digits) or 29 bits (8 digits, plus
SocketCAN's error flag). Frames that python-can's readers return with an impossible time stamp or id are
skipped and counted the same way (named by frame index). A python-can reader that fails mid-file stops
that file with a :class:`DataFormatError` naming it.

No line longer than :data:`MAX_LINE_CHARS` is read into memory: such a line (a binary file, a file
without newlines) stops the file with a :class:`DataFormatError` naming ``file:line``.

MDF4 files are read in a child process (:mod:`edge_assistant.vehicle._mdf4_worker`), because asammdf's C
code can crash the interpreter on a corrupt file instead of raising. The child streams frames back in
batches of :data:`MDF4_BATCH_FRAMES`; a crash of the child (a signal), a child that runs past its time
limit (:data:`MDF4_TIMEOUT_BASE_S` plus one second per :data:`MDF4_TIMEOUT_BYTES_PER_S` bytes of file,
counting only the time spent waiting on it) and a file larger than :data:`MAX_MDF4_BYTES` all stop the
file with a :class:`DataFormatError` naming it. asammdf's temporary files go into a private directory
that is removed when the file is done (or the iterator is closed). Where there is no ``fork`` (Windows)
MDF4 is read in this process, as python-can would, without that protection.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

#: At most this many bad lines are warned about per file (all are counted).
MAX_WARNINGS_PER_FILE = 10

#: SocketCAN's error-frame flag in a candump id (``20000004#...``: error class 0x004, controller problem).
CAN_ERR_FLAG = 0x20000000

#: Longest text-log line read. A CAN FD candump line is under 200 characters and a 64-byte GVRET row
#: under 300; anything longer is not a CAN log line (or the file has no newlines).
MAX_LINE_CHARS = 4096

#: Largest MDF4 file read (bytes). The child holds asammdf's view of the file (block lists, a temporary
#: copy of a corrupt file) in memory and on disk, so this bounds both; loggers split their logs into files
#: far smaller (the real ones in the tests are 80 kB and 1.3 MB). Split a larger file first (asammdf's
#: ``MDF.cut``) or convert it to candump.
MAX_MDF4_BYTES = 256 * 1024 * 1024

#: Frames per batch sent from the MDF4 child (about 60 bytes each when pickled).
MDF4_BATCH_FRAMES = 2000

#: The MDF4 child's time limit is this many seconds (process start on a slow board) plus one second per
#: :data:`MDF4_TIMEOUT_BYTES_PER_S` bytes of file; only time spent waiting on the child counts, so a slow
#: consumer (a real-time replay) never trips it. A file of 1.3 MB with 72,000 frames takes about 1 s on a
#: desktop core, so the limit is generous for a slow board and still bounds a hang.
MDF4_TIMEOUT_BASE_S = 30.0
MDF4_TIMEOUT_BYTES_PER_S = 100 * 1024

_MDF4_SUFFIXES = (".mf4", ".mdf")

_TIMESTAMP_RE = re.compile(r"\d{1,20}(?:\.\d{1,12})?")  # always finite; no sign, inf, nan or exponent
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
_TEXT_SUFFIXES = (".asc", ".trc", ".csv")  # python-can formats read line by line


@dataclass
class LogStats:
    """What a reader saw: frames yielded and lines skipped (with the first few reasons)."""

    path: str = ""
    frames: int = 0
    bad_lines: int = 0
    first_errors: list[str] = field(default_factory=list)

    def bad(self, lineno: int | str, reason: str) -> None:
        """Count one skipped line (``lineno``) or frame (a text such as ``"frame 12"``)."""
        self.bad_lines += 1
        where = f"{self.path}:{lineno}" if isinstance(lineno, int) else f"{self.path} ({lineno})"
        if self.bad_lines <= MAX_WARNINGS_PER_FILE:
            log.warning("%s: skipped: %s", where, reason)
            self.first_errors.append(f"{where}: {reason}")
        elif self.bad_lines == MAX_WARNINGS_PER_FILE + 1:
            log.warning("%s: more bad lines; counting without warning", self.path)


def _lines(fh, path: str | Path) -> Iterator[tuple[int, str]]:
    """``(lineno, line)`` of a text file; a line longer than :data:`MAX_LINE_CHARS` raises DataFormatError."""
    lineno = 1
    while line := fh.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise DataFormatError(f"{path}:{lineno}", f"line longer than {MAX_LINE_CHARS} characters; expected "
                                                      "one CAN frame per line (binary file or no newlines?)")
        yield lineno, line
        lineno += 1


def _timestamp(text: str) -> float:
    if not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError(f"time stamp {text[:30]!r} must be a plain decimal number of seconds")
    return float(text)


def _hex(text: str, what: str) -> int:
    if not _HEX_RE.fullmatch(text):
        raise ValueError(f"{what} {text[:30]!r} must be hex digits")
    return int(text, 16)


def _check_id(arb: int, ext: bool) -> None:
    if arb > (0x1FFFFFFF if ext else 0x7FF):
        raise ValueError(f"{29 if ext else 11}-bit id 0x{arb:X} out of range")


def _parse_candump_line(line: str):
    """Parse one candump -L line; returns (ts, channel, id, ext, data, remote, fd, brs, esi) or raises."""
    if not line.startswith("("):
        raise ValueError("expected '(timestamp) interface frame'")
    close = line.index(")")
    ts = _timestamp(line[1:close])
    parts = line[close + 1:].split()
    if len(parts) < 2:
        raise ValueError("missing interface or frame")
    channel, frame = parts[0], parts[1]
    hash_at = frame.index("#")
    can_id = frame[:hash_at]
    if not can_id or len(can_id) not in (3, 8):
        raise ValueError(f"CAN id {can_id!r} must have 3 (11-bit) or 8 (29-bit) hex digits")
    arb = _hex(can_id, "CAN id")
    ext = len(can_id) == 8
    _check_id(arb & ~CAN_ERR_FLAG if ext else arb, ext)  # 8 digits: 29 bits, or the error flag + error class
    body = frame[hash_at + 1:]
    remote = fd = brs = esi = False
    if body.startswith("#"):  # CAN FD: ##<flags><data>
        fd = True
        flags = _hex(body[1:2], "CAN FD flags")
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
    return ts, channel, arb, ext, data, remote, fd, brs, esi


def read_candump(path: str | Path, stats: LogStats | None = None) -> Iterator:
    """Yield ``can.Message`` from a candump ``-L`` log; bad lines are warned about and counted."""
    stats = stats if stats is not None else LogStats()
    stats.path = str(path)
    import can

    Message = can.Message
    with open(path, encoding="ascii", errors="replace") as fh:
        for lineno, line in _lines(fh, path):
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
        lines = _lines(fh, path)
        header = next(lines, (1, ""))[1].strip().lower().split(",")
        cols = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in _GVRET_REQUIRED if c not in cols]
        if missing:
            raise DataFormatError(f"{path}:1", f"not a SavvyCAN/GVRET CSV header (missing {missing})")
        i_ts, i_id, i_ext, i_len = (cols[c] for c in _GVRET_REQUIRED)
        i_bus = cols.get("bus")
        i_dir = cols.get("dir")
        i_d1 = cols.get("d1", i_len + 1)
        for lineno, line in lines:
            line = line.strip()
            if not line:
                continue
            f = line.split(",")
            try:
                raw_ts = f[i_ts]
                ts = _timestamp(raw_ts) / (1.0 if "." in raw_ts else 1e6)  # SavvyCAN: integer microseconds
                arb = _hex(f[i_id], "ID")
                ext = f[i_ext].strip().lower() in ("true", "1")
                _check_id(arb, ext)
                dlc = int(f[i_len])
                if not 0 <= dlc <= 64:
                    raise ValueError(f"LEN {dlc} out of range")
                fields = f[i_d1:i_d1 + dlc]
                if len(fields) < dlc:
                    raise ValueError(f"LEN {dlc} but {len(fields)} data bytes (truncated line?)")
                digits = "".join(b.rjust(2, "0") for b in fields)
                data = bytes.fromhex(digits) if len(digits) == 2 * dlc else b""
                if len(data) != dlc:
                    raise ValueError(f"data bytes {fields} must be 1-2 hex digits each")
            except (ValueError, IndexError) as exc:
                stats.bad(lineno, f"{exc} in {line[:60]!r}")
                continue
            stats.frames += 1
            yield Message(timestamp=ts, arbitration_id=arb, is_extended_id=ext, data=data, dlc=dlc,
                          is_fd=dlc > 8, channel=f[i_bus] if i_bus is not None and i_bus < len(f) else None,
                          is_rx=not (i_dir is not None and i_dir < len(f) and f[i_dir].lower() == "tx"),
                          check=False)


def _check_line_lengths(path: Path) -> None:
    """Raise DataFormatError naming ``file:line`` at the first line over :data:`MAX_LINE_CHARS` bytes.

    python-can's text readers read whole lines; this pass, in 64 KiB chunks, keeps a file without
    newlines from being read into memory as one line.
    """
    lineno, run = 1, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            lengths = [len(part) for part in chunk.split(b"\n")]
            lengths[0] += run
            if max(lengths) > MAX_LINE_CHARS:
                lineno += next(i for i, n in enumerate(lengths) if n > MAX_LINE_CHARS)
                raise DataFormatError(f"{path}:{lineno}", f"line longer than {MAX_LINE_CHARS} characters; "
                                                          "expected one CAN frame per line")
            lineno += len(lengths) - 1
            run = lengths[-1]


def _frame_problem(msg) -> str | None:
    """Why a frame from a python-can reader cannot be real (None when it can)."""
    if not math.isfinite(msg.timestamp):
        return f"time stamp {msg.timestamp} is not finite"
    if not 0 <= msg.arbitration_id <= (0x1FFFFFFF if msg.is_extended_id else 0x7FF):
        return f"{29 if msg.is_extended_id else 11}-bit id 0x{msg.arbitration_id:X} out of range"
    if len(msg.data) > 64:
        return f"{len(msg.data)} data bytes (at most 64)"
    return None


def _python_can_reader(path: Path, stats: LogStats) -> Iterator:
    stats.path = str(path)
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        _check_line_lengths(path)
    if suffix in _MDF4_SUFFIXES:
        frames = _mdf4_frames(path, stats)
    elif suffix == ".blf":  # our bounded reader: python-can's can loop forever or inflate without a limit
        from edge_assistant.vehicle._blf import read_blf

        frames = read_blf(path)
    else:
        frames = _python_can_frames(path, stats)
    n = 0
    for msg in frames:
        n += 1
        problem = _frame_problem(msg)
        if problem is not None:
            stats.bad(f"frame {n}", problem)
            continue
        stats.frames += 1
        yield msg


def _python_can_frames(path: Path, stats: LogStats) -> Iterator:
    """Frames of a log that python-can reads in this process (every format but MDF4)."""
    import can

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
            yield msg


def _mdf4_frames(path: Path, stats: LogStats) -> Iterator:
    """Frames of an MDF4 log, read by python-can and asammdf in a child process (see the module doc)."""
    if importlib.util.find_spec("asammdf") is None:  # checked here: the child would only say it failed
        raise ConfigError(f"{path}: reading MDF4 needs the optional asammdf package: "
                          "pip install 'edge-assistant[mdf]'")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataFormatError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if size > MAX_MDF4_BYTES:
        raise DataFormatError(str(path), f"MDF4 file of {size} bytes is larger than the "
                                         f"{MAX_MDF4_BYTES}-byte limit (MAX_MDF4_BYTES); split it or "
                                         "convert it to candump first")
    from edge_assistant.vehicle import _mdf4_worker

    if not _mdf4_worker.AVAILABLE:  # no fork (Windows): in this process, as python-can would
        yield from _python_can_frames(path, stats)
        return
    limit_s = MDF4_TIMEOUT_BASE_S + size / MDF4_TIMEOUT_BYTES_PER_S
    tmp_dir = tempfile.mkdtemp(prefix="edge-assistant-mdf4-")
    reader = None
    finished = False
    waited_s = 0.0
    try:
        try:
            reader = _mdf4_worker.start_reader(path.resolve(), tmp_dir, MDF4_BATCH_FRAMES)
        except OSError as exc:  # no processes or file descriptors left, no Python executable...
            raise DataFormatError(str(path), f"cannot start the MDF4 reader process: {exc}") from exc
        import can  # after the start: on a first call the helper process imports it at the same time

        Message = can.Message
        while True:
            t0 = time.monotonic()
            try:
                if not reader.poll(max(0.0, limit_s - waited_s)):
                    raise DataFormatError(
                        str(path), f"the MDF4 reader ran longer than {limit_s:.0f} s (the limit for a file "
                                   f"of {size} bytes) after frame {stats.frames}; stopped it (file corrupt?)")
                item = reader.recv()
            except EOFError:
                raise DataFormatError(str(path), _mdf4_death(reader.exit_status(5.0), stats)) from None
            waited_s += time.monotonic() - t0
            kind = item[0]
            if kind == "frames":
                for t, ident, ext, rtr, err, fd, brs, esi, dlc, data, channel, rx in item[1]:  # FRAME_FIELDS
                    yield Message(timestamp=t, arbitration_id=ident, is_extended_id=ext, is_remote_frame=rtr,
                                  is_error_frame=err, is_fd=fd, bitrate_switch=brs, error_state_indicator=esi,
                                  dlc=dlc, data=data, channel=channel, is_rx=rx, check=False)
            elif kind == "log":
                logging.getLogger(item[1]).log(item[2], "%s: %s", path, item[3])
            elif kind == "end":
                finished = True
                return
            elif item[1] == "import":
                raise ConfigError(f"{path}: reading MDF4 needs the optional asammdf package: pip install "
                                  f"'edge-assistant[mdf]' ({item[2]})")
            elif item[1] == "open":
                raise DataFormatError(str(path), f"python-can cannot open this log: {item[2]}")
            else:
                raise DataFormatError(f"{path} (after frame {stats.frames})", f"corrupt log: {item[2]}")
    finally:
        if reader is not None:
            reader.close(grace_s=1.0 if finished else 0.0)  # a finished reader is exiting; others are stopped
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _mdf4_death(status: int | None, stats: LogStats) -> str:
    """Why the MDF4 reader ended without a last message: killed by a signal (a crash), or else."""
    after = f"after frame {stats.frames}"
    if status is None:
        return f"the MDF4 reader process ended without an exit status {after} (could not start?)"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"the MDF4 reader crashed ({name}) on this file {after} (file corrupt?)"
    return f"the MDF4 reader exited with code {status} on this file {after}"


def detect_format(path: str | Path) -> str:
    """``candump``, ``gvret`` or ``python-can`` for a log file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".log", ".candump"):
        return "candump"
    if suffix == ".csv":
        try:
            with open(p, encoding="ascii", errors="replace") as fh:
                first = fh.readline(MAX_LINE_CHARS).lower()
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
