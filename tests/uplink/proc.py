"""Child process of the crash tests (run as a script; the parent kills it with SIGKILL at random points).

Modes:
  publish  queue health messages m<start>..m<start+count-1> through an Uplink, the first ``--backlog`` of
           them before it starts (a car that was offline); prints "queued <i>" after each publish() returns
           (the message is then on disk), then keeps draining until SIGTERM.
  drain    start an Uplink on the existing queue and drain it until SIGTERM.
Both print "drained" once the queue is empty (every message acknowledged).
  write    no broker: put messages straight into the MessageQueue, printing "queued <i> <row id>" after each put,
           and every 7th put remove the 3 oldest, printing "removing <id>,<id>,..." before remove() and
           "removed <id>,<id>,..." after it returns.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from edge_assistant.uplink import schema
from edge_assistant.uplink.client import Uplink, UplinkConfig
from edge_assistant.uplink.queue import MessageQueue


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("publish", "drain", "write"))
    ap.add_argument("--queue", type=Path, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--backlog", type=int, default=0)
    args = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    if args.mode == "write":
        q = MessageQueue(args.queue)
        for i in range(args.start, args.start + args.count):
            msg = schema.make_message("health", "car-0001", {"uptime_s": float(i)}, ts_s=1.0, msg_id=f"m{i:06d}")
            row = q.put(schema.topic_for("fleet", "car-0001", "health"), schema.encode(msg), "health")
            _say(f"queued {i} {row}")
            if i % 7 == 6:
                oldest = ",".join(str(m.id) for m in q.peek(0, 3))
                _say(f"removing {oldest}")
                q.remove(int(x) for x in oldest.split(","))
                _say(f"removed {oldest}")
        q.close()
        return 0

    cfg = UplinkConfig(enabled=True, host="127.0.0.1", port=args.port, vehicle_id="car-0001",
                       queue_path=args.queue, reconnect_min_s=0.05, reconnect_max_s=0.5, keepalive_s=10)
    up = Uplink(cfg)
    for i in range(args.start, args.start + args.count):
        if i == args.start + args.backlog:
            up.start()
        up.publish("health", {"uptime_s": float(i)}, msg_id=f"m{i:06d}")
        _say(f"queued {i}")
    up.start()  # no-op when already started
    _say("ready")
    if up.wait_drained(30):
        _say("drained")
    stop.wait()
    up.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
