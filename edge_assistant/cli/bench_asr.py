"""``edge-assistant bench asr``: WER, latency and RTF of the on-device Whisper, optionally vs faster-whisper."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "asr", help="word error rate, latency and real-time factor (optionally vs faster-whisper)",
        description="Transcribe every clip listed in DIR/transcripts.tsv (columns file, text) and report WER "
                    "(computed by jiwer: substitutions, deletions, insertions) under two normalisers, ours "
                    "(lower case, numbers as words, punctuation stripped) and Whisper's EnglishTextNormalizer, "
                    "per-clip and total latency and real-time factor. With --vs faster-whisper the same clips go "
                    "through faster-whisper in the same run with WhisperModel.transcribe's defaults (temperature "
                    "fallback included) at beam 1 and at beam 5 (its default), as two peer rows; CPU, int8, same "
                    "thread count, same model files. Ours decodes greedily.")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder with transcripts.tsv (repeatable)")
    p.add_argument("--json", metavar="FILE", required=True, help="write the results as JSON ('-' for stdout)")
    p.add_argument("--vs", choices=("faster-whisper",), help="also run this peer on the same clips")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--int8", dest="int8", action="store_true", default=True, help="int8 weights (default)")
    prec.add_argument("--float", dest="int8", action="store_false", help="float32 weights")
    p.add_argument("--threads", type=int, default=1, help="threads for both engines (default: %(default)s)")
    p.add_argument("--margin", type=float, default=None, metavar="S", help="encoder context padding in seconds")
    p.add_argument("--full-window", action="store_true", help="encode padded 30 s windows (like faster-whisper)")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="our beam size (default: %(default)s = greedy)")
    p.set_defaults(func=run)


def _wer(r: dict) -> str:
    return "  ".join(f"WER[{name}] {100 * w['wer']:.2f}% (S {w['substitutions']} D {w['deletions']} I {w['insertions']})"
                     for name, w in r["wer_by_normaliser"].items())


def run(args) -> int:
    from tqdm import tqdm

    from edge_assistant.asr.recognizer import RecognizerConfig
    from edge_assistant.bench.asr import run_asr_bench
    from edge_assistant.cli._common import write_json

    kw = {"int8": args.int8, "threads": args.threads, "full_window": args.full_window, "beam_size": args.beam}
    if args.margin is not None:
        kw["audio_ctx_margin_s"] = args.margin
    result = run_asr_bench(
        args.data, RecognizerConfig(**kw), vs_faster_whisper=args.vs == "faster-whisper",
        progress=lambda clips: tqdm(clips, desc="asr", unit="clip", file=sys.stderr, disable=None))
    write_json(result, args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"ours ({'greedy' if args.beam == 1 else f'beam {args.beam}'}): clips {result['clips']}  {_wer(result)}  p50 {result['latency_ms']['p50']:.0f} ms  "
          f"p50(<=5 s) {result['latency_short_ms']['p50']} ms  RTF {result['rtf']:.3f}", file=out)
    for label, ref in result.get("peers", {}).items():
        cmp_ = result["comparison"][label]
        deltas = ", ".join(f"{name} {d:+.2f}" for name, d in cmp_["wer_delta_points"].items())
        print(f"{label}: {_wer(ref)}  p50 {ref['latency_ms']['p50']:.0f} ms  p50(<=5 s) "
              f"{ref['latency_short_ms']['p50']} ms  RTF {ref['rtf']:.3f}  temperature fallback on "
              f"{ref['temperature_fallback_clips']} clips  |  ours - peer WER points: {deltas}; "
              f"p50(<=5 s) ratio {cmp_['p50_short_latency_ratio']}, RTF ratio {cmp_['rtf_ratio']}", file=out)
    return 0
