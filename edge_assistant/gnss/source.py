"""GNSS sources: a serial receiver (pyserial, reader thread, reconnect with back-off) and recorded NMEA files.

Both turn NMEA into :class:`~edge_assistant.gnss.nmea.Fix` objects and, given a
:class:`~edge_assistant.core.state.VehicleState`, publish every fix under COVESA VSS 4.0 paths:

* ``Vehicle.CurrentLocation.Latitude`` / ``.Longitude`` (degrees, WGS 84) from GGA/RMC;
* ``Vehicle.CurrentLocation.Altitude`` (m above the WGS 84 ellipsoid): GGA altitude + geoid separation;
* ``Vehicle.CurrentLocation.Heading`` (degrees): RMC/VTG course over ground, only while moving;
* ``Vehicle.CurrentLocation.HorizontalAccuracy`` (m): GST 1-sigma errors, else HDOP x UERE;
* ``Vehicle.CurrentLocation.VerticalAccuracy`` (m): VDOP x UERE;
* ``Vehicle.CurrentLocation.Timestamp`` (ISO 8601 UTC): RMC date + time;
* ``Vehicle.CurrentLocation.GNSSReceiver.FixType``: GGA quality + GSA mode (``NONE`` when lost);
* overlay paths VSS 4.0 lacks: ``Vehicle.Private.GNSS.SpeedOverGround`` (m/s), ``...SatellitesUsed``.

While the fix is lost only ``FixType = NONE`` is written: position readings keep their last time, so
an agent sees them age and says they are stale rather than reading an invented position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import ConfigError, DataFormatError, EdgeAssistantError
from edge_assistant.core.state import VehicleState
from edge_assistant.gnss.nmea import Fix, NmeaStats, NmeaStream

log = logging.getLogger(__name__)

VSS_LATITUDE = "Vehicle.CurrentLocation.Latitude"
VSS_LONGITUDE = "Vehicle.CurrentLocation.Longitude"
VSS_ALTITUDE = "Vehicle.CurrentLocation.Altitude"
VSS_HEADING = "Vehicle.CurrentLocation.Heading"
VSS_HORIZONTAL_ACCURACY = "Vehicle.CurrentLocation.HorizontalAccuracy"
VSS_VERTICAL_ACCURACY = "Vehicle.CurrentLocation.VerticalAccuracy"
VSS_TIMESTAMP = "Vehicle.CurrentLocation.Timestamp"
VSS_FIX_TYPE = "Vehicle.CurrentLocation.GNSSReceiver.FixType"
VSS_GROUND_SPEED = "Vehicle.Private.GNSS.SpeedOverGround"
VSS_SATELLITES = "Vehicle.Private.GNSS.SatellitesUsed"

MIN_SPEED_FOR_HEADING_MPS = 0.5  # below this the course over ground is noise


@dataclass(frozen=True)
class GnssConfig:
    """How to talk to a receiver.

    ``port`` is a device (``/dev/ttyACM0``, ``/dev/serial/by-id/...``) or any pyserial URL (``loop://``,
    ``socket://host:port``, ``rfc2217://...``).
    """

    port: str
    baudrate_bps: int = 9600  # the NMEA 0183 default; u-blox USB ignores it
    read_timeout_s: float = 0.2  # blocking read slice; also how fast stop() is noticed
    reconnect_initial_s: float = 0.25  # first wait after the receiver disappears
    reconnect_max_s: float = 8.0  # the back-off doubles up to this
    uere_m: float = 4.0  # user equivalent range error: HDOP x UERE estimates the 1-sigma horizontal error
    require_checksum: bool = True
    max_line_bytes: int = 512  # a longer run without a newline is garbage (wrong baud rate, binary protocol)

    def __post_init__(self) -> None:
        if not self.port:
            raise ConfigError("gnss.port: empty; expected a device path or a pyserial URL")
        if self.baudrate_bps <= 0:
            raise ConfigError(f"gnss.baudrate_bps: {self.baudrate_bps}; expected a positive rate such as 9600")
        if not 0 < self.reconnect_initial_s <= self.reconnect_max_s:
            raise ConfigError("gnss.reconnect_initial_s/reconnect_max_s: expected 0 < initial <= max")


def vss_rows(fix: Fix, timestamp_s: float, source: str, uere_m: float = 4.0) -> list[tuple]:
    """The ``(path, value, unit, timestamp_s, source)`` rows a fix contributes to the vehicle state."""
    rows: list[tuple] = [(VSS_FIX_TYPE, fix.fix_type, None, timestamp_s, source)]
    if not fix.valid or fix.lat_deg is None or fix.lon_deg is None:
        return rows
    rows.append((VSS_LATITUDE, fix.lat_deg, "degrees", timestamp_s, source))
    rows.append((VSS_LONGITUDE, fix.lon_deg, "degrees", timestamp_s, source))
    if fix.altitude_ellipsoid_m is not None:
        rows.append((VSS_ALTITUDE, fix.altitude_ellipsoid_m, "m", timestamp_s, source))
    if fix.course_deg is not None and (fix.speed_mps or 0.0) >= MIN_SPEED_FOR_HEADING_MPS:
        rows.append((VSS_HEADING, fix.course_deg % 360.0, "degrees", timestamp_s, source))
    h_acc = fix.horizontal_accuracy_m(uere_m)
    if h_acc is not None:
        rows.append((VSS_HORIZONTAL_ACCURACY, round(h_acc, 2), "m", timestamp_s, source))
    if fix.vdop is not None:
        rows.append((VSS_VERTICAL_ACCURACY, round(fix.vdop * uere_m, 2), "m", timestamp_s, source))
    if fix.timestamp is not None:
        iso = fix.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows.append((VSS_TIMESTAMP, iso, "iso8601", timestamp_s, source))
    if fix.speed_mps is not None:
        rows.append((VSS_GROUND_SPEED, round(fix.speed_mps, 3), "m/s", timestamp_s, source))
    if fix.satellites_used is not None:
        rows.append((VSS_SATELLITES, fix.satellites_used, None, timestamp_s, source))
    return rows


def publish_fix(state: VehicleState, fix: Fix, timestamp_s: float, source: str, uere_m: float = 4.0) -> None:
    """Write one fix into ``state`` under one lock."""
    state.update_many(vss_rows(fix, timestamp_s, source, uere_m))


# ----------------------------------------------------------------------------------------- the serial port
@dataclass
class GnssSourceStats:
    """Counters of a serial source (``nmea`` holds the parser's)."""

    nmea: NmeaStats = field(default_factory=NmeaStats)
    bytes_read: int = 0
    connects: int = 0
    disconnects: int = 0
    open_failures: int = 0
    overlong_lines: int = 0
    unexpected_errors: int = 0  # anything but serial/OS errors (a driver or parser bug): logged, retried
    last_error: str | None = None
    connected: bool = False


class SerialGnssSource:
    """Reads a receiver on a reader thread and keeps the latest fix (and the state, if given) current.

    The thread never dies: a port that cannot be opened or that disappears (USB unplug, the pty peer
    closing), or any other exception, is logged, counted and the port reopened after a back-off that
    doubles from ``reconnect_initial_s`` to ``reconnect_max_s`` and resets once NMEA flows again; only
    :meth:`stop` ends it. There is never more than one reader thread. Fixes are stamped with ``clock()``
    (host time) on arrival; ``on_fix(fix, timestamp_s)`` runs on the reader thread.
    """

    def __init__(self, config: GnssConfig, state: VehicleState | None = None,
                 on_fix: Callable[[Fix, float], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.state = state
        self.on_fix = on_fix
        self.clock = clock
        self.stats = GnssSourceStats()
        self._stream = NmeaStream(config.port, config.require_checksum)
        self.stats.nmea = self._stream.stats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._latest: tuple[Fix, float] | None = None
        self._fix_count = 0
        self._serial = None
        self._session_lines = False

    # -- lifecycle
    def start(self) -> SerialGnssSource:
        """Check the port URL and start the reader thread (a no-op while it runs).

        Raises :class:`EdgeAssistantError` if a reader that :meth:`stop` could not join is still alive:
        two readers must never share a port.
        """
        import serial

        if self._thread is not None:
            if self._thread.is_alive() and not self._stop.is_set():
                return self
            if self._thread.is_alive():
                raise EdgeAssistantError(f"GNSS reader on {self.config.port} is still stopping; "
                                         "not starting a second one (call stop() again)")
            self._thread = None
        try:  # a malformed URL is a configuration error, not something to retry
            serial.serial_for_url(self.config.port, do_not_open=True)
        except ValueError as exc:
            raise ConfigError(f"gnss.port {self.config.port!r}: {exc}") from None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"gnss-{self.config.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop the reader thread (it closes the port); True once it ended. A thread still alive after
        ``timeout_s`` is kept, so :meth:`start` cannot run a second reader beside it."""
        self._stop.set()
        ser = self._serial
        if ser is not None:
            with contextlib.suppress(Exception):  # best effort; not every backend can cancel a read
                ser.cancel_read()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("GNSS reader on %s did not stop within %.1f s", self.config.port, timeout_s)
            return False
        self._thread = None
        return True

    def __enter__(self) -> SerialGnssSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- results
    @property
    def latest(self) -> tuple[Fix, float] | None:
        """The last fix and its arrival time, or None before the first one."""
        with self._cond:
            return self._latest

    def wait_for_fix(self, timeout_s: float, after: int = 0) -> Fix | None:
        """Block until more than ``after`` fixes have arrived (or ``timeout_s``); the latest fix or None."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._fix_count <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._latest[0] if self._latest else None

    @property
    def fix_count(self) -> int:
        with self._cond:
            return self._fix_count

    # -- the thread
    def _run(self) -> None:
        backoff = self.config.reconnect_initial_s
        while not self._stop.is_set():
            try:
                if self._session(backoff):
                    backoff = self.config.reconnect_initial_s  # data flowed: the next outage starts afresh
            except Exception as exc:  # a driver or parser bug must not end the reader; stop() does
                self.stats.unexpected_errors += 1
                self.stats.last_error = f"{self.config.port}: {type(exc).__name__}: {exc}"
                if self.stats.unexpected_errors <= 3 or self.stats.unexpected_errors % 20 == 0:
                    log.exception("GNSS reader on %s failed unexpectedly (#%d); reopening in %.2f s",
                                  self.config.port, self.stats.unexpected_errors, backoff)
            if self._stop.wait(backoff):
                break
            backoff = min(self.config.reconnect_max_s, backoff * 2.0)

    def _session(self, backoff: float) -> bool:
        """Open the port and read until stopped or it fails; returns whether NMEA lines arrived."""
        import serial

        try:
            ser = serial.serial_for_url(self.config.port, baudrate=self.config.baudrate_bps,
                                        timeout=self.config.read_timeout_s)
        except (serial.SerialException, OSError) as exc:
            self.stats.open_failures += 1
            self.stats.last_error = f"open {self.config.port}: {exc}"
            if self.stats.open_failures <= 3 or self.stats.open_failures % 20 == 0:
                log.warning("GNSS receiver %s cannot be opened (%s); retrying in %.2f s",
                            self.config.port, exc, backoff)
            return False
        self._serial = ser
        self.stats.connects += 1
        self.stats.connected = True
        log.info("GNSS receiver %s open (%d baud)", self.config.port, self.config.baudrate_bps)
        self._session_lines = False  # set by _pump: a receiver unplugged after sending counts as one that sent
        try:
            self._pump(ser)
        except (serial.SerialException, OSError) as exc:
            self.stats.disconnects += 1
            self.stats.last_error = f"read {self.config.port}: {exc}"
            log.warning("GNSS receiver %s disappeared (%s); reconnecting in %.2f s", self.config.port, exc,
                        self.config.reconnect_initial_s if self._session_lines else backoff)
        finally:
            self._serial = None
            self.stats.connected = False
            with contextlib.suppress(Exception):  # the device may already be gone
                ser.close()
        fix = self._stream.flush()
        if fix is not None:
            self._deliver(fix)
        return self._session_lines

    def _pump(self, ser) -> bool:
        """Read until stopped or the port fails; returns whether any complete line arrived."""
        buf = bytearray()
        got_line = False
        limit = self.config.max_line_bytes
        while not self._stop.is_set():
            chunk = ser.read(max(1, ser.in_waiting))
            if not chunk:
                continue
            self.stats.bytes_read += len(chunk)
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = bytes(buf[:nl]).rstrip(b"\r")
                del buf[: nl + 1]
                got_line = self._session_lines = True
                fix = self._stream.feed_line(line)
                if fix is not None:
                    self._deliver(fix)
            if len(buf) > limit:
                self.stats.overlong_lines += 1
                self._stream.stats.count_error(DataFormatError(
                    self.config.port, f"{len(buf)} bytes without a line end (wrong baud rate or a binary protocol?)"))
                log.warning("%s: %d bytes without a line end; dropped (wrong baud rate?)", self.config.port, len(buf))
                start = buf.rfind(b"$")
                buf = buf[start:] if start > 0 else bytearray()
        return got_line

    def _deliver(self, fix: Fix) -> None:
        ts = self.clock()
        if self.state is not None:
            publish_fix(self.state, fix, ts, f"gnss:{self.config.port}", self.config.uere_m)
        with self._cond:
            self._latest = (fix, ts)
            self._fix_count += 1
            self._cond.notify_all()
        if self.on_fix is not None:
            try:
                self.on_fix(fix, ts)
            except Exception:  # a consumer bug must not kill the receiver thread
                log.exception("on_fix callback failed")


# ------------------------------------------------------------------------------------------ recorded files
class NmeaFileSource:
    """A recorded NMEA log (one sentence per line; CR LF or LF). Bad lines are logged with ``file:line``.

    Fix times come from the NMEA itself (RMC date + UTC time, as POSIX seconds) so a log replays on the
    same clock as a CAN log of the same drive.
    """

    def __init__(self, path: str | Path, require_checksum: bool = True, uere_m: float = 4.0) -> None:
        self.path = Path(path)
        self.uere_m = uere_m
        self._stream = NmeaStream(self.path.name, require_checksum)

    @property
    def stats(self) -> NmeaStats:
        return self._stream.stats

    def fixes(self) -> Iterator[tuple[Fix, float]]:
        """``(fix, timestamp_s)`` for every epoch of the file, in order."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed in finally; a generator holds it
        except OSError as exc:
            raise DataFormatError(str(self.path), f"cannot read NMEA log: {exc.strerror or exc}") from None
        try:
            day_s: float | None = None
            for fix in self._stream.iter_fixes(fh):
                ts = _fix_time_s(fix)
                if ts is None:
                    if fix.time_utc is None:
                        continue  # no clock at all: nothing to place it on
                    if day_s is None:
                        log.debug("%s: no RMC date before %s; timing by time of day", self.path, fix.time_utc)
                    ts = (day_s or 0.0) + _seconds_of_day(fix)
                else:
                    day_s = ts - _seconds_of_day(fix)
                yield fix, ts
        finally:
            fh.close()

    def replay(self, state: VehicleState, until_s: float | None = None) -> Fix | None:
        """Publish every fix into ``state`` (up to ``until_s`` after the first); returns the last fix."""
        last = None
        t_first = None
        for fix, ts in self.fixes():
            if t_first is None:
                t_first = ts
            if until_s is not None and ts - t_first > until_s:
                break
            publish_fix(state, fix, ts, f"nmea:{self.path.name}", self.uere_m)
            last = fix
        return last


def _seconds_of_day(fix: Fix) -> float:
    t = fix.time_utc
    return 0.0 if t is None else t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _fix_time_s(fix: Fix) -> float | None:
    stamp = fix.timestamp
    return None if stamp is None else stamp.timestamp()
