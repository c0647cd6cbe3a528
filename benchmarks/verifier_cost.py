"""Engine cost per 80 ms chunk with and without the wake-word verifier, interleaved on the same clips.

On a shared machine two separate ``bench wake`` runs see different loads; here the two engines take
turns on the same clips (every ``--every``-th file of the folders), fed in 80 ms chunks with 1 s of
silence around each clip as ``bench wake`` does, for ``--rounds`` rounds; the best round of each is kept,
in wall time and in CPU time of the process.

    .venv/bin/python benchmarks/verifier_cost.py DIR... --every 4 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--model", default="alexa")
    ap.add_argument("--every", type=int, default=4, help="take every N-th file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from edge_assistant.asr.recognizer import WhisperRecognizer
    from edge_assistant.audio.io import iter_audio_files, read_audio
    from edge_assistant.core.errors import AudioFileError
    from edge_assistant.wakeword.engine import build_engine

    clips = []
    for i, p in enumerate(iter_audio_files(args.folders)):
        if i % args.every == 0:
            try:
                clips.append(read_audio(p, "int16"))
            except AudioFileError:
                continue
    pad = np.zeros(16000, np.int16)
    stream = [np.concatenate((pad, c, pad)) for c in clips]
    engines = {"off": build_engine(args.model, verifier="off"),
               "whisper": build_engine(args.model, verifier="whisper", recognizer=WhisperRecognizer())}
    best: dict[str, dict[str, float]] = {k: {"wall_us": float("inf"), "cpu_us": float("inf")} for k in engines}
    steps = sum(len(x) // 1280 for x in stream)
    proposals = {k: 0 for k in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            n_prop = 0
            w0, c0 = time.perf_counter(), time.process_time()
            for x in stream:
                engine.reset()
                for i in range(0, len(x), 1280):
                    r = engine.feed(x[i : i + 1280])
                    n_prop += len(r.events) + len(r.rejected)
                r = engine.flush()
                n_prop += len(r.events) + len(r.rejected)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[name]["wall_us"] = min(best[name]["wall_us"], wall / steps * 1e6)
            best[name]["cpu_us"] = min(best[name]["cpu_us"], cpu / steps * 1e6)
            proposals[name] = n_prop
    result = {"clips": len(stream), "steps": steps, "rounds": args.rounds, "best": best, "proposals": proposals,
              "ratio_wall": best["whisper"]["wall_us"] / best["off"]["wall_us"],
              "ratio_cpu": best["whisper"]["cpu_us"] / best["off"]["cpu_us"]}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
