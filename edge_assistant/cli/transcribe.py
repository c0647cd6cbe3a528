"""``edge-assistant transcribe``: speech to text with the on-device Whisper (ONNX, int8 by default)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "transcribe", help="transcribe WAV/FLAC files with the on-device Whisper tiny.en",
        description="Transcribe audio files (WAV/FLAC, any supported rate, mono or multi-channel: read as 16 kHz "
                    "mono). Prints one line per file; --json adds timings (features, encoder, decoder ms; audio "
                    "seconds; real-time factor). Needs the model cache (`edge-assistant models build`).")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--int8", dest="int8", action="store_true", default=True, help="int8 weights (default)")
    prec.add_argument("--float", dest="int8", action="store_false", help="float32 weights")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default: %(default)s)")
    p.add_argument("--margin", type=float, default=None, metavar="S",
                   help="encoder context padding after the speech in seconds (default: the recogniser's)")
    p.add_argument("--full-window", action="store_true", help="encode a padded 30 s window (slower)")
    p.add_argument("--cache", metavar="DIR", help="model cache directory")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write results with timings as JSON to FILE (stdout when FILE is omitted or '-')")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
    from edge_assistant.audio.io import read_audio
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import EdgeAssistantError

    kw = {"int8": args.int8, "threads": args.threads, "full_window": args.full_window}
    if args.margin is not None:
        kw["audio_ctx_margin_s"] = args.margin
    recognizer = WhisperRecognizer(RecognizerConfig(**kw), cache_root=Path(args.cache) if args.cache else None)
    results, failed = [], 0
    to_stdout = args.json == "-"
    for path in tqdm(args.files, desc="transcribe", unit="file", file=sys.stderr, disable=None if len(args.files) > 1 else True):
        try:
            audio = read_audio(path)
            t = recognizer.transcribe(audio)
        except EdgeAssistantError as exc:
            failed += 1
            print(f"edge-assistant: error: {exc}", file=sys.stderr)
            results.append({"file": str(path), "error": str(exc)})
            continue
        if not to_stdout:
            print(t.text if len(args.files) == 1 else f"{path}\t{t.text}")
        results.append({
            "file": str(path), "text": t.text, "audio_s": round(t.audio_s, 3),
            "features_ms": round(t.features_ms, 2), "encoder_ms": round(t.encoder_ms, 2),
            "decoder_ms": round(t.decoder_ms, 2), "total_ms": round(t.total_ms, 2), "rtf": round(t.rtf, 4),
            "tokens": len(t.tokens), "encoder_frames": t.encoder_frames, "stop": t.stop_reason,
            "no_speech_prob": round(t.no_speech_prob, 4), "avg_logprob": round(t.avg_logprob, 4),
            "compression_ratio": round(t.compression_ratio, 3), "suspect": t.suspect,
        })
    write_json({"int8": args.int8, "threads": args.threads, "results": results}, args.json)
    return 1 if failed else 0
