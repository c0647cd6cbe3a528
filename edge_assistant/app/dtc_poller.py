"""Trouble codes polled from the configured ECUs in the background, and on demand when the driver asks.

One thread. Every ``interval_s`` (and at once after :meth:`DtcPoller.request`) it opens the diagnostic bus,
asks each ECU for its codes (UDS ReadDTCInformation 19 02 through udsoncan/can-isotp, or OBD-II service 03
with a functional request), closes the bus, and publishes a :class:`~edge_assistant.agents.car_genius.DtcReadout`
stamped with the wall-clock time of the read, so every answer says how old the codes are. An ECU that does
not answer keeps its previous codes in the read-out (they are as old as their read) and is counted; a read
never blocks an answer longer than the caller's wait. Changes (a code appeared, its status changed, it was
cleared) go to ``on_change`` for the fleet uplink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_assistant.agents.car_genius import DtcEntry, DtcReadout
from edge_assistant.core.config import DeviceConfig
from edge_assistant.core.errors import EdgeAssistantError

log = logging.getLogger(__name__)
#: udsoncan logs every request at INFO and an ECU that does not answer at ERROR, under these logger names. The
#: poller reports each ECU's result itself (counted in the health report, the reason logged once per read), so
#: on a device an absent ECU does not put an ERROR into the journal every poll.
UDSONCAN_LOGGERS = ("UdsClient", "Connection")


@dataclass(frozen=True)
class DtcChange:
    """One code's change between two reads of its ECU."""

    ecu: str
    code: str
    change: str  # "appeared", "changed", "cleared"
    status: int | None


@dataclass
class PollerStats:
    polls: int = 0
    ecu_reads: int = 0
    ecu_failures: int = 0
    last_poll_s: float | None = None  # wall-clock time of the last completed round
    last_error: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _EcuCodes:
    entries: tuple[DtcEntry, ...] = ()
    read_at_s: float | None = None
    source: str = ""
    seen: dict[str, int | None] = field(default_factory=dict)


class DtcPoller:
    """Poll ``config.diagnostics`` ECUs on ``config.diagnostics.bus``; :meth:`readout` is the latest result."""

    def __init__(self, config: DeviceConfig, *, on_change: Callable[[DtcChange], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.settings = config.diagnostics
        self.on_change = on_change
        self.clock = clock
        self.stats = PollerStats()
        self._codes = {ecu.name: _EcuCodes() for ecu in self.settings.ecus}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._round_done = threading.Condition()
        self._rounds = 0
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> DtcPoller:
        if self._thread is None and self.settings.enabled and self.settings.ecus:
            for name in UDSONCAN_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
            self._thread = threading.Thread(target=self._run, name="dtc-poller", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Signal and join; True once the thread ended (a request in flight ends within its time-out)."""
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ---- results -------------------------------------------------------------------------------------
    def readout(self) -> DtcReadout | None:
        """Every ECU's latest codes; the time is the oldest successful read (None before any read)."""
        with self._lock:
            read = [c for c in self._codes.values() if c.read_at_s is not None]
            if not read:
                return None
            entries = tuple(e for c in read for e in c.entries)
            sources = "; ".join(dict.fromkeys(c.source for c in read))
            return DtcReadout(entries, min(c.read_at_s for c in read), sources)

    def request(self, wait_s: float = 0.0) -> bool:
        """Poll now; wait up to ``wait_s`` for that round to finish (True when it did)."""
        return self.wait_round(self.start_round(), wait_s)

    def start_round(self) -> int:
        """Start a poll now without waiting; returns the round to pass to :meth:`wait_round`."""
        with self._round_done:
            target = self._rounds + (2 if self._busy else 1)  # a round already running began before the request
        self._wake.set()
        return target

    def wait_round(self, target: int, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for round ``target`` (from :meth:`start_round`) to finish (True when it did)."""
        if wait_s <= 0:
            return False
        with self._round_done:
            return self._round_done.wait_for(lambda: self._rounds >= target or self._stop.is_set(), wait_s)

    # ---- the thread ----------------------------------------------------------------------------------
    _busy = False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._busy = True
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the poller never dies; the fault is counted and shown
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("trouble-code poll failed: %s", self.stats.last_error)
            finally:
                self._busy = False
                with self._round_done:
                    self._rounds += 1
                    self._round_done.notify_all()
            self._wake.wait(self.settings.interval_s)
            self._wake.clear()

    def poll_once(self) -> None:
        """One round over every ECU (on the calling thread)."""
        from edge_assistant.app.stage_configs import bus_config
        from edge_assistant.vehicle.bus import open_bus

        bus = open_bus(bus_config(self.settings.bus or self.config.vehicle.bus))
        try:
            if self.settings.protocol == "obd":
                self._poll_obd(bus)
            else:
                for ecu in self.settings.ecus:
                    if self._stop.is_set():
                        break
                    self._poll_uds(bus, ecu)
        finally:
            bus.shutdown()
        self.stats.polls += 1
        self.stats.last_poll_s = self.clock()

    def _poll_uds(self, bus, ecu) -> None:
        from edge_assistant.app.stage_configs import uds_client_config
        from edge_assistant.diagnostics.clients import read_uds_dtcs, uds_client
        from edge_assistant.diagnostics.dtc import module_name

        cfg = uds_client_config(self.config, ecu)
        try:
            with uds_client(bus, cfg) as client:
                dtcs = read_uds_dtcs(client)
        except (EdgeAssistantError, OSError, TimeoutError, ValueError) as exc:
            self._failed(ecu.name, exc)
            return
        except Exception as exc:  # noqa: BLE001 - udsoncan raises its own exception tree (timeouts, NRCs)
            self._failed(ecu.name, exc)
            return
        module = module_name(self.config.vehicle.dtc_table, ecu.response_id) or ecu.name
        entries = tuple(DtcEntry(d.full_code if d.failure_type else d.code, d.status.byte, module, ecu.response_id)
                        for d in dtcs)
        self._store(ecu.name, entries, f"UDS 19 02 via udsoncan from {ecu.name} (0x{ecu.response_id:03X})")

    def _poll_obd(self, bus) -> None:
        from edge_assistant.app.stage_configs import obd_client_config
        from edge_assistant.diagnostics.clients import ObdClient
        from edge_assistant.diagnostics.dtc import module_name

        by_response = {e.response_id: e for e in self.settings.ecus}
        try:
            with ObdClient(bus, obd_client_config(self.config)) as client:
                reports = client.read_dtcs()
        except Exception as exc:  # noqa: BLE001 - a failed functional request fails every ECU of the round
            for ecu in self.settings.ecus:
                self._failed(ecu.name, exc)
            return
        for response_id, ecu in by_response.items():
            report = reports.get(response_id)
            if report is None:
                self._failed(ecu.name, TimeoutError("no answer to service 03"))
                continue
            module = module_name(self.config.vehicle.dtc_table, response_id) or ecu.name
            entries = tuple(DtcEntry(code, None, module, response_id) for code in report.codes)
            self._store(ecu.name, entries, f"OBD-II service 03 from {ecu.name} (0x{response_id:03X})")

    def _failed(self, name: str, exc: BaseException) -> None:
        self.stats.ecu_failures += 1
        self.stats.last_error = f"{name}: {type(exc).__name__}: {exc}"
        log.info("trouble codes of %s not read: %s", name, self.stats.last_error)

    def _store(self, name: str, entries: tuple[DtcEntry, ...], source: str) -> None:
        now = self.clock()
        changes: list[DtcChange] = []
        with self._lock:
            codes = self._codes[name]
            seen = {e.code: e.status for e in entries}
            first_read = codes.read_at_s is None
            for code, status in seen.items():
                if code not in codes.seen:
                    changes.append(DtcChange(name, code, "appeared", status))
                elif codes.seen[code] != status:
                    changes.append(DtcChange(name, code, "changed", status))
            if not first_read:
                changes += [DtcChange(name, code, "cleared", None) for code in codes.seen if code not in seen]
            codes.entries, codes.read_at_s, codes.source, codes.seen = entries, now, source, seen
        self.stats.ecu_reads += 1
        for change in changes:
            log.info("trouble code %s %s on %s (status %s)", change.code, change.change, name, change.status)
            if self.on_change is not None:
                try:
                    self.on_change(change)
                except Exception:  # noqa: BLE001 - a consumer's fault must not stop the polling
                    log.exception("trouble-code change handler failed")
