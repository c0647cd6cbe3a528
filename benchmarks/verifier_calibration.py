"""Choose the wake-word verifier's ``min_logprob`` on synthetic speech only (no recording from shared/data).

Utterances come from the adaptation recipe's plan (``modelbuild/wakeword/adapt.py``: the phrase alone, in commands
and sentences; its confusables from CMUdict, partials, splits and runs of common words), with a seed of
their own, spoken by Flite's voices (the Debian package ``flite``: slt, rms, awb, kal16, at random speeds
and pitches) or, with ``--tts espeak``, by the recipe's espeak-ng voices. Whisper tiny understands Flite's
voices far better than eSpeak NG's (most espeak-ng "Alexa"s are transcribed as other words), so Flite
is the default: the score of a clearly spoken phrase is what the threshold has to keep. Each one is padded with silence, optionally mixed with the car-cabin
generator, streamed through the head at a low threshold so that near misses propose too, and every
proposal's window is scored by the verifier. Printed: the score distribution of proposals on wake
utterances and on the others, and wake kept / false proposals kept per candidate ``min_logprob``.

    .venv/bin/python benchmarks/verifier_calibration.py --utterances 600 --json /tmp/calib.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile

import numpy as np

FLITE_VOICES = ("slt", "rms", "awb", "kal16")


def flite(text: str, voice: str, stretch: float, f0_hz: float) -> np.ndarray:
    """Flite speaking ``text``: float32 16 kHz mono."""
    import soundfile as sf

    from edge_assistant.audio.frontend import resample

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.2f}",
                        "--setf", f"int_f0_target_mean={f0_hz:.0f}", "-t", text, "-o", f.name],
                       check=True, capture_output=True, timeout=60)
        data, rate_hz = sf.read(f.name, dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    return np.asarray(resample(data, rate_hz, 16000) if rate_hz != 16000 else data, np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", default="alexa")
    ap.add_argument("--phrase", default=None, help="spoken phrase (default: the recipe's for the head)")
    ap.add_argument("--utterances", type=int, default=600)
    ap.add_argument("--seed", type=int, default=101, help="plan seed (not one a shipped build used)")
    ap.add_argument("--threshold", type=float, default=0.1, help="head threshold for proposals (low: near misses)")
    ap.add_argument("--operating-threshold", type=float, default=0.5,
                    help="the head's threshold in use: its wake proposals set the rule below")
    ap.add_argument("--noisy", type=float, default=0.3, help="share of utterances mixed with car noise")
    ap.add_argument("--tts", choices=("flite", "espeak"), default="flite")
    ap.add_argument("--json", help="write every proposal's score here")
    args = ap.parse_args(argv)

    from edge_assistant.audio.io import to_int16
    from edge_assistant.audio.noise import CarNoiseConfig, car_cabin_noise, mix_at_snr
    from edge_assistant.audio.speech_synth import SpeechSynthError, synthesize
    from edge_assistant.modelbuild.wakeword.adapt import AdaptConfig, plan_utterances
    from edge_assistant.wakeword.engine import build_engine
    from edge_assistant.wakeword.verifier import VerifierConfig, WhisperVerifier

    cfg = AdaptConfig(head=args.head, phrase=args.phrase, utterances=args.utterances, seed=args.seed)
    plan = plan_utterances(cfg)
    engine = build_engine(args.head, threshold=args.threshold)
    vcfg = VerifierConfig()
    from edge_assistant.asr.recognizer import WhisperRecognizer

    verifier = WhisperVerifier(cfg.spoken_phrase, WhisperRecognizer(), vcfg)
    verifier.exact = True
    rows = []
    for u in plan:
        rng = np.random.default_rng([args.seed, u.index])
        try:
            if args.tts == "flite":
                voice = FLITE_VOICES[int(rng.integers(len(FLITE_VOICES)))]
                u = dataclasses.replace(u, voice=voice)
                x = flite(u.text, voice, float(rng.uniform(0.8, 1.3)), float(rng.uniform(80, 220)))
            else:
                x = synthesize(u.text, voice=u.voice, words_per_minute=u.words_per_minute, pitch=u.pitch)
        except (SpeechSynthError, subprocess.CalledProcessError) as exc:
            print(f"skip {u.index}: {exc}", file=sys.stderr)
            continue
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak <= 0:
            continue
        x = x / peak * 10 ** (rng.uniform(-20.0, -3.0) / 20.0)
        y = np.concatenate((np.zeros(int(rng.uniform(0.6, 2.0) * 16000)), x, np.zeros(16000))).astype(np.float32)
        snr = None
        if rng.random() < args.noisy:
            snr = float(rng.choice([5.0, 10.0, 20.0]))
            car = CarNoiseConfig(speed_kmh=float(rng.uniform(20, 160)), ev=bool(rng.random() < 0.6))
            y = mix_at_snr(y, car_cabin_noise(len(y) / 16000 + 0.01, car, seed=u.index)[: len(y)], snr)
        engine.reset()
        res = engine.feed(to_int16(y))
        # Every utterance is scored at its proposals, or else at its most phrase-like step (near misses
        # the head did not propose at this threshold still tell where the verifier's scores lie).
        times = [(ev.time_s, ev.score, True) for ev in res.events]
        if not times and len(res.scores):
            k = int(np.argmax(res.scores[:, 0]))
            times = [(float(res.times_s[k]), float(res.scores[k, 0]), False)]
        for t, head_score, proposed in times:
            end = int(round((t + vcfg.lookahead_s) * 16000))
            start = max(0, end - int(round(vcfg.window_s * 16000)))
            v = verifier.verify(y[start:end])
            rows.append({"index": u.index, "text": u.text, "voice": u.voice, "wake": u.has_wake, "snr_db": snr,
                         "proposed": proposed, "head_score": head_score, "score": v.score,
                         "decoded": v.text, "ms": v.cost_ms})
    wake = np.array([r["score"] for r in rows if r["wake"]])
    other = np.array([r["score"] for r in rows if not r["wake"]])
    n_wake = sum(u.has_wake for u in plan)
    print(f"{len(plan)} utterances ({n_wake} with the phrase); proposals at T={args.threshold}: "
          f"{len(wake)} on wake utterances, {len(other)} on the others")
    for q in (0, 1, 2, 5, 10, 50):
        print(f"  wake score p{q}: {np.percentile(wake, q):.2f}" if len(wake) else "")
    for q in (50, 90, 95, 99, 100):
        print(f"  other score p{q}: {np.percentile(other, q):.2f}" if len(other) else "")
    for t in (-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -8.0, -10.0):
        print(f"  min_logprob {t:5.1f}: wake proposals kept {(wake >= t).sum()}/{len(wake)}, "
              f"other proposals kept {(other >= t).sum()}/{len(other)}")
    at_op = np.array([r["score"] for r in rows if r["wake"] and r["proposed"]
                      and r["head_score"] >= args.operating_threshold])
    if len(at_op):
        p1 = float(np.percentile(at_op, 1))
        print(f"  rule: 1st percentile of the {len(at_op)} wake proposals at T={args.operating_threshold}: {p1:.2f}"
              f" -> min_logprob {np.floor(p1):.1f} (keeps {(at_op >= np.floor(p1)).sum()}/{len(at_op)}, "
              f"other proposals kept {(other >= np.floor(p1)).sum()}/{len(other)})")
    ms = np.array([r["ms"] for r in rows])
    if len(ms):
        print(f"  cost per proposal: p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
