"""``edge-assistant can replay FILE``: play a CAN log onto a bus with its original timing."""

from __future__ import annotations

import argparse
import sys


def _speed(text: str) -> float | None:
    if text.lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("--speed must be a positive number or 'max'") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("--speed must be > 0 or 'max'")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="play a CAN log onto a bus (original timing, faster, or max)",
        description="Play a CAN log (candump .log, .asc, .blf, .trc, .csv, SavvyCAN/GVRET .csv, .mf4) onto a "
                    "bus. The virtual interface is in-process only: use 'vehicle watch --replay' to replay and "
                    "decode in one process; use socketcan/slcan to feed other processes or devices.")
    p.add_argument("file", help="log file")
    p.add_argument("--interface", choices=("virtual", "socketcan", "slcan"), default="virtual",
                   help="bus interface (default: %(default)s)")
    p.add_argument("--channel", default="can0", help="channel or serial port (default: %(default)s)")
    p.add_argument("--bitrate", type=int, default=500_000, help="CAN bitrate in bit/s for slcan (default: %(default)s)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X|max",
                   help="time scale: 1.0 real time, 2 twice as fast, 'max' as fast as possible (default: 1.0)")
    p.add_argument("--loop", action="store_true", help="start again at the end until interrupted")
    p.add_argument("--max-gap", type=float, default=5.0, metavar="S",
                   help="a jump in log time longer than S seconds (a corrupt time stamp) is played without a "
                        "wait and counted as a discontinuity (default: %(default)s)")
    p.add_argument("--log-channel", default=None, metavar="CH",
                   help="replay only this bus of a multi-bus log (GVRET 'Bus' 0/1, candump interface name)")
    p.add_argument("--json", metavar="FILE", help="write replay statistics as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import threading

    from tqdm import tqdm

    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.vehicle.bus import BusConfig, open_bus
    from edge_assistant.vehicle.logs import LogStats, read_log
    from edge_assistant.vehicle.replay import replay

    if not args.max_gap > 0:
        raise ConfigError(f"--max-gap {args.max_gap}: expected a positive number of seconds")
    bus = open_bus(BusConfig(args.interface, args.channel, args.bitrate))
    log_stats = LogStats()
    stop = threading.Event()
    bar = tqdm(unit="frame", desc="replay", file=sys.stderr, disable=None)
    try:
        stats = replay(lambda: read_log(args.file, log_stats, channel=args.log_channel), bus, speed=args.speed,
                       loop=args.loop, stop=stop, on_frame=lambda _m: bar.update(), max_gap_s=args.max_gap)
    except KeyboardInterrupt:
        stop.set()
        return 130
    finally:
        bar.close()
        bus.shutdown()
    result = {"file": args.file, "bus": f"{args.interface}:{args.channel}", "speed": args.speed or "max",
              **stats.as_dict(), "bad_lines": log_stats.bad_lines}
    if args.json:
        write_json(result, args.json)
    else:
        t = stats.timing_error_ms()
        print(f"sent {stats.frames_sent} frames in {stats.duration_s:.2f} s ({stats.loops} loop(s)); "
              f"timing error p50 {t['p50']:.3f} ms, p99 {t['p99']:.3f} ms; "
              f"{log_stats.bad_lines} bad line(s), {stats.send_errors} send error(s), "
              f"{stats.discontinuities} time jump(s), {stats.bad_timestamps} bad time stamp(s)")
    return 0 if stats.send_errors == 0 else 1
