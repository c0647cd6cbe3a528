"""``edge-assistant bench wake``: wake rate, false accepts and the FR/FA curve on real clips."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "wake", help="wake rate on positives, false accepts on negatives, FR/FA curve",
        description="Stream every clip (folders searched recursively, WAV/FLAC, padded with silence) through the "
        "wake-word engine and report the wake rate on positives, false accepts on negatives (count and per hour), "
        "an FR/FA curve over thresholds and every unreadable file with its error. With --noise the padded clips "
        "are mixed with noise (a folder/file of recordings, or 'car' for the car-cabin generator) at each --snr, "
        "deterministically (--seed).")
    p.add_argument("--model", default="alexa",
                   help="shipped head name (alexa, hey_jarvis, ...), a head built into the model cache (alexa_car: "
                        "`models adapt`; use it with --suppress-noise) or a head .onnx path")
    p.add_argument("--compare", nargs="+", default=[], metavar="HEAD",
                   help="more heads scored in the same pass (one front end and embedding), each at its own "
                        "manifest's operating point; e.g. alexa_car builds of several seeds given as .json paths")
    p.add_argument("--positives", nargs="+", required=True, metavar="DIR", help="clips that contain the wake word")
    p.add_argument("--negatives", nargs="*", default=[], metavar="DIR", help="clips that do not")
    p.add_argument("--noise", metavar="DIR_OR_FILE_OR_car", help="noise recordings, or 'car' (generator)")
    p.add_argument("--snr", nargs="+", type=float, default=[], metavar="DB", help="SNR(s) in dB for --noise (default 5)")
    p.add_argument("--threshold", nargs="+", type=float, default=[], metavar="T",
                   help="score threshold(s); the first is the operating point (default: the head's, its verified "
                        "point when a verifier runs; 0.5 for shipped heads)")
    p.add_argument("--patience", type=int, default=None, metavar="N",
                   help="consecutive 80 ms steps at/above the threshold (default: the head's, 1 for shipped heads)")
    p.add_argument("--int8", action="store_true", help="use the int8 embedding model (edge-assistant models quantize)")
    p.add_argument("--int8-model", metavar="FILE", help="explicit int8 embedding model")
    p.add_argument("--features", choices=("c", "onnx"), default="c", help="mel features: C front end or ONNX reference")
    p.add_argument("--suppress-noise", action=argparse.BooleanOptionalAction, default=None,
                   help="run the C noise suppressor before the features (default: the head's; on for alexa_car)")
    p.add_argument("--verifier", metavar="NAME|off", default=None,
                   help="second stage that confirms each detection before it counts: 'whisper' (Whisper tiny.en scores the wake phrase on the audio around it) or 'off' (default: each head's manifest; off for shipped heads)")
    p.add_argument("--chunk-ms", type=float, default=0.0, metavar="MS",
                   help="feed each clip in chunks of MS, as a microphone would (default 0: the whole clip at once); "
                        "the engine cost per step is then comparable with `bench latency`")
    p.add_argument("--pad", type=float, default=1.0, metavar="S", help="silence before/after each clip (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--plot", metavar="FILE", help="write the FR/FA curve as a PNG")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _per_h(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}/h"


def run(args) -> int:
    from edge_assistant.bench.wake import WakeBenchConfig, plot_curve, run_wake_bench
    from edge_assistant.cli._common import write_json

    cfg = WakeBenchConfig(
        model=args.model, positives=tuple(args.positives), negatives=tuple(args.negatives),
        thresholds=tuple(args.threshold), patience=args.patience, noise=args.noise, snr_db=tuple(args.snr), pad_s=args.pad,
        int8=args.int8 or bool(args.int8_model), int8_model_path=args.int8_model, features=args.features,
        noise_suppression=args.suppress_noise, seed=args.seed, progress=True, compare=tuple(args.compare),
        verifier=args.verifier, chunk_ms=args.chunk_ms)
    result = run_wake_bench(cfg)
    write_json(result, args.json)
    if args.plot:
        plot_curve(result, args.plot)
    out = sys.stderr if args.json == "-" else sys.stdout
    for r in result["runs"]:
        cond = "quiet" if r["snr_db"] is None else f"{r['noise']} @ {r['snr_db']:g} dB" + (
            " +NS" if r["noise_suppression"] else "")
        rate = "n/a" if r["wake_rate"] is None else f"{100 * r['wake_rate']:.2f}%"
        fah = "n/a" if r["fa_per_hour"] is None else f"{r['fa_per_hour']:.2f}/h"
        print(f"{r['model']}: {r['label']} [{cond}] T={r['threshold']:g} patience {r['patience_frames']}: wake {r['detected']}/{r['positives']} = {rate}; "
              f"false accepts {r['false_accepts']}/{r['negatives']} ({fah} over {r['negative_hours']:.3f} h); "
              f"{r['false_accept_events']} false-accept event(s) ({_per_h(r['fa_events_per_hour'])})", file=out)
        v = r["verifier"]
        if v is not None:
            print(f"  + verifier {v['verifier']} ({v['phrase']!r}, min log-prob {v['min_logprob']:g}, look-ahead "
                  f"{v['lookahead_s']:g} s): wake {v['detected']}/{r['positives']}; false accepts "
                  f"{v['false_accepts']}/{r['negatives']}, {v['false_accept_events']} event(s) "
                  f"({_per_h(v['fa_events_per_hour'])}); "
                  f"{v['proposals']['positives'] + v['proposals']['negatives']} proposals verified", file=out)
        for name, s in r["negative_sets"].items():
            after = "" if v is None else f" -> {v['negative_sets'][name]['false_accept_events']} with the verifier"
            print(f"    {name}: {s['clips']} clips, {s['hours']:.3f} h: {s['false_accept_events']} event(s){after}",
                  file=out)
    for t in result["timing"]:
        c = t["negatives"]
        if c["us_per_step"] is not None:
            print(f"engine on negatives: {c['us_per_step']:.0f} us per 80 ms step "
                  f"({c['us_per_step_without_verifier']:.0f} us without the verifier's share)", file=out)
        for name, ms in t["verifier_ms"].items():
            if ms["n"]:
                print(f"verifier {name}: {ms['n']} proposals, p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms",
                      file=out)
    if result["unreadable"]:
        print(f"{len(result['unreadable'])} unreadable file(s):", file=out)
        for u in result["unreadable"]:
            print(f"  {u['path']}: {u['error']}", file=out)
    return 0
