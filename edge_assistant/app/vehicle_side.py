"""The vehicle side of the device: one live :class:`VehicleState` fed by its producers, read by the agents.

Producers, each on its own thread, none of them touched by the audio path:

* the CAN reader (:class:`~edge_assistant.vehicle.bus.BusReader`) decoding ``vehicle.bus`` through the DBC(s)
  and the VSS mapping, supervised with back-off reconnect;
* the GNSS receiver (:class:`~edge_assistant.gnss.source.SerialGnssSource`) when ``[gnss]`` is enabled;
* the trouble-code poller (:class:`~edge_assistant.app.dtc_poller.DtcPoller`);
* with ``[demo_car]`` enabled, the simulated demo EV itself: its drive replayed onto the (virtual) bus in
  real time and its virtual VCU and BMS answering diagnostic requests, so the demo takes the same path
  as a real car.

The state runs on the wall clock: frames carry POSIX times, so when the bus goes silent values age and the
agents say so. Tyre and trip history are fed by listeners on the state as frames arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_assistant.core.config import DeviceConfig
from edge_assistant.core.state import VehicleState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VehicleHealth:
    """What health reports of the vehicle side."""

    bus: str
    connected: bool
    frames: int
    last_frame_age_s: float | None
    error_frames: int
    bus_off: int
    reconnects: int
    last_error: str
    rejected_readings: int
    gnss_enabled: bool
    gnss_connected: bool
    gnss_fix_age_s: float | None
    dtc_polls: int
    dtc_age_s: float | None
    dtc_failures: int
    signals: int
    demo_car: bool
    demo_car_position_s: float | None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("last_frame_age_s", "gnss_fix_age_s", "dtc_age_s", "demo_car_position_s"):
            if d[k] is not None:
                d[k] = round(d[k], 3)
        return d


PREROLL_S = 2.0  #: the demo car's last seconds before ``start_s``, sent at once so the state starts complete


class DemoCarOnBus:
    """The demo EV driving on ``vehicle.bus``: its drive log replayed in real time from ``start_s`` (looping
    over the rest of the drive) and its virtual ECUs serving the scenario's trouble codes at the replay time.

    A car that is switched on has been sending for a while: :meth:`start` first sends the frames of the
    :data:`PREROLL_S` seconds before ``start_s`` back to back and returns once they were sent, so every
    periodic signal (tyre pressures come once a second) is in the state before the first question."""

    def __init__(self, config: DeviceConfig, state: VehicleState) -> None:
        self.config = config
        self.state = state
        self.position_s = config.demo_car.start_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ecus = None
        self.comfort = None  # the virtual comfort ECU: answers the assistant's comfort commands
        self._live_ids: frozenset[int] = frozenset()  # frame ids a live virtual ECU sends instead of the log
        self.frames_sent = 0

    def start(self) -> DemoCarOnBus:
        from edge_assistant.agents.demo import demo_log
        from edge_assistant.app.stage_configs import bus_config
        from edge_assistant.diagnostics.demo import demo_ecus
        from edge_assistant.vehicle.bus import discard_received, open_bus

        self.log_path, self.scenario = demo_log(cache=self.config.paths.cache_dir / "demo")
        cfg = bus_config(self.config.vehicle.bus)

        def opener():
            return open_bus(cfg)

        channel = self.config.vehicle.bus.split(":", 1)[1].split(",")[0]
        self._ecus = demo_ecus(self.state, lambda: self.scenario.dtcs_at(self.position_s), channel=channel,
                               open_bus=None if self.config.vehicle.bus.startswith("virtual:") else opener)
        self._ecus.__enter__()
        from edge_assistant.vehicle.comfort_ecu import VirtualComfortEcu

        self.comfort = VirtualComfortEcu(opener).start()
        self._live_ids = self.comfort.status_ids
        self._bus = opener()
        for msg in self._frames(self.config.demo_car.start_s - PREROLL_S, self.config.demo_car.start_s):
            self._bus.send(msg)
            self.frames_sent += 1
        discard_received(self._bus)
        self._thread = threading.Thread(target=self._run, name="demo-car", daemon=True)
        self._thread.start()
        log.info("demo car: replaying %s from %.0f s onto %s", self.log_path.name, self.position_s,
                 self.config.vehicle.bus)
        return self

    def _frames(self, from_s: float | None = None, to_s: float = float("inf")):
        """The drive's frames from ``from_s`` (default ``start_s``) up to ``to_s`` seconds into it."""
        from edge_assistant.vehicle.logs import read_log

        from_s = self.config.demo_car.start_s if from_s is None else from_s
        t0 = None
        for msg in read_log(self.log_path):
            t0 = msg.timestamp if t0 is None else t0
            if msg.timestamp - t0 >= to_s:
                return
            if msg.timestamp - t0 >= from_s and msg.arbitration_id not in self._live_ids:
                yield msg

    def _run(self) -> None:
        from edge_assistant.vehicle.bus import discard_received
        from edge_assistant.vehicle.logs import read_log
        from edge_assistant.vehicle.replay import replay

        first = next(iter(read_log(self.log_path))).timestamp

        def on_frame(msg) -> None:
            self.position_s = msg.timestamp - first
            self.frames_sent += 1
            if self.frames_sent % 256 == 0:  # this bus only sends: what it receives must not pile up
                discard_received(self._bus)

        try:
            replay(self._frames, self._bus, speed=1.0, loop=self.config.demo_car.loop, stop=self._stop,
                   on_frame=on_frame)
        except Exception:  # noqa: BLE001 - the demo car stopping must not take the assistant down
            log.exception("demo car replay stopped")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._ecus is not None:
            self._ecus.__exit__(None, None, None)
            self._ecus = None
        if self.comfort is not None:
            self.comfort.stop()
            self.comfort = None
        bus = getattr(self, "_bus", None)
        if bus is not None:
            bus.shutdown()
            self._bus = None


class VehicleSide:
    """Builds and runs every vehicle-state producer of ``config``; the agents read :attr:`state`."""

    def __init__(self, config: DeviceConfig, *, on_dtc_change: Callable | None = None,
                 clock: Callable[[], float] = VehicleState.wall_clock) -> None:
        from edge_assistant.app.dtc_poller import DtcPoller

        self.config = config
        self.state = VehicleState(clock=clock)
        self.clock = clock
        self.poller = DtcPoller(config, on_change=on_dtc_change, clock=clock)
        self.reader = None
        self.gnss = None
        self.demo_car: DemoCarOnBus | None = None
        self.actuator = None  # comfort actuation (vehicle.actuation.Actuator) when the mapping lists actuators
        self._last_batch_mono: float | None = None

    def start(self) -> VehicleSide:
        from edge_assistant.app.stage_configs import bus_config, gnss_config
        from edge_assistant.vehicle import decoder_for
        from edge_assistant.vehicle.bus import BusReader, open_bus

        v = self.config.vehicle
        decoder = decoder_for(list(v.dbc), v.vss_mapping, self.state)
        cfg = bus_config(v.bus)

        def on_batch(batch) -> None:
            self._last_batch_mono = time.monotonic()
            decoder.feed_messages(batch)

        self.actuator = self._actuator()  # before the reader: a bad actuator section leaves no thread behind
        self.reader = BusReader(lambda: open_bus(cfg), on_batch, name="vehicle").start()
        # A bus that is there opens in milliseconds; one that is not (interface down, adapter unplugged) is
        # retried by the reader with back-off, and the assistant starts anyway. (A virtual bus only delivers
        # frames sent after it opened, so the demo car below must wait for it.)
        self.reader.wait_connected(2.0)
        if self.config.demo_car_enabled:
            self.reader.wait_connected(5.0)
            self.demo_car = DemoCarOnBus(self.config, self.state).start()
            sent = self.demo_car.frames_sent  # the pre-roll: wait until the reader decoded it (or give up)
            deadline = time.monotonic() + 5.0
            while self.reader.stats.frames < sent and time.monotonic() < deadline:
                time.sleep(0.01)
        gcfg = gnss_config(self.config)
        if gcfg is not None:
            from edge_assistant.gnss.source import SerialGnssSource

            self.gnss = SerialGnssSource(gcfg, self.state, clock=self.clock).start()
        self.poller.start()
        return self

    def _actuator(self):
        """The comfort actuator over the reader's bus, or None when the mapping lists no actuators."""
        from edge_assistant.core.errors import BusError
        from edge_assistant.vehicle.actuation import Actuator, load_actuators
        from edge_assistant.vehicle.dbc import load_dbcs

        v = self.config.vehicle
        if v.vss_mapping is None:
            return None
        dbcs = load_dbcs(list(v.dbc))
        specs = load_actuators(v.vss_mapping, dbcs)
        if not specs:
            return None

        def send(msg) -> None:  # the reader's own bus object: one adapter, also for slcan
            bus = self.reader.bus if self.reader is not None else None
            if bus is None:
                raise BusError(v.bus, "not connected")
            bus.send(msg)

        return Actuator(specs, dbcs, send, self.state)

    def stop(self) -> None:
        self.poller.stop()
        if self.gnss is not None:
            self.gnss.stop()
        if self.demo_car is not None:
            self.demo_car.stop()
        if self.reader is not None:
            self.reader.stop()

    def health(self) -> VehicleHealth:
        s = self.reader.stats if self.reader is not None else None
        now_mono = time.monotonic()
        gnss_age = None
        latest = self.gnss.latest if self.gnss is not None else None  # a property: (fix, arrival time)
        if latest is not None:
            gnss_age = max(0.0, self.clock() - latest[1])
        readout = self.poller.readout()
        return VehicleHealth(
            bus=self.config.vehicle.bus, connected=bool(s and s.connected), frames=s.frames if s else 0,
            last_frame_age_s=None if self._last_batch_mono is None else now_mono - self._last_batch_mono,
            error_frames=s.error_frames if s else 0, bus_off=s.bus_off if s else 0,
            reconnects=s.reconnects if s else 0, last_error=s.last_error if s else "",
            rejected_readings=self.state.stats.rejected, gnss_enabled=self.gnss is not None,
            gnss_connected=bool(self.gnss is not None and self.gnss.stats.connected), gnss_fix_age_s=gnss_age,
            dtc_polls=self.poller.stats.polls,
            dtc_age_s=None if readout is None else max(0.0, self.clock() - readout.timestamp_s),
            dtc_failures=self.poller.stats.ecu_failures, signals=len(self.state.snapshot()),
            demo_car=self.demo_car is not None,
            demo_car_position_s=None if self.demo_car is None else self.demo_car.position_s,
        )
