"""ELM327 adapters over a serial port (pyserial): a client for the AT/OBD command set, and an emulator
that answers on a pseudo-terminal from a real ISO-TP tester on a CAN bus (for tests and demos).

The client runs the usual set-up (``ATZ``, ``ATE0``, ``ATL0``, ``ATS0``, ``ATH1``, ``ATSP6``), reads each
answer up to the ``>`` prompt, drops echo, ``SEARCHING...`` and serial noise (bytes that are not
printable ASCII, lines that are not hex), turns ``NO DATA``/``?``/``CAN ERROR`` into clear errors, and
reassembles the headered ISO-TP frames per ECU with :mod:`isotp_log`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import select
import threading
import time
from collections import deque

from edge_assistant.core.errors import ConfigError, DataFormatError, EdgeAssistantError
from edge_assistant.diagnostics.clients import DiagnosticTimeout, ObdServices
from edge_assistant.diagnostics.isotp_log import IsoTpReassembler, segment

log = logging.getLogger(__name__)

PROMPT = b">"
INIT_COMMANDS = ("ATE0", "ATL0", "ATS0", "ATH1")
_ERRORS = ("UNABLE TO CONNECT", "CAN ERROR", "BUS ERROR", "BUS INIT: ...ERROR", "BUFFER FULL", "FB ERROR",
           "DATA ERROR", "STOPPED", "LV RESET", "ACT ALERT")
_HEX = re.compile(r"^[0-9A-F]+$")
SKIPPED_LINES_KEPT = 32  #: the latest skipped answer lines kept for diagnosis (all are counted)
MAX_COMMAND_BYTES = 256  #: the emulator keeps at most this much of a command line without its CR
#: Longest answer the client reads up to the prompt: a 4095-byte ISO-TP answer with headers and spaces is
#: about 18 kB; more is an adapter that babbles without a '>'.
MAX_ANSWER_BYTES = 64 * 1024


try:  # pyserial's POSIX backend lets termios.error (not an OSError) out of tcflush on a hung-up port
    from termios import error as _termios_error

    _TERMIOS_ERRORS: tuple[type[Exception], ...] = (_termios_error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()


class Elm327Error(EdgeAssistantError):
    """The adapter reported an error (``CAN ERROR``, ``UNABLE TO CONNECT`` ...) or did not answer."""


class Elm327Client(ObdServices):
    """An ELM327 (or clone) on ``port``. ``request`` returns {response id: ISO-TP payload}.

    Counters for a long session: ``noise_bytes`` (non-text bytes dropped), ``skipped_count`` (answer
    lines that were not headered CAN frames); ``skipped_lines`` keeps only the latest
    ``SKIPPED_LINES_KEPT`` of them.
    """

    def __init__(self, port: str, baudrate: int = 38400, timeout_s: float = 2.0, reset_timeout_s: float = 5.0,
                 ecu_timeout_ms: int | None = None) -> None:
        """``ecu_timeout_ms``: how long the adapter waits for an ECU's answer (``AT ST``, 4 ms steps up to 1020 ms;
        None keeps the adapter's default, about 200 ms), for slow ECUs or gateways."""
        if ecu_timeout_ms is not None and not 4 <= ecu_timeout_ms <= 1020:
            raise ConfigError(f"Elm327Client ecu_timeout_ms={ecu_timeout_ms}: expected 4-1020 ms (AT ST, 4 ms steps)")
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.reset_timeout_s = reset_timeout_s
        self.ecu_timeout_ms = ecu_timeout_ms
        self._ser = None
        self._header = 0x7DF
        self.version: str | None = None
        self.noise_bytes = 0
        self.skipped_count = 0
        self.skipped_lines: deque[str] = deque(maxlen=SKIPPED_LINES_KEPT)

    # ------------------------------------------------------------------ serial
    def open(self) -> Elm327Client:
        import serial

        try:
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0.05, write_timeout=self.timeout_s)
        except (serial.SerialException, OSError) as exc:
            raise Elm327Error(f"{self.port}: cannot open serial port: {exc}") from exc
        return self

    def close(self) -> None:
        if self._ser is not None:
            self._ser.close()
            self._ser = None

    def __enter__(self) -> Elm327Client:
        return self.open() if self._ser is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_until_prompt(self, timeout_s: float, what: str) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            chunk = self._ser.read(min(self._ser.in_waiting, MAX_ANSWER_BYTES) or 1)
            if chunk:
                buf += chunk
                if PROMPT in chunk:
                    return bytes(buf[:buf.rindex(PROMPT)])
                if len(buf) > MAX_ANSWER_BYTES:
                    raise Elm327Error(f"{self.port}: answer to {what!r} longer than {MAX_ANSWER_BYTES} bytes "
                                      f"without a '>' prompt (got {bytes(buf)[:60]!r}...)")
        raise Elm327Error(f"{self.port}: no '>' prompt within {timeout_s:.1f} s after {what!r} "
                          f"(got {bytes(buf)[:60]!r})")

    def _clean_lines(self, raw: bytes, cmd: str) -> list[str]:
        text_chars = []
        for b in raw:
            if b in (0x0D, 0x0A) or 0x20 <= b < 0x7F:
                text_chars.append(chr(b))
            else:
                self.noise_bytes += 1
        lines = [ln.strip() for ln in re.split(r"[\r\n]+", "".join(text_chars))]
        out = []
        for ln in lines:
            if not ln or ln.replace(" ", "") == cmd.replace(" ", "") or ln.startswith("SEARCHING"):
                continue
            out.append(ln)
        return out

    def command(self, cmd: str, timeout_s: float | None = None) -> list[str]:
        """Send one command; return the answer lines (echo, prompt and noise removed)."""
        import serial

        if self._ser is None:
            raise Elm327Error(f"{self.port}: not open")
        try:
            self._ser.reset_input_buffer()
            self._ser.write(cmd.encode("ascii") + b"\r")
            self._ser.flush()
            raw = self._read_until_prompt(timeout_s or self.timeout_s, cmd)
        except (serial.SerialException, OSError, *_TERMIOS_ERRORS) as exc:  # unplugged, write timeout, port gone
            raise Elm327Error(f"{self.port}: serial I/O failed on {cmd!r}: {exc}") from exc
        lines = self._clean_lines(raw, cmd)
        if lines and lines[-1] == "?":
            raise DataFormatError(f"ELM327 {self.port}", f"adapter did not understand {cmd!r} (answered '?')")
        for ln in lines:
            if any(ln.startswith(e) for e in _ERRORS) or re.fullmatch(r"ERR\d\d", ln):
                raise Elm327Error(f"{self.port}: {cmd!r} -> {ln}")
        return lines

    def initialize(self, protocol: str = "6") -> str:
        """Reset and configure: echo/linefeeds/spaces off, headers on, protocol (6 = CAN 11-bit 500 k)."""
        lines = self.command("ATZ", timeout_s=self.reset_timeout_s)
        self.version = next((ln for ln in lines if ln.upper().startswith("ELM")), None)
        if self.version is None:
            raise Elm327Error(f"{self.port}: ATZ answered {lines!r}, no ELM327 identification")
        st = () if self.ecu_timeout_ms is None else (f"ATST{round(self.ecu_timeout_ms / 4):02X}",)
        for c in (*INIT_COMMANDS, *st, f"ATSP{protocol}"):
            ans = self.command(c)
            if "OK" not in ans:
                raise Elm327Error(f"{self.port}: {c} answered {ans!r}, expected OK")
        self._header = 0x7DF
        return self.version

    def _set_header(self, can_id: int) -> None:
        if can_id != self._header:
            if "OK" not in self.command(f"ATSH{can_id:03X}"):
                raise Elm327Error(f"{self.port}: ATSH{can_id:03X} refused")
            self._header = can_id

    # ------------------------------------------------------------------ OBD hook
    def request(self, payload: bytes, ecu: int | None = None) -> dict[int, bytes]:
        self._set_header(0x7DF if ecu is None else ecu - 8)
        cmd = payload.hex().upper()
        lines = self.command(cmd)
        if any(ln.startswith("NO DATA") for ln in lines):
            raise DiagnosticTimeout(f"{self.port}: NO DATA for {cmd} ({'functional' if ecu is None else f'ECU 0x{ecu:03X}'})")
        return self._parse_frames(lines, cmd)

    def _skip(self, line: str) -> None:
        self.skipped_count += 1
        self.skipped_lines.append(line)

    def _parse_frames(self, lines: list[str], cmd: str) -> dict[int, bytes]:
        reasm = IsoTpReassembler()
        out: dict[int, bytes] = {}
        t = time.monotonic()
        for ln in lines:
            compact = ln.replace(" ", "").upper()
            # 3 hex digits of 11-bit id (at most 7FF), then whole data bytes
            if not _HEX.match(compact) or len(compact) < 5 or (len(compact) - 3) % 2 or compact[0] > "7":
                self._skip(ln)
                log.warning("%s: skipped line %r in the answer to %s (not a headered CAN frame)", self.port, ln, cmd)
                continue
            can_id, data = int(compact[:3], 16), bytes.fromhex(compact[3:])
            try:
                pdu = reasm.feed(can_id, data, t)
            except DataFormatError as exc:
                log.warning("%s: %s", self.port, exc)
                self._skip(ln)
                continue
            if pdu is not None:
                out[can_id] = pdu.data
        if not out:
            raise DataFormatError(f"ELM327 {self.port}", f"no complete answer to {cmd} in {lines!r}")
        return out


class Elm327Emulator:
    """Answers like an ELM327 v1.5 on the master side of a pty, forwarding OBD requests to ``tester``
    (any :class:`ObdServices` with ``request``, e.g. :class:`~edge_assistant.diagnostics.clients.ObdClient`
    on a virtual bus with the virtual ECU). ``noise`` sprinkles garbage bytes into the serial stream.
    """

    def __init__(self, tester: ObdServices, noise: bool = False, seed: int = 7, padding: int = 0xAA) -> None:
        self.tester = tester
        self.noise = noise
        self._rng = random.Random(seed)
        self.padding = padding
        self._master, self._slave = os.openpty()
        import tty

        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped_bytes = 0  # bytes of command lines longer than MAX_COMMAND_BYTES (only the tail is kept)
        self._tester_config = getattr(tester, "config", None)  # AT ST changes its first-answer wait (p2)
        self._reset_settings()

    def _reset_settings(self) -> None:
        self.echo, self.linefeeds, self.spaces, self.headers = True, False, True, False
        self._set_ecu_timeout(None)
        self.protocol = "0"
        self.header_id = 0x7DF
        self._searched = False

    def start(self) -> Elm327Emulator:
        self._thread = threading.Thread(target=self._loop, name="elm327-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Elm327Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _write(self, text: str) -> None:
        data = bytearray(text.encode("ascii"))
        if self.noise and self._rng.random() < 0.5:
            pos = self._rng.randrange(0, len(data) + 1)
            data[pos:pos] = bytes(self._rng.choice([0x00, 0xFF, 0x8C, 0xFE, 0x11]) for _ in range(self._rng.randint(1, 3)))
        os.write(self._master, bytes(data))

    def _loop(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self._master, 256)
            except OSError:
                return
            buf += chunk
            if len(buf) > MAX_COMMAND_BYTES and b"\r" not in buf:  # garbage without a CR: bounded memory
                self.dropped_bytes += len(buf) - MAX_COMMAND_BYTES
                del buf[:-MAX_COMMAND_BYTES]
            while b"\r" in buf:
                line, _, rest = bytes(buf).partition(b"\r")
                buf = bytearray(rest)
                cmd = line.decode("ascii", errors="replace").strip()
                try:
                    reply = self.handle(cmd)
                except Exception:  # keep the adapter alive whatever the tester did
                    log.exception("ELM327 emulator: failed on %r", cmd)
                    reply = "?"
                eol = "\r\n" if self.linefeeds else "\r"
                out = (cmd + eol if self.echo and cmd else "") + (eol.join(reply.split("\r")) + eol if reply else "")
                self._write(out + eol + ">")

    def handle(self, cmd: str) -> str:
        """One command line -> reply text (lines joined by CR, no prompt)."""
        c = cmd.replace(" ", "").upper()
        if not c:
            return ""
        if c.startswith("AT"):
            return self._at(c[2:])
        if not _HEX.match(c) or len(c) % 2:
            return "?"
        return self._obd(bytes.fromhex(c))

    def _at(self, a: str) -> str:
        flags = {"E0": ("echo", False), "E1": ("echo", True), "L0": ("linefeeds", False), "L1": ("linefeeds", True),
                 "S0": ("spaces", False), "S1": ("spaces", True), "H0": ("headers", False), "H1": ("headers", True)}
        if a in ("Z", "WS"):
            self._reset_settings()
            return "\rELM327 v1.5"
        if a == "I":
            return "ELM327 v1.5"
        if a == "@1":
            return "edge-assistant ELM327 emulator"
        if a in flags:
            setattr(self, *flags[a])
            return "OK"
        if a.startswith("SP") and len(a) == 3 and a[2] in "0123456789ABC":
            self.protocol, self._searched = a[2], a[2] != "0"
            return "OK"
        if a == "DP":
            return "AUTO, ISO 15765-4 (CAN 11/500)" if self.protocol == "0" else "ISO 15765-4 (CAN 11/500)"
        if a.startswith("SH") and len(a) == 5 and _HEX.match(a[2:]):
            self.header_id = int(a[2:], 16)
            return "OK"
        if a.startswith("ST") and len(a) == 4 and _HEX.match(a[2:]):
            self._set_ecu_timeout(int(a[2:], 16) * 4 or None)  # ST00: the default again
            return "OK"
        if a in ("D", "AT0", "AT1", "AT2", "CAF1", "CAF0", "D0", "D1"):
            return "OK"
        if a == "RV":
            return "12.4V"
        return "?"

    def _set_ecu_timeout(self, ms: int | None) -> None:
        """AT ST on the emulated adapter: the tester waits ``ms`` for a first answer (None: its own default)."""
        if self._tester_config is not None:
            self.tester.config = (self._tester_config if ms is None
                                  else dataclasses.replace(self._tester_config, p2_s=ms / 1000.0))

    def _obd(self, payload: bytes) -> str:
        prefix = ""
        if not self._searched:
            prefix, self._searched = "SEARCHING...\r", True
        ecu = None if self.header_id == 0x7DF else self.header_id + 8
        try:
            answers = self.tester.request(payload, ecu)
        except DiagnosticTimeout:
            return prefix + "NO DATA"
        except ConfigError:
            return prefix + "NO DATA"
        lines = []
        sep = " " if self.spaces else ""
        for rid in sorted(answers):
            frames = segment(answers[rid], self.padding)
            if self.headers:
                for f in frames:
                    lines.append(sep.join([f"{rid:03X}", *(f"{b:02X}" for b in f)]))
            elif len(frames) == 1:
                data = frames[0][1:1 + frames[0][0]]
                lines.append(sep.join(f"{b:02X}" for b in data))
            else:
                n = len(answers[rid])
                lines.append(f"{n:03X}")
                rest = answers[rid]
                chunks = [rest[:6]] + [rest[i:i + 7] for i in range(6, n, 7)]
                lines += [f"{k & 0xF:X}:" + sep + sep.join(f"{b:02X}" for b in ch) for k, ch in enumerate(chunks)]
        return prefix + "\r".join(lines)
