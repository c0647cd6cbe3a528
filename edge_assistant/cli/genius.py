"""``edge-assistant genius "question"``: ask Car Genius about the car (demo car or a replayed log)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "genius", help="ask Car Genius a question about the car",
        description="Answer a question about the car from its CAN state and trouble codes. Without --replay, "
                    "the demo EV's drive is simulated (cached), replayed to the time --at, and its trouble codes "
                    "are read over UDS from the demo virtual ECUs on a virtual CAN bus.")
    p.add_argument("question", help='e.g. "why is the tyre light on?"')
    p.add_argument("--replay", metavar="LOG", help="a recorded log (candump, GVRET CSV, asc, blf, trc, mf4)")
    p.add_argument("--dbc", action="append", default=[], metavar="FILE", help="DBC for --replay (repeatable)")
    p.add_argument("--mapping", metavar="FILE", help="VSS mapping JSON for --replay")
    p.add_argument("--demo", action="store_true", help="use the demo car (the default without --replay)")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="answer as of this many seconds after the log's first frame (default: end of log)")
    p.add_argument("--vehicle", metavar="TABLE", help="per-vehicle DTC table: demo_ev, kona_ev or a JSON file")
    p.add_argument("--channel", default="can0", help="virtual CAN channel for the demo ECUs (default: %(default)s)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the answer (text, intent, values with ages) as JSON to FILE or stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_assistant.agents.car_genius import genius_from_log
    from edge_assistant.cli._common import print_answer, write_json
    from edge_assistant.core.errors import ConfigError

    if args.replay and args.demo:
        raise ConfigError("--replay and --demo exclude each other")
    if args.replay:
        if not args.dbc:
            raise ConfigError("--replay needs at least one --dbc")
        if not args.mapping:
            sys.stderr.write("edge-assistant: note: without --mapping the state is keyed by DBC signal names; Car "
                             "Genius reads VSS paths, so its answers will say the data is missing\n")
        genius = genius_from_log(args.replay, args.dbc, args.mapping, at_s=args.at, vehicle=args.vehicle)
    else:
        from edge_assistant.agents.demo import demo_log, read_demo_dtcs
        from edge_assistant.diagnostics.demo import DEMO_VEHICLE_TABLE
        from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING

        log_path, sc = demo_log()
        vehicle = args.vehicle or DEMO_VEHICLE_TABLE
        genius = genius_from_log(log_path, DEMO_DBC, DEMO_MAPPING, at_s=args.at, vehicle=vehicle)
        t_s = sc.duration_s if args.at is None else args.at
        genius.set_dtcs(read_demo_dtcs(genius, sc, t_s, channel=args.channel, vehicle=vehicle))
    from edge_assistant.intents import parse

    answer = genius.answer(parse(args.question))
    if args.json:
        write_json(answer.to_dict(), args.json)
    else:
        print_answer(sys.stdout, answer)
    return 0
