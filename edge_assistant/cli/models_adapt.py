"""``edge-assistant models adapt``: build a car-noise-adapted copy of a shipped wake-word head."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "adapt",
        help="adapt a shipped wake-word head to car-cabin noise (self-distillation on synthetic speech)",
        description="Teach a copy of a shipped head (e.g. alexa) what its wake phrase looks like in car-cabin noise "
        "behind the C noise suppressor: espeak-ng speech (the phrase, commands, confusable words, sentences) is "
        "scored by the shipped head in quiet, and the copy is fine-tuned to give those scores on the same speech "
        "with generated car noise at -2..30 dB SNR. Writes <head>_car.onnx and its manifest into the model cache, "
        "usable as --model alexa_car. Nothing is downloaded; the result is deterministic for a seed. Idempotent.",
    )
    p.add_argument("head", nargs="?", default="alexa", help="shipped head to adapt (default: %(default)s)")
    p.add_argument("--phrase", help="how the wake phrase is spoken (default: known for alexa, hey_jarvis, ...)")
    p.add_argument("--utterances", type=int, default=None, metavar="N", help="synthetic utterances (default: 3600)")
    p.add_argument("--students", type=int, default=None, metavar="N",
                   help="students averaged into the head (default: 3)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="seed of the utterance plan and noise (default: 0)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="processes (default: one per core)")
    p.add_argument("--cache", metavar="DIR", help="model cache directory (default: $EDGE_ASSISTANT_MODELS or the user cache)")
    p.add_argument("--force", action="store_true", help="rebuild even if an identical build exists")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def config_from_args(args):
    from edge_assistant.cli._build_tools import require_build_tools

    require_build_tools("models adapt")
    from edge_assistant.modelbuild.wakeword.adapt import AdaptConfig

    kw = {"head": args.head, "phrase": args.phrase, "seed": args.seed, "workers": args.workers}
    if args.utterances is not None:
        kw["utterances"] = args.utterances
    if args.students is not None:
        kw["students"] = args.students
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    return AdaptConfig(**kw)


def run(args) -> int:
    from edge_assistant.cli._common import write_json

    res = adapt_with_progress(config_from_args(args), args.cache, args.force)
    write_json(res.to_dict(), args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    if res.built:
        print(f"wrote {res.path} (loss on the training windows {res.stats['teacher_loss']:.3f} -> "
              f"{res.stats['student_loss']:.3f}); use it as --model {res.name} with noise suppression on", file=out)
    else:
        print(f"up to date: {res.path}", file=out)
    return 0


def adapt_with_progress(cfg, cache, force):
    """Run :func:`adapt_head` with progress on stderr, one line per finished stage (also ``models build``)."""
    import time

    from edge_assistant.cli._progress import Progress
    from edge_assistant.modelbuild.wakeword.adapt import ADAPTED_SUFFIX, adapt_head

    name = cfg.head + ADAPTED_SUFFIX
    stages: list[Progress] = []

    def progress(stage: str, done: int, total: int) -> None:
        if not stages or stages[-1].desc != f"{name} {stage}":
            if stages:
                stages[-1].finish("done")
            stages.append(Progress(f"{name} {stage}", total, unit="epoch" if stage == "training" else "utt"))
        stages[-1].update(done, total)

    t0 = time.monotonic()
    try:
        res = adapt_head(cfg, cache, force=force, progress=progress)
    except BaseException:
        if stages:
            stages[-1].close()
        raise
    if stages:
        stages[-1].finish("done")
    print(f"{name}: {'built' if res.built else 'up to date'} {res.path} in {time.monotonic() - t0:.1f} s",
          file=sys.stderr)
    return res
