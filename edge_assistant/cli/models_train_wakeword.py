"""``edge-assistant models train-wakeword``: a wake-word head for a new phrase, from synthetic speech only."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-wakeword",
        help="train a wake-word head for a phrase from synthetic speech (espeak-ng, Flite, generated car noise)",
        description="Train a new wake-word head for PHRASE without any recording: espeak-ng and Flite speak the "
        "phrase (as "
        "its own segment, so its end is known to the sample), alone and in commands, and negatives derived from "
        "the phrase alone (sound-alikes and parts of it from the CMU Pronouncing Dictionary, common words, "
        "sentences), in quiet and in generated car-cabin noise; the C front end and the shared embedding give "
        "the windows; new MLP heads are trained and merged; threshold and patience are chosen on held-out "
        "synthetic speech, for the head alone and (a lower threshold) for the head proposing to a verifier "
        "(--verifier whisper). Writes DIR/<name>.onnx, its manifest <name>.json (use --model DIR/<name>.onnx) and a "
        "model card <name>.md. Deterministic for a seed; nothing is downloaded.",
    )
    p.add_argument("phrase", help="the wake phrase as spoken, in dictionary words (e.g. \"hey car\")")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the head, its manifest and model card")
    p.add_argument("--seed", type=int, default=0, help="seed of the plan, noise, bags and initialisation (default: 0)")
    p.add_argument("--quick", action="store_true", help="a tiny head in about a minute (tests, a first look)")
    p.add_argument("--utterances", type=int, default=None, metavar="N",
                   help="training utterances (default: 6000; --quick: 160)")
    p.add_argument("--variety", action="store_true",
                   help="add speaker (tempo, vocal-tract length), microphone and room variety to the speech")
    p.add_argument("--flite-share", type=float, default=None, metavar="F",
                   help="share of utterances in Flite's voices, 0 for espeak-ng only (default: 0.5)")
    p.add_argument("--l2-share", type=float, default=None, metavar="F",
                   help="share of the wake utterances in espeak-ng's voices that say the phrase as a second-language "
                        "speaker might (default: 0, the dictionary's pronunciation only)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="processes (default: one per core)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def config_from_args(args):
    import dataclasses

    from edge_assistant.cli._build_tools import require_build_tools

    require_build_tools("models train-wakeword")
    from edge_assistant.modelbuild.wakeword.train import TrainConfig

    if args.quick:
        cfg = TrainConfig.quick(args.phrase, seed=args.seed, workers=args.workers)
    else:
        cfg = TrainConfig(phrase=args.phrase, seed=args.seed, workers=args.workers)
    if args.utterances is not None:
        cfg = dataclasses.replace(cfg, utterances=args.utterances)
    if args.flite_share is not None:
        cfg = dataclasses.replace(cfg, flite_share=args.flite_share)
    if args.l2_share is not None:
        cfg = dataclasses.replace(cfg, l2_share=args.l2_share)
    return dataclasses.replace(cfg, variety=True) if args.variety else cfg


def run(args) -> int:
    import time

    from edge_assistant.cli._common import write_json
    from edge_assistant.cli._progress import Progress

    cfg = config_from_args(args)  # stops here, naming what is missing, when the build tools are not installed
    from edge_assistant.modelbuild.wakeword.train import train_wakeword

    current: list[Progress] = []

    def progress(stage: str, done: int, total: int) -> None:
        desc = f"{cfg.name} {stage}"
        if not current or current[-1].desc != desc:
            if current:
                current.pop().finish("done")
            current.append(Progress(desc, total, unit="epoch" if stage == "training" else "utt"))
        current[-1].update(done, total)

    t0 = time.monotonic()
    try:
        res = train_wakeword(cfg, args.out, progress=progress)
    finally:
        for bar in current:
            bar.close()
    if current:
        current[-1].finish("done")
    write_json(res.to_dict(), args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    held = res.stats["held_out"]
    print(f"wrote {res.path} in {time.monotonic() - t0:.0f} s: threshold {held['threshold']}, patience "
          f"{held['patience_frames']}; held-out synthetic speech in noise: {held['noisy']['wake_found']}/"
          f"{held['noisy']['wake_utterances']} found, {held['noisy']['false_accepts']}/"
          f"{held['noisy']['negative_utterances']} false accepts; with a verifier: threshold "
          f"{held['verified']['threshold']}, patience {held['verified']['patience_frames']}; card {res.card_path}",
          file=out)
    return 0
