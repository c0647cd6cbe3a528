"""``edge-assistant health``: the running assistant's health, as its last report says.

Reads the report ``edge-assistant run`` writes once a second (``health.json`` in its runtime directory,
``/run/edge-assistant`` under systemd). Exit status: 0 ok or degraded (it answers; something it reads is
missing or old), 1 failing (no fresh report, models not loaded, or no audio). The firmware's mark-good
check calls this.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("health", help="the running assistant's health (exit 1 when failing)",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE", help="device configuration whose paths the service uses")
    src.add_argument("--file", metavar="PATH", help="the health report to read (default: from the paths)")
    p.add_argument("--json", action="store_true", help="the whole report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from pathlib import Path

    from edge_assistant.app.health import HEALTH_FILE, read_health, runtime_dir
    from edge_assistant.core.config import default_config, load_config

    if args.file:
        path = Path(args.file)
    else:
        config = load_config(args.config) if args.config else default_config()
        path = runtime_dir(config.paths.state_dir) / HEALTH_FILE
    report = read_health(path)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        audio, vehicle = report.get("audio", {}), report.get("vehicle", {})
        out.write(f"{report['status']} (report {report['report_age_s']:.1f} s old, up {report['uptime_s']:.0f} s)\n")
        for p in report.get("problems", []):
            out.write(f"  - {p}\n")
        if audio:
            out.write(f"audio: {audio.get('state')}, last chunk {audio.get('last_chunk_age_s')} s ago, "
                      f"{audio.get('overruns', 0)} overrun(s)\n")
        if vehicle:
            out.write(f"vehicle: {vehicle.get('bus')} {'connected' if vehicle.get('connected') else 'not connected'}, "
                      f"{vehicle.get('frames', 0)} frames, last {vehicle.get('last_frame_age_s')} s ago\n")
    return 1 if report["status"] == "failing" else 0
