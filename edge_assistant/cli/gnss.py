"""``edge-assistant gnss watch|simulate``: read a GNSS receiver (or a recorded NMEA log); write a demo log."""

from __future__ import annotations

import json
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gnss", help="GNSS receiver tools: watch fixes, simulate an NMEA log",
        description="GNSS over NMEA 0183: watch the fixes of a receiver on a serial port (any pyserial URL) or "
                    "of a recorded log, or write a simulated drive as NMEA.")
    sub = p.add_subparsers(dest="gnss_command", metavar="COMMAND")

    w = sub.add_parser("watch", help="print fixes from a receiver or an NMEA log",
                       description="Print one line per fix (time, position, speed, course, satellites, HDOP, fix "
                                   "type). A receiver that disappears is reopened with back-off; malformed lines "
                                   "are counted and reported at the end.")
    src = w.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", metavar="URL", help="serial device or pyserial URL (/dev/ttyACM0, loop://, socket://h:p)")
    src.add_argument("--file", metavar="FILE", help="recorded NMEA log")
    w.add_argument("--baud", type=int, default=9600, help="baud rate for --port (default: %(default)s)")
    w.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (--port)")
    w.add_argument("--count", type=int, default=None, metavar="N", help="stop after N fixes")
    w.add_argument("--every", type=int, default=1, metavar="N", help="print every Nth fix (default: %(default)s)")
    w.add_argument("--no-checksum-ok", action="store_true", help="accept sentences without a '*hh' checksum")
    w.add_argument("--json", action="store_true", help="JSON lines: one object per fix, then a summary object")
    w.set_defaults(func=run_watch)

    s = sub.add_parser("simulate", help="write a seeded NMEA log of a demo drive",
                       description="Write what a multi-constellation receiver sends during a seeded drive (town, "
                                   "country road, motorway, a tunnel without fix). Same seed, same bytes.")
    s.add_argument("-o", "--output", required=True, help="output NMEA file")
    s.add_argument("--duration", type=float, default=2400.0, metavar="S", help="seconds (default: %(default)s)")
    s.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    s.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write a summary as JSON to FILE or stdout")
    s.set_defaults(func=run_simulate)
    p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])


def _fix_dict(fix, ts: float) -> dict:
    stamp = fix.timestamp
    return {
        "timestamp_s": round(ts, 3), "utc": stamp.isoformat() if stamp else (fix.time_utc.isoformat() if fix.time_utc else None),
        "valid": fix.valid, "fix_type": fix.fix_type, "quality": fix.fix_quality, "lat_deg": fix.lat_deg,
        "lon_deg": fix.lon_deg, "altitude_m": fix.altitude_m, "speed_mps": fix.speed_mps, "course_deg": fix.course_deg,
        "satellites_used": fix.satellites_used, "satellites_in_view": fix.satellites_in_view, "hdop": fix.hdop,
        "talkers": list(fix.talkers),
    }


def _fix_line(fix) -> str:
    t = fix.time_utc.strftime("%H:%M:%S") if fix.time_utc else "--:--:--"
    if not fix.valid or fix.lat_deg is None:
        return f"{t}  no fix ({fix.fix_type})  sats {fix.satellites_used or 0}/{fix.satellites_in_view or 0}"
    kmh = f"{fix.speed_mps * 3.6:6.1f} km/h" if fix.speed_mps is not None else "     - km/h"
    cog = f"{fix.course_deg:5.1f}°" if fix.course_deg is not None else "    -"
    hdop = f"{fix.hdop:.1f}" if fix.hdop is not None else "-"
    return (f"{t}  {fix.lat_deg:+10.6f} {fix.lon_deg:+11.6f}  {kmh} {cog}  sats {fix.satellites_used or 0}/"
            f"{fix.satellites_in_view or 0}  HDOP {hdop}  {fix.fix_type}")


def run_watch(args) -> int:
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.gnss.source import GnssConfig, NmeaFileSource, SerialGnssSource

    if args.every < 1 or (args.count is not None and args.count < 1):
        raise ConfigError("--every and --count must be >= 1")
    out = sys.stdout
    shown = 0

    def emit(fix, ts: float, n: int) -> None:
        nonlocal shown
        if (n - 1) % args.every:
            return
        out.write((json.dumps(_fix_dict(fix, ts)) if args.json else _fix_line(fix)) + "\n")
        out.flush()
        shown += 1

    if args.file:
        from tqdm import tqdm

        source = NmeaFileSource(args.file, require_checksum=not args.no_checksum_ok)
        n = 0
        with tqdm(desc="fixes", unit=" fix", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            for fix, ts in source.fixes():
                n += 1
                bar.update(1)
                emit(fix, ts, n)
                if args.count and n >= args.count:
                    break
        stats = source.stats
        summary = {"source": args.file, "fixes": n, "lines": stats.lines, "sentences": stats.sentences,
                   "ignored": stats.ignored, "errors": stats.errors, "bad_checksum": stats.bad_checksum,
                   "truncated": stats.truncated, "garbage": stats.garbage, "last_error": stats.last_error}
    else:
        import queue

        cfg = GnssConfig(args.port, baudrate_bps=args.baud, require_checksum=not args.no_checksum_ok)
        fixes: queue.Queue = queue.Queue()
        src = SerialGnssSource(cfg, on_fix=lambda fix, ts: fixes.put((fix, ts)))
        deadline = time.monotonic() + args.duration if args.duration else None
        n = 0
        with src:
            try:
                while deadline is None or time.monotonic() < deadline:
                    wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                    try:
                        fix, ts = fixes.get(timeout=wait)
                    except queue.Empty:
                        continue
                    n += 1
                    emit(fix, ts, n)
                    if args.count and n >= args.count:
                        break
            except KeyboardInterrupt:
                pass
        st = src.stats
        summary = {"source": args.port, "fixes": src.fix_count, "bytes": st.bytes_read, "connects": st.connects,
                   "disconnects": st.disconnects, "open_failures": st.open_failures, "lines": st.nmea.lines,
                   "errors": st.nmea.errors, "bad_checksum": st.nmea.bad_checksum, "truncated": st.nmea.truncated,
                   "garbage": st.nmea.garbage + st.overlong_lines, "last_error": st.last_error or st.nmea.last_error}
    if args.json:
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        sys.stderr.write("gnss: " + ", ".join(f"{k} {v}" for k, v in summary.items() if v not in (None, 0)) + "\n")
    return 0 if summary["fixes"] or summary.get("lines") else 1


def run_simulate(args) -> int:
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.gnss.simulate import RouteScenario, write_nmea

    if args.duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    tunnel = 1500.0 if args.duration > 1600 else None
    sc = RouteScenario(duration_s=args.duration, seed=args.seed, tunnel_start_s=tunnel)
    track = write_nmea(args.output, sc)
    info = {"output": args.output, "duration_s": sc.duration_s, "seed": sc.seed, "distance_km": round(track[-1].distance_m / 1000, 3),
            "start": [sc.start_lat_deg, sc.start_lon_deg], "end": [round(track[-1].lat_deg, 6), round(track[-1].lon_deg, 6)],
            "tunnel_s": [sc.tunnel_start_s, sc.tunnel_start_s + sc.tunnel_duration_s] if tunnel else None}
    if args.json:
        write_json(info, args.json)
    else:
        print(f"wrote {args.output}: {sc.duration_s:.0f} s, {info['distance_km']:.1f} km, seed {sc.seed}")
    return 0
