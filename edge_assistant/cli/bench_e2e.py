"""``edge-assistant bench e2e``: end of speech to reply over the whole assistant, fast and in real time."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "e2e", help="end of speech to reply over the whole assistant: demo scene as fast as possible and in real time",
        description="Speak the demo commands (espeak-ng, after the wake word, in car-cabin noise) through the whole "
                    "assistant: 'fast' feeds the stream as fast as it goes, 'realtime' runs the device (edge-assistant "
                    "run) on the scene spoken into ALSA at 48 kHz in real time. Reports exchanges, correct intents "
                    "(intent and slots as the matcher reads the words spoken), time per stage and end of speech "
                    "(the last voiced sample) to reply, p50/p95. See edge_assistant/bench/e2e.py.")
    p.add_argument("--mode", choices=("fast", "realtime", "both"), default="both",
                   help="which run(s) (default: %(default)s)")
    p.add_argument("--command", action="append", metavar="TEXT",
                   help="a command to speak (repeatable; '…' marks a pause mid-sentence; default: the demo set)")
    p.add_argument("--voice", action="append", metavar="VOICE", help="eSpeak NG voice (repeatable; default: "
                   "en-gb and en-gb-x-rp)")
    p.add_argument("--snr", type=float, default=15.0, metavar="DB", help="speech to cabin noise (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.add_argument("--config", metavar="FILE", help="device configuration (TOML) to run the scene under, e.g. other "
                   "[endpoint] settings; the real-time run replaces its microphone, bus and files (default: the "
                   "built-in demo)")
    p.add_argument("--work-dir", metavar="DIR", help="keep the real-time run's files here")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from edge_assistant.bench.e2e import COMMANDS, VOICES, E2eConfig, run_e2e
    from edge_assistant.cli._common import write_json

    cfg = E2eConfig(commands=tuple(args.command or COMMANDS), voices=tuple(args.voice or VOICES), snr_db=args.snr,
                    seed=args.seed)
    modes = ("fast", "realtime") if args.mode == "both" else (args.mode,)

    def progress(ev: dict) -> None:
        print(f"  reply: {ev.get('heard')!r} -> {ev.get('intent')}", file=sys.stderr)

    device = None
    if args.config:
        from edge_assistant.core.config import load_config

        device = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="ea-bench-e2e-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        result = run_e2e(cfg, modes, work, progress, device)
    result["command"] = "edge-assistant " + " ".join(sys.argv[1:]) if sys.argv else "edge-assistant bench e2e"
    if args.json:
        write_json(result, args.json)
    if args.json != "-":
        for mode in modes:
            r = result[mode]
            e, s = r["end_of_speech_to_reply_ms"], r["end_of_speech_to_reply_ms_short"]
            print(f"{mode}: {r['correct_intents']}/{r['exchanges']} intents correct ({r['answered']} answered); "
                  f"end of speech -> reply p50 {e['p50']} ms, p95 {e['p95']} ms; commands <= 4 s: p50 {s['p50']} ms, "
                  f"p95 {s['p95']} ms (n={s['n']}); ends {r['end_reasons']}")
            print("  " + ", ".join(f"{k} p50 {v['p50']} / p95 {v['p95']} ms" for k, v in r["stage_ms"].items()))
            for w in r["wrong"]:
                print(f"  wrong: {w['command']!r} heard {w['heard']!r} -> {w['intent']} {w['slots']}")
            for u in r["unanswered"]:
                print(f"  unanswered: {u!r}")
            for c in r["cut_off"]:
                print(f"  cut off: {c['command']!r} answered {c['before_end_ms']:.0f} ms before its end as {c['heard']!r}")
            if "inline_on_device_audio" in r:
                il = r["inline_on_device_audio"]
                print(f"  the inline assistant on the samples the device captured: {il['correct_intents']}/"
                      f"{r['exchanges']} correct; {'the same' if il['same_answers'] else 'other'} answers")
                for d in il["differences"]:
                    print(f"    exchange {d['exchange'] + 1}: real time {d['realtime']}, inline {d['inline']}")
    return 0
