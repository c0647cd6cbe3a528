"""Read one MDF4 log in a child process, so that a crash of asammdf's C code kills the child, not us.

``logs._mdf4_frames`` is the only user: it calls :func:`start_reader` and turns what the :class:`Reader`
reports (frames, an error, a signal, silence) into frames or a ``DataFormatError``.

How the children are made. One helper process per caller, the *zygote* (``python -c`` running
:func:`serve`, so never a fork of the caller and its threads), imports python-can and asammdf once and
then, for each file, forks a *reader* (:func:`read_frames`), reports its pid, reaps it and reports its
exit status (negative: the signal that killed it). So every file gets a fresh process in a few
milliseconds and its crash is named. multiprocessing's "spawn" and "forkserver" contexts were tried and
not used: their children re-run the caller's main script (a script without ``if __name__ ==
"__main__":`` fails; pytest's main costs 0.15 s a child), and spawn imports python-can and asammdf for
every file (0.6 s here, seconds on a small board). Where there is no ``fork`` (Windows) the caller reads
in-process instead (:data:`AVAILABLE`).

Channels, all made by the caller: a socket pair per file (a ``multiprocessing.connection.Connection``
at each end: the request goes to the reader, messages come back) and a pipe per file for the zygote's
two 8-byte numbers (pid, then exit status); their far ends travel to the zygote over its control socket
with ``SCM_RIGHTS`` (one byte per request). The zygote ends when the caller's end of that socket closes
(the caller exits). Messages from the reader, in order:

* ``("frames", [fields, ...])``: up to ``batch_frames`` frames, each a tuple in :data:`FRAME_FIELDS` order;
* ``("log", logger_name, level, text)``: a warning that asammdf or python-can logged (at most
  :data:`MAX_FORWARDED_LOGS` per file);
* then exactly one of ``("end",)``, ``("error", "import", text)`` (asammdf or python-can cannot be
  imported), ``("error", "open", text)`` (the header is unreadable) or ``("error", "read", text)``
  (a later block is).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from pathlib import Path

#: Whether this system can fork readers (else ``logs`` reads MDF4 in-process).
AVAILABLE = hasattr(os, "fork") and hasattr(socket, "send_fds")

#: The ``can.Message`` fields sent per frame, in tuple order (the keyword names of ``can.Message``).
FRAME_FIELDS = ("timestamp", "arbitration_id", "is_extended_id", "is_remote_frame", "is_error_frame",
                "is_fd", "bitrate_switch", "error_state_indicator", "dlc", "data", "channel", "is_rx")

#: At most this many log records are forwarded per file (a corrupt file can make asammdf warn per block).
MAX_FORWARDED_LOGS = 20

#: Environment of the zygote: one math thread is plenty for unpacking CAN records, and fewer threads make
#: forking it cheaper and safer.
_ZYGOTE_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_STATUS = struct.Struct("q")  # pid, then exit status, from the zygote


# ---------------------------------------------------------------------------------------------- caller side
class Reader:
    """One file's reader process, seen from the caller.

    :meth:`poll` and :meth:`recv` are the message channel's (``recv`` raises ``EOFError`` once the reader
    is gone); :meth:`exit_status` waits for the zygote's report; :meth:`close` stops the reader if it
    still runs and waits for it to be gone, so its temporary files can be removed after it.
    """

    def __init__(self, conn: Connection, status_fd: int) -> None:
        self.conn = conn
        self.pid: int | None = None
        self._status_fd = status_fd
        self._status = b""
        self._exit: int | None = None
        self._status_done = False

    def poll(self, timeout_s: float) -> bool:
        return self.conn.poll(timeout_s)

    def recv(self):
        return self.conn.recv()

    def exit_status(self, timeout_s: float) -> int | None:
        """The reader's exit status (negative: killed by that signal), or None if not known in time."""
        deadline = time.monotonic() + timeout_s
        while not self._status_done and wait([self._status_fd], max(0.0, deadline - time.monotonic())):
            chunk = os.read(self._status_fd, 2 * _STATUS.size)
            self._status += chunk
            if self.pid is None and len(self._status) >= _STATUS.size:
                self.pid = _STATUS.unpack_from(self._status)[0]
            if len(self._status) >= 2 * _STATUS.size:
                self._exit = _STATUS.unpack_from(self._status, _STATUS.size)[0]
            self._status_done = not chunk or self._exit is not None
        return self._exit

    def close(self, grace_s: float = 0.0) -> None:
        """Let the reader end for up to ``grace_s``, then kill it; wait (5 s at most) until it is gone."""
        self.conn.close()  # a reader still sending now gets EPIPE and ends
        if self._status_fd < 0:
            return
        if self.exit_status(grace_s) is None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):  # the zygote has not reaped it: the pid is its
                os.kill(self.pid, signal.SIGKILL)
            self.exit_status(5.0)
        os.close(self._status_fd)
        self._status_fd = -1


def start_reader(path: Path, tmp_dir: str, batch_frames: int) -> Reader:
    """Start reading ``path`` in a fresh process with ``tmp_dir`` as its temporary directory (or OSError)."""
    ours, theirs = socket.socketpair()
    status_r, status_w = os.pipe()
    try:
        _ZYGOTE.request([theirs.fileno(), status_w])
        conn = Connection(ours.detach())
    except BaseException:
        ours.close()
        os.close(status_r)
        raise
    finally:
        theirs.close()
        os.close(status_w)
    reader = Reader(conn, status_r)
    with contextlib.suppress(OSError):  # the zygote is gone: recv() says EOF, exit_status() has nothing
        conn.send((str(path), tmp_dir, batch_frames))
    return reader


class _Zygote:
    """The caller's handle on its zygote: started on first use (again if it died, or in a forked caller)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._atexit = False

    def forget_after_fork(self) -> None:
        """In a forked caller: the parent's zygote and lock are not ours (the lock may be held forever)."""
        self._lock = threading.Lock()
        if self._sock is not None:
            self._sock.close()  # our copy only; the parent's zygote is the parent's
        self._sock = self._proc = None

    def request(self, fds: list[int]) -> None:
        with self._lock:
            for attempt in range(2):
                if self._sock is None:
                    self._start()
                try:
                    socket.send_fds(self._sock, [b"R"], fds)
                    return
                except OSError:  # it died (killed, out of memory): start another once
                    self._stop()
                    if attempt:
                        raise

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        code = (f"import sys; sys.path[:] = {sys.path!r}; "
                f"from edge_assistant.vehicle._mdf4_worker import serve; serve({theirs.fileno()})")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # asammdf prints tracebacks to stdout; the errors reach us anyway
                env={**os.environ, **_ZYGOTE_ENV})
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if not self._atexit:
            atexit.register(self.shutdown)
            self._atexit = True
        self._sock = ours

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the zygote sees EOF and ends
        self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(1.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def shutdown(self) -> None:
        with self._lock:
            self._stop()


_ZYGOTE = _Zygote()
if AVAILABLE:
    os.register_at_fork(after_in_child=_ZYGOTE.forget_after_fork)


# ------------------------------------------------------------------------------------------------ zygote side
def serve(control_fd: int) -> None:
    """The zygote: import the readers' modules once, then fork a reader for each request on ``control_fd``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; the readers inherit this
    with contextlib.suppress(ImportError):  # a reader reports the ImportError itself
        import can  # noqa: F401 - imports asammdf too, when installed
    gc.freeze()  # what the readers inherit stays out of their collections: no copy-on-write of it
    control = socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes select() below
    signal.signal(signal.SIGCHLD, lambda *_: None)
    status_fds: dict[int, int] = {}  # reader pid -> the pipe its exit status goes to
    with selectors.DefaultSelector() as sel:
        sel.register(control, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj is control and not _fork_reader(control, status_fds, (wake_r, wake_w)):
                    return  # the caller is gone
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            _reap(status_fds)


def _fork_reader(control: socket.socket, status_fds: dict[int, int], wake: tuple[int, int]) -> bool:
    """Take one request from ``control`` and fork its reader; False when the caller has gone."""
    try:
        msg, fds, _, _ = socket.recv_fds(control, 1, 2)
    except OSError:
        return False
    if not msg:
        return False
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return True
    chan_fd, status_fd = fds
    try:
        pid = os.fork()
    except OSError:  # no processes left: the caller sees EOF and no status
        pid = -1
    if pid == 0:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (control.fileno(), status_fd, *wake, *status_fds.values()):
                os.close(fd)
            code = _reader_main(chan_fd)
        finally:
            os._exit(code)  # never back into the zygote's loop
    os.close(chan_fd)
    if pid > 0:
        with contextlib.suppress(OSError):  # the caller closed its end: it will not ask
            os.write(status_fd, _STATUS.pack(pid))
        status_fds[pid] = status_fd
    else:
        os.close(status_fd)
    return True


def _reap(status_fds: dict[int, int]) -> None:
    """Reap every reader that ended and report its exit status."""
    while status_fds:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status_fds.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, _STATUS.pack(os.waitstatus_to_exitcode(status)))
            os.close(fd)


def _reader_main(chan_fd: int) -> int:
    """The reader process: take the request from the caller and answer it; the exit code."""
    try:
        conn = Connection(chan_fd)
        path, tmp_dir, batch_frames = conn.recv()
        if os.path.isdir(tmp_dir):  # else the caller gave up (and removed it) before this process started
            read_frames(path, conn, tmp_dir, batch_frames)
    except EOFError:
        pass  # the caller gave up before sending the request
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


# ------------------------------------------------------------------------------------------------ reader side
class _ForwardLogs(logging.Handler):
    """Send WARNING and worse records to the caller, which logs them under the same logger name."""

    def __init__(self, conn) -> None:
        super().__init__(logging.WARNING)
        self.conn = conn
        self.sent = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.sent >= MAX_FORWARDED_LOGS:
            return
        self.sent += 1
        try:
            self.conn.send(("log", record.name, record.levelno, record.getMessage()))
        except Exception:  # a log record must never stop the reader
            self.handleError(record)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def read_frames(path: str, conn, tmp_dir: str, batch_frames: int) -> None:
    """Read the MDF4 log ``path`` and send its frames to ``conn`` (see the module doc for the messages).

    ``tmp_dir`` becomes this process's temporary directory (asammdf writes temporary copies of the file
    there); the caller removes it, or this process when the caller has gone. Any exception ends in an
    ``error`` message; a crash or a hang is the caller's to detect.
    """
    os.environ["TMPDIR"] = tmp_dir
    tempfile.tempdir = tmp_dir
    root = logging.getLogger()
    root.handlers[:] = [_ForwardLogs(conn)]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        _read_and_send(path, conn, batch_frames)
    except (BrokenPipeError, ConnectionResetError):  # the caller closed the iterator, or was killed
        shutil.rmtree(tmp_dir, ignore_errors=True)  # (a killed caller cannot remove it)


def _read_and_send(path: str, conn, batch_frames: int) -> None:
    try:
        import asammdf  # noqa: F401 - python-can's MF4 reader needs it
        import can
    except ImportError as exc:
        conn.send(("error", "import", _describe(exc)))
        return
    try:
        reader = can.LogReader(path)
        frames = iter(reader)
    except Exception as exc:  # asammdf raises many types on a corrupt header
        conn.send(("error", "open", _describe(exc)))
        return
    batch: list[tuple] = []
    while True:
        try:
            msg = next(frames)
        except StopIteration:
            break
        except Exception as exc:  # and on a corrupt block: send what came before, then stop
            if batch:
                conn.send(("frames", batch))
            conn.send(("error", "read", _describe(exc)))
            return
        batch.append((msg.timestamp, msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame,
                      msg.is_error_frame, msg.is_fd, msg.bitrate_switch, msg.error_state_indicator, msg.dlc,
                      bytes(msg.data), msg.channel, msg.is_rx))
        if len(batch) >= batch_frames:
            conn.send(("frames", batch))
            batch = []
    if batch:
        conn.send(("frames", batch))
    with contextlib.suppress(Exception):  # every frame was read; a failed close changes nothing
        reader.stop()
    conn.send(("end",))
