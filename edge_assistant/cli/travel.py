"""``edge-assistant travel "question"``: ask the Travel Companion (demo drive or a replayed log + NMEA)."""

from __future__ import annotations

import sys


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


def run(args) -> int:
    from dataclasses import replace

    from edge_assistant.agents.travel_companion import TravelConfig, travel_from_log
    from edge_assistant.cli._common import print_answer, write_json
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
        from edge_assistant.agents.demo import demo_log, demo_nmea
        from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING

        log_path, demo_nmea_path = demo_log()[0], demo_nmea()
        dbcs, mapping, nmea = [DEMO_DBC], DEMO_MAPPING, args.nmea or demo_nmea_path
    agent = travel_from_log(log_path, dbcs, mapping, nmea_path=nmea, at_s=args.at, config=cfg)
    from edge_assistant.intents import parse

    answer = agent.answer(parse(args.question))
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
        print_answer(sys.stdout, answer)
    return 0
