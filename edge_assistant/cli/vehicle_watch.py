"""``edge-assistant vehicle watch``: the live vehicle state from a bus (or a replayed log), refreshing."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    from edge_assistant.vehicle.bus import add_bus_arguments

    p = subparsers.add_parser(
        "watch", help="show the decoded vehicle state live (table or JSON lines)",
        description="Decode a CAN bus with DBC file(s) and an optional VSS mapping and show every value with "
                    "its unit and age; values older than --stale-s are marked STALE. With --replay FILE the "
                    "log is played onto the bus (default virtual:can0) in the same process and decoded "
                    "from there. Without --mapping, keys are the DBC's own signal names and units.")
    p.add_argument("--dbc", action="append", required=True, metavar="FILE",
                   help="DBC file (repeat for several; the first defining a frame id decodes it)")
    p.add_argument("--mapping", metavar="FILE", help="VSS mapping JSON (see edge_assistant/vehicle/vss.py)")
    add_bus_arguments(p)
    p.add_argument("--replay", metavar="FILE", help="replay this log onto the bus and watch it")
    p.add_argument("--speed", default="1.0", metavar="X|max", help="replay speed (default: %(default)s)")
    p.add_argument("--loop", action="store_true", help="replay the log again and again (until Ctrl-C/--duration)")
    p.add_argument("--log-channel", default=None, metavar="CH",
                   help="replay only this bus of a multi-bus log (GVRET 'Bus' 0/1, candump interface name)")
    p.add_argument("--refresh-s", type=float, default=0.5, help="refresh period (default: %(default)s)")
    p.add_argument("--stale-s", type=float, default=3.0, help="age after which a value is STALE (default: %(default)s)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--filter", default=None, metavar="TEXT", help="only keys containing TEXT")
    p.add_argument("--json", action="store_true", help="print one JSON object per refresh (JSON lines)")
    p.set_defaults(func=run)


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def render_table(snapshot, stale_s: float, stats: dict, only: str | None = None) -> str:
    """The watch table as text (ANSI bold header and reverse-video STALE marks)."""
    rows = sorted((r for r in snapshot if not only or only in r.path), key=lambda r: r.path)
    width = max([len(r.path) for r in rows] + [6])
    out = [f"\x1b[1m{'signal':<{width}}  {'value':>14}  {'unit':<9} {'age s':>7}\x1b[0m"]
    for r in rows:
        age = snapshot.age_s(r.path) or 0.0
        mark = "  \x1b[7mSTALE\x1b[0m" if age > stale_s else ""
        out.append(f"{r.path:<{width}}  {_fmt_value(r.value):>14}  {(r.unit or ''):<9} {age:7.2f}{mark}")
    out.append(f"frames {stats.get('frames', 0)}  decoded {stats.get('decoded', 0)}  unknown "
               f"{stats.get('unknown_frames', 0)}  bus faults {stats.get('faults', 0)}  error frames "
               f"{stats.get('error_frames', 0)}")
    return "\n".join(out)


def snapshot_json(snapshot, stale_s: float, stats: dict, only: str | None = None) -> dict:
    values = {}
    for r in snapshot:
        if only and only not in r.path:
            continue
        age = snapshot.age_s(r.path)
        values[r.path] = {"value": r.value, "unit": r.unit, "age_s": round(age, 3), "stale": age > stale_s,
                          "source": r.source}
    return {"now_s": round(snapshot.now_s, 3), "values": values, "stats": stats}


def run(args) -> int:
    import json
    import threading
    import time

    from edge_assistant.core.errors import ConfigError
    from edge_assistant.core.state import VehicleState
    from edge_assistant.vehicle import decoder_for
    from edge_assistant.vehicle.bus import BusReader, bus_config_from_args, first_then, open_bus
    from edge_assistant.vehicle.logs import read_log
    from edge_assistant.vehicle.replay import replay

    try:
        speed = None if str(args.speed).lower() == "max" else float(args.speed)
    except ValueError as exc:
        raise ConfigError(f"--speed {args.speed!r}: expected a positive number or 'max'") from exc
    if speed is not None and speed <= 0:
        raise ConfigError(f"--speed {args.speed!r}: must be > 0 (or 'max')")
    cfg = bus_config_from_args(args)
    state = VehicleState(clock=time.time)
    dec = decoder_for(args.dbc, args.mapping, state)
    reader = BusReader(first_then(cfg), dec.feed_messages, name=cfg.describe()).start()
    reader.wait_connected(5.0)
    replay_done = threading.Event()
    stop = threading.Event()
    tx = None
    if args.replay:
        read_log(args.replay)  # a missing or unreadable log fails here, with its name
        tx = open_bus(cfg)

        def _play() -> None:
            try:
                replay(lambda: read_log(args.replay, channel=args.log_channel), tx, speed=speed, loop=args.loop,
                       stop=stop)
            finally:
                replay_done.set()

        threading.Thread(target=_play, name="watch-replay", daemon=True).start()
    tty = sys.stdout.isatty() and not args.json
    t0 = time.monotonic()

    def stats() -> dict:
        return {**{k: v for k, v in dec.stats.as_dict().items() if not isinstance(v, dict)},
                "error_frames": reader.stats.error_frames, "faults": reader.stats.faults}

    def show() -> None:
        snap = state.snapshot()
        if args.json:
            sys.stdout.write(json.dumps(snapshot_json(snap, args.stale_s, stats(), args.filter)) + "\n")
        else:
            sys.stdout.write(("\x1b[H\x1b[2J" if tty else "") + render_table(snap, args.stale_s, stats(), args.filter)
                             + "\n")
        sys.stdout.flush()

    try:
        while True:
            if replay_done.wait(args.refresh_s):
                # let the reader drain what the replay sent, then show the final state and stop
                end = time.monotonic() + 2.0
                last = -1
                while time.monotonic() < end and reader.stats.frames != last:
                    last = reader.stats.frames
                    time.sleep(0.1)
                show()
                break
            show()
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        reader.stop()
        if tx is not None:
            tx.shutdown()
    return 0
