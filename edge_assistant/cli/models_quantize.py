"""``edge-assistant models quantize``: write the int8 wake-word embedding model into the model cache."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "quantize",
        help="build the int8 wake-word embedding model (static, calibrated on speech)",
        description="Quantize the streaming speech-embedding backbone of the wake-word engine to int8 with "
        "onnxruntime (static: integer operators, int8 weights, uint8 activations calibrated on real speech) and "
        "write it to the model cache. Idempotent: an up-to-date model is reused unless --force.",
    )
    p.add_argument("--calibration", action="append", metavar="DIR_OR_FILE",
                   help="speech WAV/FLAC files or folders for calibration (repeatable; default: "
                        "$EDGE_ASSISTANT_SHARED_DATA/speech/asr or ../shared/data/speech/asr)")
    p.add_argument("--method", choices=("static", "dynamic"), default="static",
                   help="static (calibrated, fast) or dynamic (no calibration; slower than float on x86) "
                        "(default: %(default)s)")
    p.add_argument("--steps", type=int, default=None, metavar="N", help="calibration steps of 80 ms (default: 600)")
    p.add_argument("--out", metavar="FILE", help="output path (default: the model cache)")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date model exists")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from edge_assistant.cli._build_tools import require_build_tools
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError

    require_build_tools("models quantize")
    from edge_assistant.modelbuild.wakeword.quantize import (
        DEFAULT_CALIBRATION_STEPS,
        default_calibration_dirs,
        quantize_embedding,
    )

    calib = args.calibration or ([str(p) for p in default_calibration_dirs()] if args.method == "static" else [])
    if args.method == "static" and not calib:
        raise ConfigError("--calibration: no speech found; name a folder of WAV/FLAC speech")
    bar = tqdm(desc="calibration", unit="file", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        res = quantize_embedding(calib, method=args.method, out_path=args.out,
                                 calibration_steps=args.steps or DEFAULT_CALIBRATION_STEPS,
                                 force=args.force, progress=progress)
    finally:
        bar.close()
    write_json(res.to_dict(), args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    state = "wrote" if res.built else "up to date:"
    print(f"{state} {res.path} ({res.method}, {res.size_bytes / 1024:.0f} KiB, "
          f"{res.calibration_steps} calibration steps from {res.calibration_files} files)", file=out)
    return 0
