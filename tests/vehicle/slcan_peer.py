"""A test peer for SLCAN: an adapter emulator on a pseudo-terminal, bridged to a python-can virtual bus.

The device side (what ``slcan:/dev/pts/N`` opens) speaks the Lawicel ASCII protocol: ``S0``-``S8`` set
the bitrate, ``O``/``L`` open, ``C`` close, ``t``/``T``/``r``/``R`` transmit (acknowledged with
``z``/``Z``); frames arriving on the virtual bus are written to the serial line as ``tIIILDD..``. Tests
can inject raw bytes (``noise``) or pull the plug (``unplug``).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading

import can

BITRATES = {"S0": 10_000, "S1": 20_000, "S2": 50_000, "S3": 100_000, "S4": 125_000, "S5": 250_000,
            "S6": 500_000, "S7": 800_000, "S8": 1_000_000}


class SlcanPeer:
    def __init__(self, channel: str) -> None:
        self.master, slave = os.openpty()
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the path stays valid until unplug()
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.bitrate: int | None = None
        self.is_open = False
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._serial_loop, daemon=True),
                         threading.Thread(target=self._bus_loop, daemon=True)]
        for t in self._threads:
            t.start()

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self.master >= 0:
                with contextlib.suppress(OSError):
                    os.write(self.master, data)

    def noise(self, data: bytes) -> None:
        self._write(data)

    def _serial_loop(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self.master, 4096)
            except (OSError, ValueError):
                return
            buf += chunk
            while b"\r" in buf:
                line, buf = buf.split(b"\r", 1)
                self._command(line.decode("ascii", "replace"))

    def _command(self, cmd: str) -> None:
        self.commands.append(cmd)
        if not cmd:
            return
        if cmd in BITRATES:
            self.bitrate = BITRATES[cmd]
            self._write(b"\r")
        elif cmd in ("O", "L"):
            self.is_open = True
            self._write(b"\r")
        elif cmd == "C":
            self.is_open = False
            self._write(b"\r")
        elif cmd[0] in "tTrR":
            ext = cmd[0] in "TR"
            n = 8 if ext else 3
            arb = int(cmd[1:1 + n], 16)
            dlc = int(cmd[1 + n])
            remote = cmd[0] in "rR"
            data = b"" if remote else bytes.fromhex(cmd[2 + n:2 + n + 2 * dlc])
            self.bus.send(can.Message(arbitration_id=arb, is_extended_id=ext, is_remote_frame=remote, dlc=dlc,
                                      data=data))
            self._write(b"Z\r" if ext else b"z\r")
        else:
            self._write(b"\x07")  # BEL: unknown command

    def _bus_loop(self) -> None:
        while not self._stop.is_set():
            msg = self.bus.recv(0.05)
            if msg is None or not self.is_open:
                continue
            ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
            if msg.is_remote_frame:
                line = ("R" if msg.is_extended_id else "r") + ident + str(msg.dlc)
            else:
                line = ("T" if msg.is_extended_id else "t") + ident + str(len(msg.data)) + bytes(msg.data).hex().upper()
            self._write(line.encode() + b"\r")

    def unplug(self) -> None:
        """The adapter disappears: both ends of the pseudo-terminal close."""
        with self._lock:
            for fd in (self.master, self._slave):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self._slave = -1

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(1.0)
        self.unplug()
        self.bus.shutdown()
