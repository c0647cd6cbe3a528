"""The demo car for the agents: its simulated drive log and GNSS log (cached), replayed once into one
VehicleState that Car Genius and the Travel Companion both read, with trouble codes read over UDS from
the demo virtual ECUs on a virtual CAN bus."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge_assistant.agents.car_genius import CarGenius, DtcEntry, DtcReadout
from edge_assistant.agents.travel_companion import TravelCompanion
from edge_assistant.core.state import VehicleState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoCar:
    """Both agents on the car's one ``state``, answering as of ``at_s`` seconds into the demo drive."""

    genius: CarGenius
    travel: TravelCompanion
    log_path: Path
    at_s: float
    state: VehicleState


def demo_log(seed: int = 1, cache: Path | None = None) -> tuple[Path, object]:
    """The demo drive as a candump log in ``cache`` (default: the user's cache; simulated once, then reused)."""
    import os

    from edge_assistant.core.paths import model_cache_dir
    from edge_assistant.vehicle import DemoScenario, write_demo_log
    from edge_assistant.vehicle.simulate import SIMULATOR_VERSION

    sc = DemoScenario(seed=seed)
    name = f"demo_drive_seed{seed}_{sc.duration_s:.0f}s_v{SIMULATOR_VERSION}.log"
    path = (cache or model_cache_dir().parent / "demo") / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        write_demo_log(tmp, duration_s=sc.duration_s, seed=seed)
        tmp.replace(path)
    return path, sc


def demo_nmea(seed: int = 1, cache: Path | None = None) -> Path:
    """An NMEA log of the demo drive whose speed follows the car's CAN speed (written once, then cached)."""
    import os

    from edge_assistant.gnss.simulate import RouteScenario, write_nmea
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, decoder_for
    from edge_assistant.vehicle.logs import read_log

    log_path, sc = demo_log(seed, cache)
    nmea_path = log_path.with_suffix(".nmea")
    if nmea_path.is_file():
        return nmea_path
    dec = decoder_for(DEMO_DBC, DEMO_MAPPING)
    trace: list[tuple[float, float]] = []
    t0 = None
    for msg in read_log(log_path):
        if msg.arbitration_id != 0x100:  # VCU_Drive carries the vehicle speed
            continue
        t0 = msg.timestamp if t0 is None else t0
        if not trace or msg.timestamp - t0 - trace[-1][0] >= 0.2:
            dec.feed_messages([msg])
            speed = dec.state.snapshot().value("Vehicle.Speed")
            if isinstance(speed, (int, float)):
                trace.append((msg.timestamp - t0, float(speed)))
    route = RouteScenario(duration_s=sc.duration_s, seed=seed, start_epoch_s=sc.start_epoch_s,
                          tunnel_start_s=400.0, tunnel_duration_s=30.0)
    tmp = nmea_path.with_suffix(f".{os.getpid()}.tmp")
    write_nmea(tmp, route, speed_trace_kmh=trace)
    tmp.replace(nmea_path)
    return nmea_path


def read_demo_dtcs(genius: CarGenius, scenario, t_s: float, channel: str = "can0",
                   vehicle: str | None = None) -> DtcReadout:
    """Start the demo ECUs on a virtual bus, read their codes with udsoncan (19 02), stop them."""
    import can

    from edge_assistant.diagnostics.demo import DEMO_BMS, DEMO_VEHICLE_TABLE, demo_ecus, read_dtcs_once
    from edge_assistant.diagnostics.dtc import module_name

    snap = genius.snapshot()
    with demo_ecus(snap, scenario.dtcs_at(t_s), channel=channel):
        bus = can.Bus(interface="virtual", channel=channel)
        try:
            dtcs, source = read_dtcs_once(bus, DEMO_BMS)
        finally:
            bus.shutdown()
    module = module_name(vehicle or DEMO_VEHICLE_TABLE, DEMO_BMS.response_id)
    entries = tuple(DtcEntry(d.full_code if d.failure_type else d.code, d.status.byte, module, DEMO_BMS.response_id)
                    for d in dtcs)
    return DtcReadout(entries, snap.now_s, source)


def demo_car(at_s: float | None = None, channel: str = "can0", vehicle: str | None = None) -> DemoCar:
    """Replay the demo drive and its GNSS log up to ``at_s`` (default: its end) once, into the one state
    both agents read (their tyre and trip history fed as it unfolds), and read its DTCs."""
    from edge_assistant.agents.replay import replay_drive
    from edge_assistant.diagnostics.demo import DEMO_VEHICLE_TABLE
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING

    path, sc = demo_log()
    vehicle = vehicle or DEMO_VEHICLE_TABLE
    state = VehicleState()
    genius = CarGenius(state, vehicle=vehicle)
    travel = TravelCompanion(state)
    replay_drive(state, path, DEMO_DBC, DEMO_MAPPING, nmea_path=demo_nmea(), at_s=at_s)
    travel.observe()  # the trip as of the final "now"
    t_s = sc.duration_s if at_s is None else at_s
    genius.set_dtcs(read_demo_dtcs(genius, sc, t_s, channel=channel, vehicle=vehicle))
    return DemoCar(genius, travel, path, t_s, state)
