"""``edge-assistant config check FILE``: load a device configuration and print it resolved, or say what is wrong.

Besides the file's own keys, types and ranges, it checks what the file names: every referenced file exists
(DBCs, VSS mapping, wake heads given as paths, TLS files of an enabled uplink) and the DTC table resolves.
``--file-only`` skips those (e.g. on a build host without the car's files). Exit status 1 on any problem.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="check a device configuration (TOML) and print it resolved",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("file", metavar="FILE", help="the configuration, e.g. firmware/config/kona-ev.toml")
    p.add_argument("--json", action="store_true",
                   help='print {"file", "ok", "errors", "config"} as JSON on stdout (also on failure)')
    p.add_argument("--file-only", action="store_true",
                   help="check only the file itself, not the files and tables it names")
    p.set_defaults(func=run)


def resource_problems(name: str, config) -> list[str]:
    """What the configuration names but this machine lacks, one message per problem."""
    from edge_assistant.core.errors import EdgeAssistantError

    problems = [f"{name}: {key}: file not found: {path}" for key, path in config.referenced_files()
                if not path.is_file()]
    table = config.vehicle.dtc_table
    if table is not None and not table.endswith(".json"):
        from edge_assistant.diagnostics.dtc import vehicle_table

        try:
            vehicle_table(table)
        except EdgeAssistantError as exc:
            problems.append(f"{name}: vehicle.dtc_table: {exc}")
    return problems


def run(args) -> int:
    import json
    import sys

    from edge_assistant.core.config import load_config, to_toml
    from edge_assistant.core.errors import ConfigError

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        if not args.json:
            raise
        errors, config = [str(exc)], None
    else:
        errors = [] if args.file_only else resource_problems(args.file, config)
    if args.json:
        out = {"file": args.file, "ok": not errors, "errors": errors,
               "config": config.to_dict() if config is not None else None}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        for message in errors:
            print(f"edge-assistant: error: {message}", file=sys.stderr)
        if not errors:
            sys.stdout.write(to_toml(config))
    return 1 if errors else 0
