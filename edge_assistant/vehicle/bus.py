"""Opening CAN buses (python-can) and a supervised receive loop that survives bus faults.

Bus specs on the command line (``--bus``)::

    virtual:can0                     python-can's in-process virtual bus, channel "can0" (tests, demos)
    socketcan:can0 / socketcan:vcan0 Linux SocketCAN (bitrate is set by the OS: see firmware/can/)
    slcan:/dev/ttyACM0@500000        SLCAN (Lawicel) adapter on a serial port, CAN bitrate 500 kbit/s
    slcan:/dev/ttyACM0@500000/921600 ... with the serial port at 921600 baud (default 115200)

A spec may end with ``,filter=ID:MASK[:ext]`` (repeatable), e.g. ``socketcan:can0,filter=7E8:7F8``.

:class:`BusReader` runs the receive loop in a thread: error frames and bus-off are counted and logged,
an adapter that fails or disappears is closed and reopened with exponential back-off, garbage from a
serial adapter is counted as noise; the process never dies of a bus fault.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_assistant.core.errors import BusError, ConfigError

log = logging.getLogger(__name__)

INTERFACES = ("socketcan", "virtual", "slcan")

# SocketCAN error-frame classes (linux/can/error.h), in the error frame's CAN id
CAN_ERR_CRTL = 0x004
CAN_ERR_BUSOFF = 0x040
CAN_ERR_RESTARTED = 0x100


@dataclass(frozen=True)
class BusFilter:
    """Accept frames with ``id & mask == can_id & mask`` (python-can ``can_filters`` entry)."""

    can_id: int
    can_mask: int = 0x7FF
    extended: bool = False


@dataclass(frozen=True)
class BusConfig:
    """How to open one CAN bus.

    ``interface``: socketcan | virtual | slcan. ``channel``: interface name (``can0``) or serial port.
    ``bitrate_bps``: CAN bitrate; for socketcan it is set by the OS (ip link / systemd-networkd) and only
    checked in logs. ``serial_baud``: serial line speed of an slcan adapter. ``receive_own_messages``:
    also receive frames this process sends (virtual bus).
    """

    interface: str = "virtual"
    channel: str = "can0"
    bitrate_bps: int | None = 500_000
    filters: tuple[BusFilter, ...] = field(default_factory=tuple)
    serial_baud: int = 115_200
    receive_own_messages: bool = False

    def describe(self) -> str:
        return f"{self.interface}:{self.channel}"


def parse_bus_spec(spec: str, bitrate_bps: int | None = None) -> BusConfig:
    """Parse ``interface:channel[@bitrate[/serial_baud]][,filter=ID:MASK[:ext]]...`` (see module doc)."""
    if ":" not in spec:
        raise ConfigError(f"--bus {spec!r}: expected INTERFACE:CHANNEL, e.g. virtual:can0, socketcan:vcan0, "
                          "slcan:/dev/ttyACM0@500000")
    head, *opts = spec.split(",")
    interface, channel = head.split(":", 1)
    interface = interface.strip().lower()
    if interface not in INTERFACES:
        raise ConfigError(f"--bus {spec!r}: interface {interface!r} is not one of {', '.join(INTERFACES)}")
    serial_baud = 115_200
    if "@" in channel:
        channel, rate = channel.split("@", 1)
        try:
            if "/" in rate:
                rate, baud = rate.split("/", 1)
                serial_baud = int(baud)
            bitrate_bps = int(rate)
        except ValueError as exc:
            raise ConfigError(f"--bus {spec!r}: bitrate after '@' must be an integer (bit/s)") from exc
    if not channel:
        raise ConfigError(f"--bus {spec!r}: empty channel")
    filters = []
    for opt in opts:
        key, _, value = opt.partition("=")
        if key.strip() != "filter":
            raise ConfigError(f"--bus {spec!r}: unknown option {key!r} (only filter=ID:MASK[:ext])")
        parts = value.split(":")
        try:
            can_id = int(parts[0], 16)
            mask = int(parts[1], 16) if len(parts) > 1 else (0x1FFFFFFF if can_id > 0x7FF else 0x7FF)
        except ValueError as exc:
            raise ConfigError(f"--bus {spec!r}: filter {value!r} must be hex ID:MASK") from exc
        filters.append(BusFilter(can_id, mask, len(parts) > 2 and parts[2].lower().startswith("ext")))
    return BusConfig(interface, channel, bitrate_bps if bitrate_bps is not None else 500_000, tuple(filters),
                     serial_baud)


def open_bus(config: BusConfig):
    """Open the bus described by ``config``; raises :class:`BusError` naming it on failure."""
    import can

    where = config.describe()
    kwargs: dict = {"interface": config.interface, "channel": config.channel}
    if config.filters:
        kwargs["can_filters"] = [{"can_id": f.can_id, "can_mask": f.can_mask, "extended": f.extended}
                                 for f in config.filters]
    if config.interface == "virtual":
        kwargs["receive_own_messages"] = config.receive_own_messages
    elif config.interface == "slcan":
        kwargs["bitrate"] = config.bitrate_bps
        kwargs["tty_baudrate"] = config.serial_baud
        kwargs["sleep_after_open"] = 0.05
    elif config.interface == "socketcan":
        kwargs["receive_own_messages"] = config.receive_own_messages
    try:
        return can.Bus(**kwargs)
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT:
            raise BusError(where, "this kernel has no SocketCAN (socket(AF_CAN) failed with errno 97, "
                                  "EAFNOSUPPORT); use --bus virtual:can0 here") from exc
        raise BusError(where, f"cannot open: {exc}") from exc
    except (can.CanError, ValueError, ImportError) as exc:
        raise BusError(where, f"cannot open: {exc}") from exc


def first_then(config: BusConfig) -> Callable[[], object]:
    """Open the bus now (so a wrong spec or missing SocketCAN fails at once, naming the bus) and return an
    opener for :class:`BusReader` that hands out this bus first and opens fresh ones after faults."""
    first = [open_bus(config)]

    def opener():
        return first.pop() if first else open_bus(config)

    return opener


def add_bus_arguments(parser, default: str | None = "virtual:can0") -> None:
    """Add ``--bus SPEC`` and ``--bitrate`` to an argparse parser."""
    parser.add_argument("--bus", default=default, metavar="SPEC",
                        help="bus to use: virtual:can0, socketcan:can0, slcan:/dev/ttyACM0@500000[/BAUD]; "
                             "append ,filter=ID:MASK to filter (default: %(default)s)")
    parser.add_argument("--bitrate", type=int, default=None, metavar="BPS",
                        help="CAN bitrate in bit/s where the interface sets it (slcan); default 500000")


def bus_config_from_args(args) -> BusConfig:
    return parse_bus_spec(args.bus, getattr(args, "bitrate", None))


@dataclass
class BusStats:
    """Counters of a :class:`BusReader` (read them any time; ints are updated atomically under the GIL)."""

    frames: int = 0
    batches: int = 0
    error_frames: int = 0
    bus_off: int = 0
    serial_noise: int = 0
    faults: int = 0
    reconnects: int = 0
    open_failures: int = 0
    backoff_s: float = 0.0  # the wait before the latest reopen attempt (doubles while faults go on)
    last_error: str = ""
    connected: bool = False
    cpu_s: float = 0.0  # CPU time of the reader thread (time.thread_time), updated once per batch

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class BusReader:
    """Receive frames in a thread and hand them, in batches, to ``on_batch(list[can.Message])``.

    ``opener`` returns a fresh bus (e.g. ``lambda: open_bus(cfg)``); it is called again after a fault,
    with back-off from ``backoff_initial_s`` doubling up to ``backoff_max_s``. Error frames are counted
    (``error_frames``; ``bus_off`` when the SocketCAN error class says so) and not passed on.
    A batch is the first frame plus whatever is already queued, up to ``max_batch`` frames (error frames
    included). The thread alone opens and closes its bus; :meth:`stop` signals it and joins.
    """

    def __init__(self, opener: Callable[[], object], on_batch: Callable[[list], None], *, name: str = "can",
                 max_batch: int = 512, poll_s: float = 0.2, backoff_initial_s: float = 0.1,
                 backoff_max_s: float = 5.0) -> None:
        self._opener = opener
        self._on_batch = on_batch
        self.name = name
        self.max_batch = max_batch
        self.poll_s = poll_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = BusStats()
        self.bus = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> BusReader:
        self._thread = threading.Thread(target=self._run, name=f"bus-reader-{self.name}", daemon=True)
        self._thread.start()
        return self

    def wait_connected(self, timeout_s: float = 5.0) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Signal the thread and join it; True once it ended. The thread closes the bus it opened, also
        when it outlives ``timeout_s`` (e.g. an adapter still opening): only the thread touches its bus."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("%s: reader did not stop within %.1f s; it closes its bus when it does", self.name,
                        timeout_s)
            return False
        return True

    def __enter__(self) -> BusReader:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the loop (all on the reader thread, which alone opens and closes self.bus) ------------------
    def _close(self) -> None:
        bus, self.bus = self.bus, None
        self.stats.connected = False
        self._connected.clear()
        if bus is not None:
            try:
                bus.shutdown()
            except Exception as exc:  # a dead adapter may fail to close; nothing more to do
                log.debug("%s: shutdown after fault failed: %s", self.name, exc)

    def _fault(self, what: str, exc: BaseException) -> None:
        self.stats.faults += 1
        self.stats.last_error = f"{what}: {exc}"
        log.warning("%s: %s: %s; reconnecting", self.name, what, exc)
        self._close()

    def _run(self) -> None:
        cpu0 = time.thread_time()
        try:
            self._loop()
        finally:
            self._close()  # whatever the thread opened, also a bus that arrived after stop()
            self.stats.cpu_s = time.thread_time() - cpu0

    def _back_off(self, backoff: float) -> float:
        """Wait ``backoff`` (or until stopped); return the next, doubled wait."""
        self.stats.backoff_s = backoff
        self._stop.wait(backoff)
        return min(self.backoff_max_s, backoff * 2)

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            if self.bus is None:
                try:
                    self.bus = self._opener()
                except Exception as exc:  # opener failures are expected while an adapter is unplugged
                    self.stats.open_failures += 1
                    self.stats.last_error = f"open: {exc}"
                    log.warning("%s: cannot open bus (%s); retry in %.2f s", self.name, exc, backoff)
                    backoff = self._back_off(backoff)
                    continue
                if self._stop.is_set():
                    break  # stopped while opening: _run closes it
                if self.stats.faults:
                    self.stats.reconnects += 1
                    log.info("%s: bus reopened", self.name)
                self.stats.connected = True
                self._connected.set()
            batch: list = []
            try:
                receive_batch(self.bus, self.max_batch, self.poll_s, self._error_frame, batch)
                error = None
            except Exception as exc:
                error = exc
            if batch:  # frames gathered before an error are delivered first
                try:
                    self._on_batch(batch)
                except Exception:  # a consumer bug must not kill the bus thread
                    log.exception("%s: consumer failed on a batch of %d frames", self.name, len(batch))
                self.stats.frames += len(batch)
                self.stats.batches += 1
                self.stats.cpu_s = time.thread_time() - cpu0
            if error is None:
                backoff = self.backoff_initial_s
            elif isinstance(error, (ValueError, IndexError)):  # undecodable or truncated serial bytes
                self.stats.serial_noise += 1
                self.stats.last_error = f"noise: {error}"
                if self.stats.serial_noise <= 10:
                    log.warning("%s: garbage from the adapter skipped: %s", self.name, error)
            else:  # CanError, OSError, SerialException: the adapter failed
                self._fault("receive failed", error)
                backoff = self._back_off(backoff)  # an adapter that opens but fails at once must not spin

    def _error_frame(self, msg) -> None:
        self.stats.error_frames += 1
        busoff = bool(msg.arbitration_id & CAN_ERR_BUSOFF)
        if busoff:
            self.stats.bus_off += 1
        n = self.stats.error_frames
        if busoff or n <= 10 or n % 1000 == 0:
            log.warning("%s: error frame #%d (class 0x%X%s) at %.6f", self.name, n, msg.arbitration_id,
                        ", BUS-OFF" if busoff else "", msg.timestamp)


def receive_batch(bus, max_batch: int, timeout_s: float, on_error_frame: Callable,
                  out: list | None = None) -> list:
    """Block up to ``timeout_s`` for one frame, then take what is already queued: at most ``max_batch``
    frames, error frames included, so an error-frame storm cannot hold the caller.

    Data frames are appended to ``out`` (a new list if None), which is returned; error frames go to
    ``on_error_frame``. If a receive raises mid-batch, the frames gathered so far stay in ``out``. This is
    the receive half of the hot path (used by :class:`BusReader` and measured by ``bench can``).
    """
    batch = [] if out is None else out
    recv = bus.recv
    msg = recv(timeout_s)
    taken = 0
    while msg is not None:
        taken += 1
        if msg.is_error_frame:
            on_error_frame(msg)
        else:
            batch.append(msg)
        if taken >= max_batch:
            break
        msg = recv(0)
    return batch


def discard_received(bus, limit: int = 100_000) -> int:
    """Drop what a send-only ``bus`` has received; returns how many frames.

    Every python-can bus object keeps a copy of each frame others send on its channel. A kernel socket
    (SocketCAN) drops frames once its buffer is full, but python-can's virtual bus queues without bound, so a
    sender that never reads (a replay, a simulator, a load generator) must call this now and then or its
    process grows by the bus's traffic (about 2 MB/s at 8,700 frames/s)."""
    n = 0
    while n < limit and bus.recv(0) is not None:
        n += 1
    return n


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes (for CLIs and tests)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
