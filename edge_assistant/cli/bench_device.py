"""``edge-assistant bench device``: the whole device under load (capture overruns, answers, memory)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "device", help="the running device under load: capture overruns, answers, memory over time",
        description="Run the assistant as the service does (edge_assistant.app) on a cabin scene spoken into an "
                    "ALSA file PCM at 48 kHz, with the demo EV and extra frames of its drive filling the virtual "
                    "bus to --can-fps; report capture overruns and xruns, commands spoken and answered, reply "
                    "latency, CAN frames decoded, and resident memory and open descriptors sampled over the run. "
                    "See edge_assistant/bench/device.py.")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds of audio to capture (default: %(default)s)")
    p.add_argument("--speed", default="1", metavar="X|max",
                   help="1: a real-time microphone (default); max: as fast as the pipeline takes it (a soak)")
    p.add_argument("--can-fps", type=float, default=8700.0,
                   help="frames/s on the vehicle bus, the demo car's included (default: %(default)s; 0: demo car only)")
    p.add_argument("--sample-every", type=float, default=5.0, metavar="S",
                   help="wall seconds between memory samples (default: %(default)s)")
    p.add_argument("--work-dir", metavar="DIR", help="keep the run's files here (default: a temporary folder)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from tqdm import tqdm

    from edge_assistant.bench.device import DeviceBenchConfig, run_device_bench
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError

    if args.speed == "max":
        speed = None
    else:
        try:
            speed = float(args.speed)
        except ValueError:
            speed = -1.0
        if not speed > 0:
            raise ConfigError(f"--speed {args.speed!r}: expected a factor > 0 or 'max'")
    if not args.seconds > 0 or args.can_fps < 0 or not args.sample_every > 0:
        raise ConfigError("--seconds and --sample-every must be > 0, --can-fps >= 0")
    cfg = DeviceBenchConfig(seconds=args.seconds, speed=speed, can_fps=args.can_fps, sample_every_s=args.sample_every)
    with tempfile.TemporaryDirectory(prefix="ea-bench-device-") as tmp, \
            tqdm(total=round(args.seconds), desc="bench device", unit="audio s", file=sys.stderr, disable=None) as bar:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)

        def progress(audio_s: float) -> None:
            bar.update(max(0, round(audio_s) - bar.n))

        result = run_device_bench(cfg, work, progress)
    result["command"] = "edge-assistant " + " ".join(sys.argv[1:]) if sys.argv else "edge-assistant bench device"
    if args.json:
        write_json(result, args.json)
    if args.json != "-":
        c, m, can = result["capture"], result["memory"], result["can"]
        print(f"{result['audio_s']} s of audio in {result['wall_s']} s ({result['speed_x']}x), process CPU "
              f"{100 * result['process_cpu_share']:.0f} % of one core")
        print(f"capture: {c['overruns']} overrun(s) ({c['overrun_samples']} samples dropped), {c['xruns']} xrun(s)")
        print(f"commands: {result['commands_spoken']} spoken, {result['wakes']} wake(s), {result['replies']} answered "
              f"{result['intents']}; reply latency p50 {result['reply_latency_ms']['p50']} ms, "
              f"p95 {result['reply_latency_ms']['p95']} ms")
        print(f"CAN: {can['fps_decoded']} frames/s decoded ({can['frames_decoded']} frames)")
        print(f"memory: RSS {m['rss_mb_after_warmup']} MB after warm-up -> {m['rss_mb_end']} MB at the end "
              f"(growth {m['rss_growth_mb_after_warmup']} MB, max {m['rss_max_mb']} MB); open fds "
              f"{m['fds_after_warmup']} -> {m['fds_end']}")
    return 0
