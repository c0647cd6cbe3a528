"""``edge-assistant wake FILE...``: stream audio files through the wake-word engine and print detections."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "wake", help="stream audio files through the wake-word engine; print detections with timestamps",
        description="Stream each WAV/FLAC file (16 kHz, or 8/22.05/44.1/48 kHz resampled; stereo downmixed) through "
        "the wake-word engine in chunks, as a microphone would deliver it, and print every detection with its "
        "stream time. Unreadable files are reported and skipped (exit status 1 if any).")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV/FLAC files or folders (searched recursively)")
    p.add_argument("--model", action="append", metavar="NAME_OR_ONNX",
                   help="wake word: shipped head (alexa, hey_jarvis, hey_mycroft, hey_marvin, timer, weather) or a "
                        "head .onnx; repeatable, all share one backbone (default: alexa)")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: each model's manifest; its verified point when a verifier runs)")
    p.add_argument("--patience", type=int, default=None, metavar="N",
                   help="consecutive 80 ms steps needed (default: the head's, 1 for shipped heads)")
    p.add_argument("--refractory", type=float, default=2.0, metavar="S", help="silence after a detection (default: 2 s)")
    p.add_argument("--chunk-ms", type=float, default=80.0, help="chunk size fed to the engine (default: 80 ms)")
    p.add_argument("--int8", action="store_true", help="use the int8 embedding model (edge-assistant models quantize)")
    p.add_argument("--suppress-noise", action=argparse.BooleanOptionalAction, default=None,
                   help="run the C noise suppressor before the features (default: as the head asks; on for alexa_car)")
    p.add_argument("--features", choices=("c", "onnx"), default="c", help="mel features (default: c)")
    p.add_argument("--verifier", metavar="NAME|off", default=None,
                   help="second stage that confirms each detection before it counts: 'whisper' (Whisper tiny.en scores the wake phrase on the audio around it) or 'off' (default: each head's manifest; off for shipped heads)")
    p.add_argument("--json", metavar="FILE", help="write detections as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _make_recognizer():
    from edge_assistant.asr.recognizer import WhisperRecognizer

    return WhisperRecognizer()


def run(args) -> int:
    from edge_assistant.audio.io import iter_audio_files, read_audio
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import AudioFileError, ConfigError
    from edge_assistant.wakeword.engine import build_engine

    if args.chunk_ms <= 0:
        raise ConfigError(f"--chunk-ms: {args.chunk_ms}; expected > 0")
    engine = build_engine(args.model or ["alexa"], threshold=args.threshold, patience_frames=args.patience,
                          refractory_s=args.refractory, int8_embedding=args.int8,
                          noise_suppression=args.suppress_noise, features=args.features, verifier=args.verifier,
                          recognizer=_make_recognizer)  # built only when a head has a verifier
    chunk = max(1, int(round(args.chunk_ms * 16)))
    out = sys.stderr if args.json == "-" else sys.stdout
    results, failed = [], 0
    for path in iter_audio_files(args.files):
        try:
            pcm = read_audio(path, "int16")
        except AudioFileError as exc:
            print(f"edge-assistant: {exc}", file=sys.stderr)
            results.append({"file": str(path), "error": exc.reason})
            failed += 1
            continue
        engine.reset()
        events, rejected = [], []
        for i in range(0, len(pcm), chunk):
            res = engine.feed(pcm[i : i + chunk])
            events.extend(res.events)
            rejected.extend(res.rejected)
        res = engine.flush()
        events.extend(res.events)
        rejected.extend(res.rejected)
        more = f", {len(rejected)} rejected by the verifier" if rejected else ""
        print(f"{path}: {len(pcm) / 16000:.2f} s, {len(events)} detection(s){more}", file=out)
        for ev in events:
            check = "" if ev.verified is None else f"  verifier {ev.verifier_score:.2f} ({ev.verifier_ms:.0f} ms)"
            print(f"  {ev.time_s:8.2f} s  {ev.label:<16} score {ev.score:.3f}{check}", file=out)
        results.append({"file": str(path), "duration_s": round(len(pcm) / 16000, 3),
                        "detections": [e.to_dict() for e in events], "rejected": [e.to_dict() for e in rejected]})
    write_json({"models": [h.name for h in engine.heads], "verifiers": engine.verifiers, "files": results}, args.json)
    return 1 if failed else 0
