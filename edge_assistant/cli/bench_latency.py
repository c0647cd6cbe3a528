"""``edge-assistant bench latency``: per-chunk cost vs openWakeWord and detection latency, one thread."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "latency", help="per-80 ms-chunk cost of front end and wake pipeline vs openWakeWord; detection latency",
        description="In one run, on the same audio, one thread: C front end vs melspectrogram.onnx per 1280-sample "
        "chunk; our wake pipeline (float and int8 embedding) vs openwakeword's Model.predict per chunk; and the "
        "latency from the end of the keyword to the detection event on real clips.")
    p.add_argument("--clips", nargs="+", metavar="DIR",
                   help="positive clips (default: shared/data/wakeword/alexa beside the checkout)")
    p.add_argument("--model", default="alexa", help="head used by both pipelines (default: %(default)s)")
    p.add_argument("--max-clips", type=int, default=40, metavar="N", help="clips in the timed stream (default: 40)")
    p.add_argument("--latency-clips", type=int, default=None, metavar="N", help="clips for detection latency (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per system; best is kept (default: 3)")
    p.add_argument("--int8-model", metavar="FILE", help="int8 embedding model (default: the model cache; built if missing)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    from pathlib import Path

    from edge_assistant.bench.latency import default_clips_dir, run_latency_bench
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.wakeword.model_cache import default_int8_path

    clips = args.clips or ([str(default_clips_dir())] if default_clips_dir() else None)
    if not clips:
        raise ConfigError("--clips: no default clip folder found; name a folder of keyword clips")
    int8 = Path(args.int8_model) if args.int8_model else default_int8_path()
    if not int8.is_file():  # a development checkout builds it; the device image carries it
        from edge_assistant.cli._build_tools import require_build_tools

        require_build_tools(f"bench latency without {int8}")
        from edge_assistant.modelbuild.wakeword.quantize import default_calibration_dirs, quantize_embedding

        calib = default_calibration_dirs()
        if not calib:
            raise ConfigError(f"--int8-model: {int8} is missing; run `edge-assistant models quantize --calibration DIR`")
        logging.getLogger(__name__).warning("int8 model missing; building it into %s", int8)
        quantize_embedding(calib, out_path=int8)
    res = run_latency_bench(clips, max_clips=args.max_clips, latency_clips=args.latency_clips, rounds=args.rounds,
                            int8_model_path=int8, model=args.model)
    write_json(res, args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"front end: C {res['frontend_us_per_chunk']:.1f} us vs ONNX {res['reference_frontend_us_per_chunk']:.1f} us "
          f"per chunk ({res['frontend_speedup']:.1f}x)", file=out)
    print(f"pipeline: float {res['pipeline_us_per_chunk']:.0f} us ({res['pipeline_speedup']:.2f}x), int8 "
          f"{res['pipeline_int8_us_per_chunk']:.0f} us ({res['pipeline_int8_speedup']:.2f}x) vs openwakeword "
          f"Model.predict {res['reference_pipeline_us_per_chunk']:.0f} us per chunk", file=out)
    d = res["detection_latency_ms"]
    print(f"detection latency: p50 {d['p50']:.0f} ms, p95 {d['p95']:.0f} ms over {d['clips']} clips "
          f"({d['missed']} missed)", file=out)
    return 0
