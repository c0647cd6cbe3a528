"""``edge-assistant bench can``: CAN decode throughput vs python-can+cantools, replay timing, full-load loss/CPU."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "can", help="vehicle-path throughput vs a bare python-can + cantools loop; replay timing; full load",
        description="Measure bus receive -> DBC decode -> VSS state update in frames/s on one core for the real "
                    "logs (../shared/data/can) and the demo log, against a bare python-can recv() + cantools "
                    "decode_message loop in the same run, both decoding the same signals (every DBC signal for "
                    "the real logs; for the demo log the VSS-mapped ones, the product's path, and again every "
                    "signal); replay timing error; frame loss and CPU share at a full 1 Mbit/s load on the "
                    "virtual bus. See edge_assistant/bench/can.py.")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--can-data", metavar="DIR", default=None,
                   help="folder of the real CAN logs (default: $EDGE_ASSISTANT_SHARED_DATA/can or ../shared/data/can)")
    p.add_argument("--repeats", type=int, default=5, help="alternating runs of ours/peer; best kept (default: 5)")
    p.add_argument("--full-load-s", type=float, default=5.0, help="seconds at full load (default: 5)")
    p.add_argument("--full-load-fps", type=float, default=8700.0, help="frames/s at full load (default: 8700)")
    p.add_argument("--replay-s", type=float, default=8.0, help="seconds of demo log replayed at 1x (default: 8)")
    p.set_defaults(func=run)


def _default_can_data():
    import os
    from pathlib import Path

    import edge_assistant

    env = os.environ.get("EDGE_ASSISTANT_SHARED_DATA")
    base = Path(env) if env else Path(edge_assistant.__file__).resolve().parent.parent.parent / "shared" / "data"
    path = base / "can"
    return path if path.is_dir() else None


def run(args) -> int:
    import logging
    from pathlib import Path

    from tqdm import tqdm

    from edge_assistant.bench.can import CanBenchConfig, run_can_bench
    from edge_assistant.cli._common import write_json

    can_data = Path(args.can_data) if args.can_data else _default_can_data()
    if can_data is None:
        logging.getLogger(__name__).warning("real CAN logs not found: measuring the demo log only")
    cfg = CanBenchConfig(repeats=args.repeats, replay_s=args.replay_s, full_load_fps=args.full_load_fps,
                         full_load_s=args.full_load_s)
    steps = 2 + (5 if can_data else 2)  # one per log, replay timing, full load
    with tqdm(total=steps, desc="bench can", file=sys.stderr, disable=None) as bar:
        result = run_can_bench(can_data, cfg, progress=lambda _s: bar.update())
    result["command"] = "edge-assistant " + " ".join(sys.argv[1:]) if sys.argv else "edge-assistant bench can"
    if args.json:
        write_json(result, args.json)
    if args.json != "-":
        for r in result["logs"]:
            sig = r["signals"]
            print(f"{r['log']:>16}: ours {r['decode_frames_per_s']:>8} frames/s, peer {r['reference_frames_per_s']:>8} "
                  f"frames/s, ratio {r['ratio']}  (signals decoded: ours {sig['ours']}, peer {sig['peer']}, "
                  f"{sig['decoded_set']} of {sig['in_dbc']} in the DBC)")
        t = result["replay_timing_error_ms"]
        print(f"replay timing error p50 {t['p50']} ms, p99 {t['p99']} ms; full load: sent {result['frames_sent']}, "
              f"decoded {result['frames_decoded']}, lost {result['frames_lost']}, reader CPU "
              f"{100 * result['cpu_share_at_full_load']:.1f} % of one core")
    return 0
