"""Intent benchmark: the matcher on its grammar's sentences, clean and with ASR-style noise, and on real
sentences that ask for nothing the grammar knows (false accepts).

Sentences come from a seeded walk over the grammar (:func:`edge_assistant.intents.sample.sample_grammar`);
the noise is what a recogniser does to them: numbers as words, a filler word, two letters swapped in one
word, capitals and punctuation. Nothing here is tuned on the negatives: they are only counted.
"""

from __future__ import annotations

import csv
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_assistant.core.errors import ConfigError
from edge_assistant.intents import Intent, IntentMatcher
from edge_assistant.intents.matcher import UNKNOWN
from edge_assistant.intents.sample import Sample, sample_grammar


@dataclass(frozen=True)
class NoiseConfig:
    """Probability of each kind of noise per sentence."""

    number_words_p: float = 0.7   #: digits said as words ("21" -> "twenty-one")
    filler_p: float = 0.3         #: an "uh"/"um" somewhere
    typo_p: float = 0.3           #: two neighbouring letters swapped in one word of 5+ letters
    punctuation_p: float = 0.5    #: capital first letter and a final "?" or "."


_FILLERS = ("uh", "um", "er")


def add_noise(text: str, rng: random.Random, cfg: NoiseConfig = NoiseConfig()) -> str:
    """``text`` as a recogniser might write it (seeded by ``rng``)."""
    from unicode_rbnf import RbnfEngine

    words = text.split()
    if rng.random() < cfg.number_words_p:
        engine = RbnfEngine.for_language("en")
        words = [engine.format_number(int(w)).text if w.isdigit() else w for w in words]
    if rng.random() < cfg.typo_p:
        long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if long_words:
            i = rng.choice(long_words)
            w = words[i]
            j = rng.randrange(1, len(w) - 2)  # keep the first letter, swap two inner neighbours
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    if rng.random() < cfg.filler_p:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_FILLERS))
    out = " ".join(words)
    if rng.random() < cfg.punctuation_p and out:
        out = out[0].upper() + out[1:] + rng.choice(("?", "."))
    return out


def negative_sentences(speech_asr: Path) -> list[str]:
    """The reference sentences of ``speech/asr/*/transcripts.tsv`` (real speech; no car requests)."""
    texts: list[str] = []
    for tsv in sorted(speech_asr.glob("*/transcripts.tsv")):
        with tsv.open(encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f, delimiter="\t") if row.get("text")]
    return texts


def _ok(sample: Sample, got: Intent) -> tuple[bool, bool]:
    """(intent right, intent and slots right)."""
    return got.name == sample.intent, got.name == sample.intent and got.slots == sample.slots


def run_intent_bench(matcher: IntentMatcher, per_intent: int = 20, seeds: Sequence[int] = (0, 1, 2),
                     negatives: Iterable[str] = (), noise: NoiseConfig = NoiseConfig()) -> dict:
    """Accuracy on clean and noisy grammar sentences, false accepts on ``negatives``, time per match."""
    times_ms: list[float] = []

    def timed(text: str) -> Intent:
        t0 = time.perf_counter()
        got = matcher.match(text)
        times_ms.append((time.perf_counter() - t0) * 1e3)
        return got

    counts = {k: 0 for k in ("n", "clean_intent", "clean_slots", "noisy_intent", "noisy_slots", "noisy_rejected",
                             "noisy_wrong")}
    conf_clean: list[float] = []
    conf_noisy: list[float] = []
    wrong: list[dict] = []
    for seed in seeds:
        rng = random.Random(seed + 10_000)  # the noise's own stream, apart from the sampler's
        for s in sample_grammar(matcher.grammar, per_intent, seed):
            counts["n"] += 1
            clean = timed(s.text)
            a, b = _ok(s, clean)
            counts["clean_intent"] += a
            counts["clean_slots"] += b
            conf_clean.append(clean.confidence)
            text = add_noise(s.text, rng, noise)
            got = timed(text)
            a, b = _ok(s, got)
            counts["noisy_intent"] += a
            counts["noisy_slots"] += b
            if got.name == "unknown":
                counts["noisy_rejected"] += 1
            else:
                conf_noisy.append(got.confidence)
                if not a:
                    counts["noisy_wrong"] += 1
                    wrong.append({"text": text, "expected": s.intent, "got": got.name})
    neg = list(negatives)
    false_accepts = [{"text": t, "intent": g.name, "confidence": g.confidence}
                     for t in neg if (g := timed(t)).name != "unknown"]
    n = max(counts["n"], 1)
    times_ms.sort()
    return {
        "intents": len(matcher.names) - 1, "sentences": counts["n"], "per_intent": per_intent, "seeds": list(seeds),
        "clean": {"intent_accuracy": counts["clean_intent"] / n, "slot_accuracy": counts["clean_slots"] / n,
                  "mean_confidence": statistics.fmean(conf_clean) if conf_clean else None},
        "noisy": {"intent_accuracy": counts["noisy_intent"] / n, "slot_accuracy": counts["noisy_slots"] / n,
                  "rejected": counts["noisy_rejected"] / n, "wrong_intent": counts["noisy_wrong"] / n,
                  "mean_confidence_accepted": statistics.fmean(conf_noisy) if conf_noisy else None,
                  "wrong_examples": wrong[:10]},
        "negatives": {"sentences": len(neg), "false_accepts": false_accepts},
        "match_ms": {"median": statistics.median(times_ms) if times_ms else None,
                     "p95": times_ms[int(0.95 * (len(times_ms) - 1))] if times_ms else None,
                     "max": times_ms[-1] if times_ms else None, "matches": len(times_ms)},
    }


def summary(res: dict) -> str:
    """A few lines for a person."""
    c, z, neg, ms = res["clean"], res["noisy"], res["negatives"], res["match_ms"]
    return "\n".join([
        f"{res['sentences']} grammar sentences ({res['intents']} intents x {res['per_intent']} x seeds {res['seeds']})",
        f"clean: intent {c['intent_accuracy']:.1%}, intent+slots {c['slot_accuracy']:.1%}",
        f"noisy: intent {z['intent_accuracy']:.1%}, intent+slots {z['slot_accuracy']:.1%}, not guessed "
        f"{z['rejected']:.1%}, wrong intent {z['wrong_intent']:.1%}",
        f"negatives: {len(neg['false_accepts'])} false accepts in {neg['sentences']} sentences",
        f"match time: median {ms['median']:.2f} ms, p95 {ms['p95']:.2f} ms, max {ms['max']:.2f} ms "
        f"({ms['matches']} matches)",
    ])



# --- spoken commands: recogniser + matcher ----------------------------------------------------------
#: eSpeak NG voices for the synthetic command set (several accents and a female variant).
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en-gb-x-rp+m3")


def synth_commands(matcher: IntentMatcher, out_dir: Path, per_intent: int = 3, seed: int = 0,
                   voices: Sequence[str] = VOICES, intents: Sequence[str] = (),
                   wildcard_values: Sequence[str] = ()) -> Path:
    """Speak ``per_intent`` sampled sentences per intent with each voice into ``out_dir``; writes
    ``labels.json`` (``{"clip.wav": {"intent", "slots", "text", "voice"}}``) and returns its path.
    ``intents``: only these (default: all); ``wildcard_values``: free text for wildcard slots (default: the
    sampler's)."""
    import json

    import soundfile as sf

    from edge_assistant.audio.speech_synth import synthesize

    out_dir.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    rng = random.Random(seed)
    known = set(matcher.grammar.intents.intents)
    unknown = [name for name in intents if name not in known]
    if unknown:
        raise ConfigError(f"--intent {', '.join(unknown)}: no such intent; expected one of {', '.join(sorted(known))}")
    extra = {"wildcard_values": tuple(wildcard_values)} if wildcard_values else {}
    samples = [s for s in sample_grammar(matcher.grammar, per_intent, seed, **extra)
               if not intents or s.intent in intents]
    for i, s in enumerate(samples):
        voice = voices[i % len(voices)]
        audio = synthesize(s.text, voice=voice, words_per_minute=rng.randrange(140, 180))
        name = f"cmd_{i:04d}.wav"
        sf.write(out_dir / name, audio, 16000, subtype="PCM_16")
        labels[name] = {"intent": s.intent, "slots": s.slots, "text": s.text, "voice": voice}
    path = out_dir / "labels.json"
    path.write_text(json.dumps(labels, indent=1, sort_keys=True), encoding="utf-8")
    return path


def load_labels(path: Path) -> dict[str, dict]:
    """``{"clip.wav": {"intent": NAME, "slots": {...}}}`` checked; :class:`DataFormatError` naming the key."""
    import json

    from edge_assistant.core.errors import DataFormatError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(str(path), f"cannot read labels ({exc}); expected a JSON object") from None
    if not isinstance(data, dict) or not data:
        raise DataFormatError(str(path), 'expected a non-empty object {"clip.wav": {"intent": ..., "slots": {...}}}')
    for name, lab in data.items():
        if not isinstance(lab, dict) or not isinstance(lab.get("intent"), str) \
                or not isinstance(lab.get("slots", {}), dict):
            raise DataFormatError(f"{path}: key {name!r}", 'expected {"intent": NAME, "slots": {...}}')
    return data


def _same_slots(got: dict, want: dict) -> bool:
    if got.keys() != want.keys():
        return False
    for k, v in want.items():
        g = got[k]
        if isinstance(v, (int, float)) and isinstance(g, (int, float)):
            if abs(float(g) - float(v)) > 1e-6:
                return False
        elif str(g).strip().lower() != str(v).strip().lower():
            return False
    return True


def _accepted(got: Intent, lab: dict) -> bool:
    """The label's intent and every one of its slot values (compared trimmed and lower-cased)."""
    return got.name == lab["intent"] and _same_slots(got.slots, lab.get("slots", {}))


def headline(recognizers: Sequence[str], biases: Sequence[str]) -> tuple[str, str]:
    """The (recogniser, grammar mode) whose figures stand at the top of the JSON: the first recogniser, and the
    device's mode if it ran (``places``, then ``constrain``), else the first mode."""
    mode = next((m for m in ("places", "constrain") if m in biases), biases[0])
    return recognizers[0], mode


def run_audio_intent_bench(matcher: IntentMatcher, recognizers: dict[str, Any], audio_dir: Path,
                           labels: dict[str, dict], conditions: Sequence[tuple[str, Any, float | None]],
                           biases: dict[str, Any]) -> dict:
    """Command acceptance (intent and every slot right) per recogniser x grammar bias x condition.

    ``recognizers``: label -> WhisperRecognizer; ``biases``: label -> GrammarBias or None (free text);
    ``conditions``: (label, NoiseSource or None, snr_db or None); the first is the clean audio.

    At the top: ``commands``; ``accepted`` and ``acceptance`` on the clean audio and ``by_snr`` (per noise
    condition: ``noise``, ``snr_db``, ``accepted``, ``acceptance``) for the :func:`headline` recogniser and mode;
    ``reference_text``: the matcher alone on the labels' spoken text, where they give one (what recognition
    loses is the difference); ``rows``: every recogniser x mode x condition.
    """
    import numpy as np

    from edge_assistant.audio.io import read_audio

    clips = [(name, lab, read_audio(audio_dir / name)) for name, lab in sorted(labels.items())]
    rows: dict[str, dict] = {}
    for cond, noise, snr in conditions:
        mixed = [(name, lab, audio if noise is None else noise.mix(audio, snr, key=name).astype(np.float32))
                 for name, lab, audio in clips]
        for rlabel, rec in recognizers.items():
            for blabel, bias in biases.items():
                ok = intent_ok = 0
                ms: list[float] = []
                modes: dict[str, int] = {}
                misses: list[dict] = []
                for name, lab, audio in mixed:
                    t0 = time.perf_counter()
                    tr = rec.transcribe(audio, grammar=bias)
                    ms.append((time.perf_counter() - t0) * 1e3)
                    got = matcher.match(tr.text)
                    mode = tr.extra.get("grammar", "off")
                    modes[mode] = modes.get(mode, 0) + 1
                    a = got.name == lab["intent"]
                    b = _accepted(got, lab)
                    intent_ok += a
                    ok += b
                    if not b and len(misses) < 8:
                        misses.append({"clip": name, "said": lab.get("text"), "heard": tr.text, "got": got.name})
                ms.sort()
                n = max(len(mixed), 1)
                rows[f"{cond} | {rlabel} | {blabel}"] = {
                    "condition": cond, "noise": None if noise is None else noise.name, "snr_db": snr,
                    "recognizer": rlabel, "grammar": blabel, "commands": len(mixed),
                    "accepted": ok, "acceptance": ok / n, "intent_right": intent_ok / n,
                    "latency_ms": {"median": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))],
                                   "mean": statistics.fmean(ms)},
                    "grammar_modes": modes, "misses": misses}
    rlabel, blabel = headline(list(recognizers), list(biases))
    top = [rows[f"{cond} | {rlabel} | {blabel}"] for cond, _, _ in conditions]
    out: dict[str, Any] = {"commands": len(clips), "headline": {"recognizer": rlabel, "grammar": blabel},
                           "accepted": top[0]["accepted"], "acceptance": top[0]["acceptance"],
                           "by_snr": [{k: r[k] for k in ("condition", "noise", "snr_db", "accepted", "acceptance")}
                                      for r in top[1:]]}
    said = [(lab["text"], lab) for _, lab, _ in clips if isinstance(lab.get("text"), str)]
    if said:
        ok = sum(_accepted(matcher.match(text), lab) for text, lab in said)
        out["reference_text"] = {"commands": len(said), "accepted": ok, "acceptance": ok / len(said)}
    return out | {"rows": rows}


def run_noise_only(matcher: IntentMatcher, recognizers: dict[str, Any], biases: dict[str, Any],
                   sources: Sequence[tuple[str, Any]], windows: int, seconds: float = 3.0,
                   level_dbfs: float = -30.0) -> list[dict]:
    """Noise and nothing else: how many windows (``seconds`` each, RMS ``level_dbfs``) of each source end as an
    intent, per recogniser x grammar bias. The grammar's search turns almost any sound into its nearest sentence
    ("It's too cold."), so this counts what reaches the matcher: a command nobody gave. Also counted: windows
    that Whisper's no-speech gate dropped, and of those, how many a grammar sentence was found for (what the
    gate held back)."""
    import numpy as np

    from edge_assistant.audio.noise import SAMPLE_RATE_HZ

    n = int(round(seconds * SAMPLE_RATE_HZ))
    rows: list[dict] = []
    for label, source in sources:
        clips = []
        for i in range(windows):
            x = source.segment(n, key=f"noise-only {i}").astype(np.float64)
            x *= 10 ** (level_dbfs / 20) / max(1e-12, float(np.sqrt(np.mean(x * x))))
            clips.append(x.astype(np.float32))
        for rlabel, rec in recognizers.items():
            for blabel, bias in biases.items():
                intents: dict[str, int] = {}
                gated = gated_sentence = 0
                for audio in clips:
                    tr = rec.transcribe(audio, grammar=bias)
                    got = matcher.match(tr.text) if tr.text.strip() else None
                    if got is not None and got.name != UNKNOWN:
                        intents[got.name] = intents.get(got.name, 0) + 1
                    if "no_speech" in tr.stop_reason:
                        gated += 1
                        gated_sentence += "grammar_text" in tr.extra
                rows.append({"noise": label, "recognizer": rlabel, "grammar": blabel, "windows": windows,
                             "seconds": seconds, "level_dbfs": level_dbfs, "intents": sum(intents.values()),
                             "by_intent": intents, "no_speech_gated": gated,
                             "gated_with_grammar_sentence": gated_sentence})
    return rows


def audio_summary(res: dict) -> str:
    lines = [f"{res['commands']} spoken commands; accepted = intent and every slot right"]
    if "reference_text" in res:
        ref = res["reference_text"]
        lines.append(f"{'the spoken text (no recognition)':<48} accepted {ref['acceptance']:6.1%}  "
                     f"({ref['accepted']}/{ref['commands']})")
    for key, r in res["rows"].items():
        lines.append(f"{key:<48} accepted {r['acceptance']:6.1%}  intent {r['intent_right']:6.1%}  "
                     f"median {r['latency_ms']['median']:6.0f} ms  p95 {r['latency_ms']['p95']:6.0f} ms  "
                     f"{r['grammar_modes']}")
    for r in res.get("noise_only", []):
        key = f"{r['noise']} alone | {r['recognizer']} | {r['grammar']}"
        lines.append(f"{key:<48} intents {r['intents']}/{r['windows']} windows  no-speech gate "
                     f"{r['no_speech_gated']} ({r['gated_with_grammar_sentence']} with a grammar sentence)")
    return "\n".join(lines)
