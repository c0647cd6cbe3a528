"""``edge-assistant can record``: record a bus to a candump ``.log`` file."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("record", help="record frames from a bus to a candump .log",
                              description="Record a CAN bus to a candump -L log until --duration or Ctrl-C. "
                                          "Bus faults are counted and the adapter reopened.")
    p.add_argument("-o", "--output", required=True, help="output .log file (candump -L format)")
    p.add_argument("--interface", choices=("virtual", "socketcan", "slcan"), default="socketcan",
                   help="bus interface (default: %(default)s)")
    p.add_argument("--channel", default="can0", help="channel or serial port (default: %(default)s)")
    p.add_argument("--bitrate", type=int, default=500_000, help="CAN bitrate in bit/s for slcan (default: %(default)s)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--json", metavar="FILE", help="write recording statistics as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import threading
    import time

    from tqdm import tqdm

    from edge_assistant.cli._common import write_json
    from edge_assistant.vehicle.bus import BusConfig, BusReader, first_then
    from edge_assistant.vehicle.logs import CandumpWriter

    cfg = BusConfig(args.interface, args.channel, args.bitrate)
    opener = first_then(cfg)  # fails here, naming the bus, if it cannot be opened at all
    done = threading.Event()
    bar = tqdm(unit="frame", desc="record", file=sys.stderr, disable=None)
    with CandumpWriter(args.output, channel=args.channel) as writer:
        lock = threading.Lock()

        def on_batch(batch):
            with lock:
                for msg in batch:
                    if args.max_frames is not None and writer.frames >= args.max_frames:
                        done.set()
                        return
                    writer.write(msg)
            bar.update(len(batch))

        reader = BusReader(opener, on_batch, name=cfg.describe()).start()
        t0 = time.monotonic()
        try:
            while not done.wait(0.1):
                if args.duration is not None and time.monotonic() - t0 >= args.duration:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            reader.stop()
            bar.close()
    result = {"output": args.output, "frames": writer.frames, "bus": reader.stats.as_dict()}
    if args.json:
        write_json(result, args.json)
    else:
        s = reader.stats
        print(f"recorded {writer.frames} frames to {args.output}; {s.error_frames} error frame(s), "
              f"{s.faults} fault(s), {s.reconnects} reconnect(s)")
    return 0
