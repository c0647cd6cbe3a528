"""``edge-assistant travel "question"``: ask the Travel Companion (demo drive or a replayed log + NMEA)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "travel", help="ask the Travel Companion: range, can I make it, charging stops, trip, location",
        description="Answer a travel question from the car's state and the trip so far. Without --replay, the "
                    "demo EV's drive is simulated (CAN log and a matching GNSS NMEA log, cached) and replayed "
                    "to the time --at.")
    p.add_argument("question", help='e.g. "can I make it 120 km?", "how long to charge to 80%% on a 50 kW charger?"')
    p.add_argument("--demo", action="store_true", help="use the demo car (the default without --replay)")
    p.add_argument("--replay", metavar="LOG", help="a recorded CAN log (candump, GVRET CSV, asc, blf, trc, mf4)")
    p.add_argument("--dbc", action="append", default=[], metavar="FILE", help="DBC for --replay (repeatable)")
    p.add_argument("--mapping", metavar="FILE", help="VSS mapping JSON for --replay")
    p.add_argument("--nmea", metavar="FILE", help="NMEA log of the same drive (the demo makes its own)")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="answer as of this many seconds after the log's first frame (default: end of log)")
    p.add_argument("--capacity-kwh", type=float, default=None, help="usable battery capacity (default: demo EV, 64)")
    p.add_argument("--reserve-pct", type=float, default=None, help="state of charge to keep at arrival (default: 10)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the answer (text, intent, values with ages, trip) as JSON to FILE or stdout")
    p.set_defaults(func=run)


def _cache_dir() -> Path:
    from edge_assistant.core.paths import model_cache_dir

    return model_cache_dir().parent / "demo"


def demo_drive(cache: Path | None = None, seed: int = 1) -> tuple[Path, Path]:
    """The demo CAN log and an NMEA log whose speed follows the car's (written once, then cached)."""
    from edge_assistant.gnss.simulate import RouteScenario, write_nmea
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, DemoScenario, decoder_for, write_demo_log
    from edge_assistant.vehicle.logs import read_log

    cache = cache or _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    sc = DemoScenario(seed=seed)
    log_path = cache / f"demo_drive_seed{seed}_{sc.duration_s:.0f}s.log"
    nmea_path = cache / f"demo_drive_seed{seed}_{sc.duration_s:.0f}s.nmea"
    if not log_path.is_file():
        tmp = log_path.with_suffix(f".{os.getpid()}.tmp")
        write_demo_log(tmp, duration_s=sc.duration_s, seed=seed)
        tmp.replace(log_path)
    if not nmea_path.is_file():
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
    return log_path, nmea_path


def run(args) -> int:
    from dataclasses import replace

    from edge_assistant.agents.travel_companion import TravelConfig, travel_from_log
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError

    if args.replay and args.demo:
        raise ConfigError("--replay and --demo exclude each other")
    cfg = TravelConfig()
    if args.capacity_kwh is not None:
        cfg = replace(cfg, usable_capacity_kwh=args.capacity_kwh)
    if args.reserve_pct is not None:
        cfg = replace(cfg, reserve_pct=args.reserve_pct)
    if args.replay:
        if not args.dbc:
            raise ConfigError("--replay needs at least one --dbc")
        log_path, dbcs, mapping, nmea = args.replay, args.dbc, args.mapping, args.nmea
    else:
        from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING

        log_path, demo_nmea = demo_drive()
        dbcs, mapping, nmea = [DEMO_DBC], DEMO_MAPPING, args.nmea or demo_nmea
    agent = travel_from_log(log_path, dbcs, mapping, nmea_path=nmea, at_s=args.at, config=cfg)
    answer = agent.answer(args.question)
    if args.json:
        data = answer.to_dict()
        s = agent.trip.stats()
        data["trip"] = {"distance_km": round(s.distance_km, 3), "distance_source": s.distance_source,
                        "duration_s": round(s.duration_s, 1), "moving_s": round(s.moving_s, 1),
                        "energy_kwh": None if s.energy_kwh is None else round(s.energy_kwh, 3),
                        "energy_source": s.energy_source, "gnss_distance_km": round(s.gnss_distance_km, 3),
                        "gaps": s.gaps}
        write_json(data, args.json)
    else:
        sys.stdout.write(answer.text + "\n")
        used = [v for v in answer.values if v.age_s is not None]
        if used:
            sys.stdout.write("  values used: " + "; ".join(
                f"{v.label}={v.value}{' ' + v.unit if v.unit else ''} ({v.age_s:.1f} s old{', stale' if v.stale else ''})"
                for v in used) + "\n")
        if answer.missing:
            sys.stdout.write("  missing: " + ", ".join(answer.missing) + "\n")
    return 0
