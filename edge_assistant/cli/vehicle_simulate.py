"""``edge-assistant vehicle simulate``: write the demo electric car's drive as a candump log."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a simulated drive of the demo EV (candump .log)",
        description="Simulate the demo electric vehicle (DBC and VSS mapping shipped in the package): a drive "
                    "with speed, state of charge, range, tyre pressures with a slow leak, a warning lamp and "
                    "a trouble code appearing. Same seed and duration give the same log byte for byte.")
    p.add_argument("-o", "--output", required=True, help="output candump .log")
    p.add_argument("--duration", type=float, default=720.0, metavar="S", help="seconds of drive (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="write the scenario (paths, events, DTCs) as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, write_demo_log

    if args.duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    sc = write_demo_log(args.output, duration_s=args.duration, seed=args.seed)
    info = {
        "output": args.output, "dbc": str(DEMO_DBC), "mapping": str(DEMO_MAPPING),
        "duration_s": sc.duration_s, "seed": sc.seed, "start_epoch_s": sc.start_epoch_s,
        "tpms_lamp_on_at_s": round(sc.tpms_lamp_on_at_s(), 1), "leaking_tire": sc.leak_tire,
        "dtc": {"code": sc.dtc.code, "pending_at_s": sc.dtc.pending_at_s, "confirmed_at_s": sc.dtc.confirmed_at_s,
                "ecu": sc.dtc.ecu},
    }
    if args.json:
        write_json(info, args.json)
    else:
        print(f"wrote {args.output}: {sc.duration_s:.0f} s drive, seed {sc.seed}; decode with --dbc {DEMO_DBC} "
              f"--mapping {DEMO_MAPPING}")
    return 0
