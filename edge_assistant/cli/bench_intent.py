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
    a = p.add_argument_group("spoken commands (recogniser + matcher)")
    a.add_argument("--make-audio", metavar="DIR",
                   help="synthesise a command set with several eSpeak NG voices into DIR (labels.json) and exit")
    a.add_argument("--intent", action="append", default=[], metavar="NAME",
                   help="with --make-audio: only this intent (repeatable; default: all)")
    a.add_argument("--wildcard-value", action="append", default=[], metavar="TEXT",
                   help="with --make-audio: free text for wildcard slots such as places (repeatable; default: "
                        "the sampler's six)")
    a.add_argument("--audio", metavar="DIR", help="folder of spoken command clips (with --labels)")
    a.add_argument("--labels", metavar="JSON", help='{"clip.wav": {"intent": NAME, "slots": {...}}}')
    a.add_argument("--noise", action="append", default=[], metavar="SPEC",
                   help="'car' (generator) or a folder/file of noise recordings (repeatable)")
    a.add_argument("--snr", type=float, nargs="+", default=[10.0, 5.0, 0.0], metavar="DB",
                   help="SNRs for each --noise (default: 10 5 0)")
    a.add_argument("--noise-only", type=int, default=30, metavar="N",
                   help="also run N windows of 3 s of each --noise alone (at -30 dBFS) and count the intents they "
                        "end as: commands nobody gave (default: %(default)s; 0: off)")
    a.add_argument("--beam", type=int, nargs="+", default=[1, 5], help="beam sizes to compare (default: 1 5)")
    a.add_argument("--grammar", nargs="+", default=["off", "constrain", "rescore"],
                   choices=("off", "constrain", "rescore", "places"),
                   help="grammar-aware recognition modes to compare ('places': constrain, and narrow a free-text "
                        "place to the gazetteer of known places when the audio fits one)")
    a.add_argument("--places", metavar="FILE",
                   help="gazetteer for --grammar places (default: places/places.txt in the model cache)")
    a.add_argument("--known-max-drop", type=float, metavar="NATS",
                   help="largest loss per token for narrowing a place to a known one (default: the device's)")
    a.add_argument("--grammar-beam", type=int, metavar="N",
                   help="beams of the grammar-constrained search (default: the device's, asr.grammar_beam_size)")
    p.set_defaults(func=run)


def _run_audio(args, matcher) -> int:
    from pathlib import Path

    from edge_assistant.asr.grammar_bias import GrammarBiasConfig
    from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
    from edge_assistant.audio.noise import load_noise
    from edge_assistant.bench.intent import (
        audio_summary,
        load_labels,
        run_audio_intent_bench,
        run_noise_only,
        synth_commands,
    )
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.config import AsrSettings
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.intents.places import default_places_path, load_places
    from edge_assistant.pipeline.grammar_link import recognition_grammar

    if args.make_audio:
        path = synth_commands(matcher, Path(args.make_audio), per_intent=args.per_intent, seed=args.seeds[0],
                              intents=args.intent, wildcard_values=args.wildcard_value)
        print(f"wrote {path}")
        return 0
    if not args.labels:
        raise ConfigError("--audio needs --labels LABELS.json")
    if args.noise_only < 0:
        raise ConfigError(f"--noise-only {args.noise_only}: expected a number of windows >= 0")
    labels = load_labels(Path(args.labels))
    recs = {f"beam {b}": WhisperRecognizer(RecognizerConfig(beam_size=b)) for b in args.beam}
    tok = next(iter(recs.values())).tokenizer
    gbeam = args.grammar_beam or AsrSettings().grammar_beam_size
    drop = {} if args.known_max_drop is None else {"known_max_drop": args.known_max_drop}
    biases = {}
    for m in args.grammar:
        if m == "off":
            biases[m] = None
            continue
        cfg = GrammarBiasConfig(mode="constrain" if m == "places" else m, beam_size=gbeam, **drop)
        known = {"place": load_places(args.places or default_places_path())} if m == "places" else None
        biases[m] = recognition_grammar(matcher, tok, cfg, known=known)
    conditions: list = [("clean", None, None)]
    sources = []
    for i, spec in enumerate(args.noise):
        src = load_noise(spec, seed=i)
        sources.append((Path(spec).name, src))
        conditions += [(f"{Path(spec).name} {snr:g} dB", src, snr) for snr in args.snr]
    res = run_audio_intent_bench(matcher, recs, Path(args.audio), labels, conditions, biases)
    if args.noise_only:
        res["noise_only"] = run_noise_only(matcher, recs, biases, sources, args.noise_only)
    if args.json:
        write_json(res, args.json)
    if args.json != "-":
        sys.stdout.write(audio_summary(res) + "\n")
    return 0


def run(args) -> int:
    from pathlib import Path

    from edge_assistant.bench.intent import negative_sentences, run_intent_bench, summary
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.intents import IntentMatcher, car_matcher

    if args.per_intent < 1:
        raise ConfigError(f"--per-intent must be at least 1, got {args.per_intent}")
    matcher = IntentMatcher.from_paths(args.sentences) if args.sentences else car_matcher()
    if args.audio or args.make_audio:
        return _run_audio(args, matcher)
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
