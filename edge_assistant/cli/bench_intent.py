"""``edge-assistant bench intent``: the intent matcher on clean and noisy grammar sentences and on real
sentences that are no request (false accepts), with the time per match."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "intent", help="intent accuracy on clean and ASR-noisy sentences, false accepts, time per match",
        description="Sample sentences from the grammar (seeded), match each as written and with ASR-style noise "
                    "(numbers as words, a filler, two letters swapped, punctuation), and count right intents, "
                    "right slots, requests not guessed and wrong guesses; match every sentence of the "
                    "transcripts.tsv files under --negatives and count false accepts.")
    p.add_argument("--sentences", action="append", metavar="PATH",
                   help="sentence file or folder (repeatable; default: the shipped car domain)")
    p.add_argument("--per-intent", type=int, default=20, metavar="N", help="sentences per intent and seed (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampling seeds (default: 0 1 2)")
    p.add_argument("--negatives", metavar="DIR",
                   help="folder whose */transcripts.tsv hold real sentences that are no request (e.g. shared/data/speech/asr)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from edge_assistant.bench.intent import negative_sentences, run_intent_bench, summary
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.intents import IntentMatcher, car_matcher

    if args.per_intent < 1:
        raise ConfigError(f"--per-intent must be at least 1, got {args.per_intent}")
    matcher = IntentMatcher.from_paths(args.sentences) if args.sentences else car_matcher()
    negatives: list[str] = []
    if args.negatives:
        folder = Path(args.negatives)
        negatives = negative_sentences(folder)
        if not negatives:
            raise ConfigError(f"--negatives {folder}: no */transcripts.tsv with a 'text' column found")
    res = run_intent_bench(matcher, args.per_intent, args.seeds, negatives)
    if args.json:
        write_json(res, args.json)
    if args.json != "-":
        sys.stdout.write(summary(res) + "\n")
    return 0
