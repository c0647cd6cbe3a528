"""``edge-assistant soak``: hours of audio through the whole device, as fast as it goes, with faults injected."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "soak", help="an accelerated soak: hours of audio with CAN, GNSS and microphone faults; memory, answers",
        description="Run the assistant as the service does on a looped cabin scene (ALSA file PCM, 48 kHz), the "
                    "demo EV filling the virtual bus to --can-fps and a GNSS receiver on a pty, injecting on a "
                    "seeded schedule CAN error frames, a bus-off burst, GNSS garbage and an unplugged receiver, "
                    "and a silent microphone (plus one absent at start). Reports resident memory and descriptors "
                    "(growth and slope after warm-up), commands spoken vs answered, and every fault injected, "
                    "counted and recovered. See edge_assistant/bench/soak.py.")
    p.add_argument("--hours", type=float, default=1.0, help="hours of audio (default: %(default)s)")
    p.add_argument("--speed", default="max", metavar="max|X",
                   help="max: as fast as the pipeline takes the audio (default); X: X times real time")
    p.add_argument("--can-fps", type=float, default=8700.0,
                   help="frames/s on the vehicle bus, the demo car's included (default: %(default)s)")
    p.add_argument("--fault-every", type=float, default=600.0, metavar="S",
                   help="seconds of audio per fault cycle, every fault once per cycle (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="seed of the fault schedule (default: %(default)s)")
    p.add_argument("--sample-every", type=float, default=5.0, metavar="S",
                   help="wall seconds between memory samples (default: %(default)s)")
    p.add_argument("--work-dir", metavar="DIR",
                   help="keep the run's files here, among them samples.jsonl: memory, descriptors and counters "
                        "per sample, written as the run goes (a run cut short keeps its record); default: a "
                        "temporary folder")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _speed(text: str) -> float | None:
    from edge_assistant.core.errors import ConfigError

    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise ConfigError(f"--speed {text!r}: expected 'max' or a factor > 0")
    return speed


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from tqdm import tqdm

    from edge_assistant.bench.soak import SoakConfig, run_soak
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError

    speed = _speed(args.speed)
    if not args.hours > 0 or args.can_fps < 0 or not args.fault_every > 0 or not args.sample_every > 0:
        raise ConfigError("--hours, --fault-every and --sample-every must be > 0, --can-fps >= 0")
    seconds = args.hours * 3600.0
    cfg = SoakConfig(seconds=seconds, speed=speed, can_fps=args.can_fps, fault_every_s=args.fault_every,
                     seed=args.seed, sample_every_s=args.sample_every)
    with tempfile.TemporaryDirectory(prefix="ea-soak-") as tmp, \
            tqdm(total=round(seconds), desc="soak", unit="audio s", file=sys.stderr, disable=None) as bar:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)

        def progress(audio_s: float) -> None:
            bar.update(max(0, round(audio_s) - bar.n))

        result = run_soak(cfg, work, progress)
    result["command"] = "edge-assistant " + " ".join(sys.argv[1:]) if sys.argv else "edge-assistant soak"
    if args.json:
        write_json(result, args.json)
    if args.json != "-":
        _print(result)
    return 0


def _print(r: dict) -> None:
    m, f, c = r["memory"], r["faults"], r["faults"]["counted"]
    print(f"{r['audio_s']} s of audio in {r['wall_s']} s ({r['speed_x']}x), process CPU "
          f"{100 * r['process_cpu_share']:.0f} % of one core")
    print(f"commands: {r['commands_spoken']} spoken, {r['replies']} answered {r['intents']}; "
          f"{r['responder_errors']} responder error(s), {r['judge_errors']} failed pause judgement(s)")
    print(f"memory: RSS {m['rss_mb_after_warmup']} -> {m['rss_mb_end']} MB after warm-up (growth "
          f"{m['rss_growth_mb_after_warmup']} MB, slope {m['rss_slope_mb_per_h']} MB/h, max {m['rss_max_mb']} MB); "
          f"fds {m['fds_after_warmup']} -> {m['fds_end']}")
    for kind, k in f["by_kind"].items():
        print(f"fault {kind}: {k['injected']}/{k['scheduled']} injected, {k['recovered']} recovered "
              f"(slowest {k['recovery_s_max']} s)")
    print(f"counted: CAN error frames {c['can_error_frames']}, bus-off {c['can_bus_off']}, GNSS garbage lines "
          f"{c['gnss_garbage_lines']}, GNSS disconnects {c['gnss_disconnects']}, capture reconnects "
          f"{c['capture_reconnects']}, overruns {c['capture_overruns']}, xruns {c['capture_xruns']}")
    print(f"health: {f['failing_reports']} failing report(s) (outside microphone silences: "
          f"{len(f['failing_outside_mic_silence'])}); at the end {r['health_end']['status']} "
          f"{r['health_end']['problems']}")
