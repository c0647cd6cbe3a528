#!/usr/bin/env python3
"""Why the soak's resident memory can step up once and stay: python-can's virtual bus under a stalled reader.

``bench device`` and ``soak`` put the vehicle bus on python-can's ``virtual`` interface (the machine has no
SocketCAN). That bus copies every frame into an unbounded ``queue.Queue`` per receiver, so a receiver that
stalls for a moment (a thread starved of the GIL) lets its queue grow by the bus rate times the stall: tens of
thousands of small Python objects. When the queue drains, CPython's small-object allocator keeps the arenas that
objects allocated meanwhile still occupy, so resident memory stays at the new high-water mark; a stall no longer
than one before adds nothing. A SocketCAN socket bounds its receive queue in the kernel instead (frames beyond it
are dropped and counted), so this growth belongs to the test harness, not to the device.

This script shows it with python-can alone: one sender at ``--fps`` frames/s (the soak's 8,700 by default), one
receiver, and stalls of the given lengths; per stall the queue length, allocated blocks and RSS after the drain.

    python benchmarks/virtual_bus_backlog.py [--fps 8700] [--stalls 1 1 3 3 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def run(fps: float, stalls: list[float], settle_s: float) -> dict:
    import can

    tx = can.Bus(interface="virtual", channel="backlog")
    rx = can.Bus(interface="virtual", channel="backlog")
    stop, stall = threading.Event(), threading.Event()
    kept: list[object] = []  # long-lived objects allocated while frames flow, as a running service allocates
    per_tick = max(1, round(fps / 100))

    def send() -> None:
        msg = can.Message(arbitration_id=0x123, data=bytes(8))
        while not stop.is_set():
            t = time.perf_counter()
            for _ in range(per_tick):
                tx.send(msg)
            time.sleep(max(0.0, 0.01 - (time.perf_counter() - t)))

    def receive() -> None:
        n = 0
        while not stop.is_set():
            if stall.is_set():
                time.sleep(0.01)
                continue
            if rx.recv(0.1) is not None:
                n += 1
                if n % 2000 == 0:
                    kept.append(object())

    threads = [threading.Thread(target=f, daemon=True) for f in (send, receive)]
    for th in threads:
        th.start()
    time.sleep(settle_s)
    out = {"fps": fps, "steady_rss_mb": round(rss_mb(), 1), "steady_blocks": sys.getallocatedblocks(), "stalls": []}
    try:
        for s in stalls:
            stall.set()
            time.sleep(s)
            row = {"stall_s": s, "queued_frames": rx.queue.qsize(), "blocks_at_peak": sys.getallocatedblocks(),
                   "rss_mb_at_peak": round(rss_mb(), 1)}
            stall.clear()
            while rx.queue.qsize() > 100:
                time.sleep(0.05)
            time.sleep(settle_s)
            row |= {"blocks_after_drain": sys.getallocatedblocks(), "rss_mb_after_drain": round(rss_mb(), 1)}
            out["stalls"].append(row)
    finally:
        stop.set()
        for th in threads:
            th.join(2.0)
        tx.shutdown()
        rx.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fps", type=float, default=8700.0, help="frames/s sent (default: %(default)s)")
    ap.add_argument("--stalls", type=float, nargs="+", default=[1.0, 1.0, 3.0, 3.0, 1.0], metavar="S",
                    help="receiver stalls in seconds, in order (default: 1 1 3 3 1)")
    ap.add_argument("--settle", type=float, default=3.0, metavar="S", help="seconds before and after each stall")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON ('-' for stdout)")
    args = ap.parse_args(argv)
    if not args.fps > 0 or any(s <= 0 for s in args.stalls) or args.settle < 0:
        ap.error("--fps and --stalls must be > 0, --settle >= 0")
    r = run(args.fps, args.stalls, args.settle)
    if args.json:
        text = json.dumps(r, indent=2)
        if args.json == "-":
            print(text)
            return 0
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(f"steady: RSS {r['steady_rss_mb']} MB, {r['steady_blocks']} Python blocks, {r['fps']:.0f} frames/s")
    for row in r["stalls"]:
        print(f"stall {row['stall_s']} s: {row['queued_frames']} frames queued, {row['blocks_at_peak']} blocks, RSS "
              f"{row['rss_mb_at_peak']} MB; drained: {row['blocks_after_drain']} blocks, RSS {row['rss_mb_after_drain']} MB")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
