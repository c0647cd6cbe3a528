#!/usr/bin/env python3
"""Spread of the car-adapted wake head over training seeds and noise seeds, on the real clips.

Builds ``alexa_car`` once per training seed (``edge-assistant models adapt --seed S``, each into its own
cache under ``--work``), then scores every build in one pass per condition (the heads share the front end
and the embedding, see ``bench wake --compare``): quiet, and generated car noise at 5 dB SNR for each
noise seed. The shipped ``alexa`` head is scored in the same passes (behind the suppressor) and once in
quiet without it (the reference of the car-noise target). Prints a Markdown table and the median and
worst build per condition; ``--json`` keeps everything.

    python benchmarks/adapt_spread.py --seeds 0 1 2 3 4 --noise-seeds 0 1 2 --work /tmp/spread --json spread.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from edge_assistant.bench.wake import WakeBenchConfig, run_wake_bench
from edge_assistant.modelbuild.wakeword.adapt import AdaptConfig, adapt_head


def _renamed_head(manifest_json: Path, name: str, out_dir: Path) -> Path:
    """A copy of a built head under another name (the engine loads each name once)."""
    data = json.loads(manifest_json.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx = out_dir / f"{name}.onnx"
    onnx.write_bytes((manifest_json.parent / data["file"]).read_bytes())
    data.update(name=name, file=onnx.name)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds")
    ap.add_argument("--noise-seeds", type=int, nargs="+", default=[0, 1, 2], help="bench noise seeds")
    ap.add_argument("--snr", type=float, default=5.0)
    ap.add_argument("--work", type=Path, required=True, help="folder for the builds (reused when up to date)")
    ap.add_argument("--extra", nargs="*", default=[], metavar="NAME=MANIFEST",
                    help="more heads to score beside the builds (e.g. an older recipe's alexa_car.json)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    heads: dict[str, Path] = {}
    for seed in args.seeds:
        t0 = time.monotonic()
        res = adapt_head(AdaptConfig(seed=seed), cache_dir=args.work / f"seed{seed}")
        print(f"seed {seed}: {'built' if res.built else 'up to date'} in {time.monotonic() - t0:.0f} s",
              file=sys.stderr, flush=True)
        heads[f"alexa_car_s{seed}"] = _renamed_head(res.manifest_path, f"alexa_car_s{seed}", args.work / "heads")
    for item in args.extra:
        name, _, path = item.partition("=")
        heads[name] = _renamed_head(Path(path), name, args.work / "heads")

    w = args.data / "wakeword"
    pos = (str(w / "alexa"),)
    neg = tuple(str(w / d) for d in ("jarvis", "smart_mirror", "snowboy", "view_glass")) + (
        str(args.data / "speech" / "negatives"),)
    names = list(heads)
    conditions: dict[str, dict] = {}

    def bench(tag: str, **kw) -> None:
        t0 = time.monotonic()
        r = run_wake_bench(WakeBenchConfig(positives=pos, negatives=neg, progress=False, **kw))
        for run in r["runs"]:
            conditions.setdefault(tag, {})[run["model"]] = {
                k: run[k] for k in ("detected", "positives", "false_accepts", "negatives", "negative_hours",
                                    "threshold", "patience_frames", "noise_suppression", "false_accept_files",
                                    "missed")}
        print(f"{tag}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    bench("quiet", model="alexa", noise_suppression=False)
    bench("quiet", model=str(heads[names[0]]), compare=tuple(str(heads[n]) for n in names[1:]))
    for ns in args.noise_seeds:
        bench(f"car {args.snr:g} dB, noise seed {ns}", model="alexa", compare=tuple(str(heads[n]) for n in names),
              noise_suppression=True, noise="car", snr_db=(args.snr,), seed=ns)

    cols = list(conditions)
    print("| head | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for model in ["alexa", *names]:
        cells = []
        for c in cols:
            r = conditions[c].get(model)
            cells.append("" if r is None else f"{r['detected']}/{r['positives']}, {r['false_accepts']} FA")
        print(f"| {model} | " + " | ".join(cells) + " |")
    builds = [n for n in names if n.startswith("alexa_car_s")]
    summary = {}
    for c in cols:
        rows = [conditions[c][n] for n in builds]
        det = sorted(r["detected"] for r in rows)
        fa = sorted(r["false_accepts"] for r in rows)
        summary[c] = {"detected_median": statistics.median(det), "detected_worst": det[0],
                      "false_accepts_median": statistics.median(fa), "false_accepts_worst": fa[-1]}
        print(f"{c}: builds {len(rows)}: detected median {statistics.median(det)}, worst {det[0]}; "
              f"false accepts median {statistics.median(fa)}, worst {fa[-1]}")
    if args.json:
        args.json.write_text(json.dumps({"conditions": conditions, "summary": summary,
                                         "heads": {k: str(v) for k, v in heads.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
