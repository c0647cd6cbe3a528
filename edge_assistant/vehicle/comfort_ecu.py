"""The demo EV's comfort side as one virtual ECU on a CAN bus: it takes the head unit's command frames
(``HU_ComfortCmd``, ``HU_ChargeCmd``), applies each request that lies in the range of the status signal it
sets, and sends its status frames (``HVAC_Comfort``, ``OBC_ChargeSettings``) every ``period_s`` and at once
after a change, so a request is confirmed the way a real car confirms it: by its status frames on the bus.

Requests outside the status signal's DBC range are ignored (and logged), as an ECU ignores an implausible
request: the head unit then sees no confirmation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from edge_assistant.vehicle.dbc import load_dbc
from edge_assistant.vehicle.simulate import COMFORT_STATUS, DEMO_DBC

log = logging.getLogger(__name__)

#: command signal -> (status message, status signal) it sets
APPLIES: dict[str, tuple[str, str]] = {
    "DriverTempRequest": ("HVAC_Comfort", "DriverTempSetpoint"),
    "FanSpeedRequest": ("HVAC_Comfort", "FanSpeed"),
    "SeatHeatDriverRequest": ("HVAC_Comfort", "SeatHeatDriver"),
    "SeatHeatPassengerRequest": ("HVAC_Comfort", "SeatHeatPassenger"),
    "ACRequest": ("HVAC_Comfort", "ACActive"),
    "DefrostFrontRequest": ("HVAC_Comfort", "DefrostFront"),
    "DefrostRearRequest": ("HVAC_Comfort", "DefrostRear"),
    "ChargeLimitRequest": ("OBC_ChargeSettings", "ChargeLimit"),
}
#: the command messages it listens to
COMMAND_MESSAGES = ("HU_ComfortCmd", "HU_ChargeCmd")


class VirtualComfortEcu:
    """HVAC and charger settings of the demo car on ``open_bus()`` (its own bus object, opened on :meth:`start`).

    ``settings`` (status message -> signal -> value) starts from the demo drive's :data:`COMFORT_STATUS`.
    """

    def __init__(self, open_bus: Callable[[], object], *, dbc_path: str | Path = DEMO_DBC, period_s: float = 0.2,
                 settings: dict[str, dict[str, float]] | None = None) -> None:
        self._open_bus = open_bus
        self.period_s = period_s
        self._db = load_dbc(dbc_path).database
        src = settings if settings is not None else COMFORT_STATUS
        self.settings = {m: dict(sigs) for m, sigs in src.items()}
        self._commands = {self._db.get_message_by_name(n).frame_id: self._db.get_message_by_name(n)
                          for n in COMMAND_MESSAGES}
        self._status = {name: self._db.get_message_by_name(name) for name in self.settings}
        self.status_ids = frozenset(m.frame_id for m in self._status.values())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bus = None
        self.applied = 0
        self.ignored = 0
        self.status_sent = 0

    def start(self) -> VirtualComfortEcu:
        self._bus = self._open_bus()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="comfort-ecu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> VirtualComfortEcu:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def value(self, signal: str) -> float | None:
        with self._lock:
            return next((sigs[signal] for sigs in self.settings.values() if signal in sigs), None)

    def apply(self, frame_id: int, data: bytes) -> str | None:
        """Apply one command frame (pure of the bus); returns the status message it changed, or None."""
        msg = self._commands.get(frame_id)
        if msg is None:
            return None
        try:
            values = msg.decode(bytes(data), decode_choices=False, scaling=True)
        except Exception as exc:  # noqa: BLE001 - a malformed command is ignored, as an ECU would
            self.ignored += 1
            log.warning("comfort ECU: undecodable %s %s: %s", msg.name, bytes(data).hex(), exc)
            return None
        changed = None
        for name, value in values.items():
            target = APPLIES.get(name)
            if target is None:
                continue
            status_msg, status_sig = target
            sig = self._status[status_msg].get_signal_by_name(status_sig)
            if not (sig.minimum is None or sig.minimum <= value) or not (sig.maximum is None or value <= sig.maximum):
                self.ignored += 1
                log.warning("comfort ECU: %s=%s outside %s's range [%s, %s]; ignored", name, value, status_sig,
                            sig.minimum, sig.maximum)
                continue
            with self._lock:
                self.settings[status_msg][status_sig] = value
            self.applied += 1
            changed = status_msg
            log.info("comfort ECU: %s set to %s", status_sig, value)
        return changed

    def _send_status(self, names) -> None:
        import can

        for name in names:
            m = self._status[name]
            with self._lock:
                values = dict(self.settings[name])
            data = m.encode(values, scaling=True, padding=False, strict=True)
            self._bus.send(can.Message(arbitration_id=m.frame_id, data=data, is_extended_id=m.is_extended_frame))
            self.status_sent += 1

    def _run(self) -> None:
        import time

        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_at:
                    self._send_status(self._status)
                    next_at = max(next_at + self.period_s, now)
                msg = self._bus.recv(max(0.0, next_at - time.monotonic()))
                while msg is not None and not self._stop.is_set():
                    if not (msg.is_error_frame or msg.is_remote_frame) and not msg.is_extended_id:
                        changed = self.apply(msg.arbitration_id, msg.data)
                        if changed is not None:
                            self._send_status([changed])
                    msg = self._bus.recv(0)
        except Exception:  # noqa: BLE001 - the demo ECU stopping must not take the assistant down
            log.exception("comfort ECU stopped")
