"""``edge-assistant bench asr``: WER, latency and RTF of the on-device Whisper, optionally vs faster-whisper."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "asr", help="word error rate, latency and real-time factor (optionally vs faster-whisper)",
        description="Transcribe every clip listed in DIR/transcripts.tsv (columns file, text) and report WER "
                    "(normalised: lower case, numbers as words, punctuation stripped), per-clip and total latency "
                    "and real-time factor. With --vs faster-whisper the same clips go through faster-whisper "
                    "(CPU, int8, beam 1, same thread count, same model files) in the same run.")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder with transcripts.tsv (repeatable)")
    p.add_argument("--json", metavar="FILE", required=True, help="write the results as JSON ('-' for stdout)")
    p.add_argument("--vs", choices=("faster-whisper",), help="also run this peer on the same clips")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--int8", dest="int8", action="store_true", default=True, help="int8 weights (default)")
    prec.add_argument("--float", dest="int8", action="store_false", help="float32 weights")
    p.add_argument("--threads", type=int, default=1, help="threads for both engines (default: %(default)s)")
    p.add_argument("--margin", type=float, default=None, metavar="S", help="encoder context padding in seconds")
    p.add_argument("--full-window", action="store_true", help="encode padded 30 s windows (like faster-whisper)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from edge_assistant.asr.recognizer import RecognizerConfig
    from edge_assistant.bench.asr import run_asr_bench
    from edge_assistant.cli._common import write_json

    kw = {"int8": args.int8, "threads": args.threads, "full_window": args.full_window}
    if args.margin is not None:
        kw["audio_ctx_margin_s"] = args.margin
    result = run_asr_bench(
        args.data, RecognizerConfig(**kw), vs_faster_whisper=args.vs == "faster-whisper",
        progress=lambda clips: tqdm(clips, desc="asr", unit="clip", file=sys.stderr, disable=None))
    write_json(result, args.json)
    line = (f"clips {result['clips']}  WER {100 * result['wer']:.2f}%  p50 {result['latency_ms']['p50']:.0f} ms  "
            f"p50(<=5 s) {result['latency_short_ms']['p50']} ms  RTF {result['rtf']:.3f}")
    print(line, file=sys.stderr if args.json == "-" else sys.stdout)
    if "reference" in result:
        ref, cmp_ = result["reference"], result["comparison"]
        print(f"faster-whisper: WER {100 * ref['wer']:.2f}%  p50 {ref['latency_ms']['p50']:.0f} ms  "
              f"p50(<=5 s) {ref['latency_short_ms']['p50']} ms  RTF {ref['rtf']:.3f}  |  WER delta "
              f"{cmp_['wer_delta_points']:+.2f} points, p50(<=5 s) ratio {cmp_['p50_short_latency_ratio']}",
              file=sys.stderr if args.json == "-" else sys.stdout)
    return 0
