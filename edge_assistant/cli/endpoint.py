"""``edge-assistant endpoint FILE...``: the utterances (start/end seconds) the endpointer finds per file."""

from __future__ import annotations

import argparse
import logging
import sys
import time

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "endpoint",
        help="find utterances (speech start/end) in audio files with Silero VAD + energy gate",
        description="Run the streaming endpointer over each file (16 kHz mono after reading; other rates "
        "are resampled) as a continuous listener would, and print the utterances it finds.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV or FLAC files, or folders searched for them")
    p.add_argument("--json", metavar="PATH", nargs="?", const="-", default=None,
                   help="write machine output as JSON to PATH (default: stdout)")
    p.add_argument("--trailing-silence-ms", type=float, default=None,
                   help="end an utterance after this much non-speech (default 700)")
    p.add_argument("--max-utterance-ms", type=float, default=None, help="force the end at this length (default 15000)")
    p.add_argument("--pre-roll-ms", type=float, default=None, help="audio kept before the start (default 300)")
    p.add_argument("--onset", type=float, default=None, help="speech probability that starts speech (default 0.5)")
    p.add_argument("--offset", type=float, default=None, help="probability below which speech stops (default 0.35)")
    p.add_argument("--no-gate", action="store_true", help="run Silero on every window (no energy gate)")
    p.add_argument("--stats", action="store_true",
                   help="also report compute: windows, share skipped by the energy gate, CPU time in Silero and "
                   "in the gate, real-time factor (CPU time / audio time)")
    p.add_argument("--pad-s", type=float, default=0.0,
                   help="add this much silence before and after each file (evaluation)")
    p.add_argument("--noise", metavar="SPEC", default=None,
                   help="mix noise into each file (after padding): 'car' for the seeded car-cabin generator, "
                   "or a folder/file of WAV/FLAC recordings (evaluation)")
    p.add_argument("--snr-db", type=float, default=10.0, help="SNR for --noise, active-speech convention (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for --noise (default 0)")
    p.add_argument("--chunk-ms", type=float, default=80.0,
                   help="size of the chunks fed to the streaming endpointer (default 80 ms)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):  # -> EndpointConfig
    from edge_assistant.vad.endpoint import EndpointConfig

    overrides = {
        "trailing_silence_ms": args.trailing_silence_ms,
        "max_utterance_ms": args.max_utterance_ms,
        "pre_roll_ms": args.pre_roll_ms,
        "onset_threshold": args.onset,
        "offset_threshold": args.offset,
    }
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if args.no_gate:
        kwargs["energy_gate"] = None
    return EndpointConfig(**kwargs)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_assistant.audio.io import read_audio
    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError, EdgeAssistantError
    from edge_assistant.vad.endpoint import Endpointer, Utterance
    from edge_assistant.vad.silero import SileroVad

    if not args.chunk_ms > 0:
        raise ConfigError(f"--chunk-ms={args.chunk_ms}: expected > 0")
    cfg = _config(args)
    vad = SileroVad(window_samples=cfg.window_samples)
    paths = _expand(args.files)
    totals = {"files": 0, "audio_s": 0.0, "utterances": 0, "windows": 0, "windows_neural": 0,
              "neural_ms": 0.0, "gate_ms": 0.0, "cpu_ms": 0.0, "wall_ms": 0.0}
    chunk = max(1, int(round(args.chunk_ms * 16)))
    if not (args.pad_s >= 0 and args.pad_s <= 3600):
        raise ConfigError(f"--pad-s={args.pad_s}: expected 0 .. 3600 seconds")
    noise = None
    if args.noise is not None:
        from edge_assistant.audio.noise import load_noise

        noise = load_noise(args.noise, seed=args.seed)
    results = []
    failed = 0
    for path in tqdm(paths, desc="endpoint", unit="file", file=sys.stderr, disable=len(paths) < 2):
        try:
            audio = read_audio(path, "float32")
            if args.pad_s > 0:
                import numpy as np

                pad = np.zeros(int(round(args.pad_s * 16000)), dtype=np.float32)
                audio = np.concatenate([pad, audio, pad])
            if noise is not None:
                audio = noise.mix(audio, args.snr_db, key=str(path))
            ep = Endpointer(cfg, vad=vad)
            t0, c0 = time.perf_counter(), time.thread_time()
            found: list[Utterance] = []
            for pos in range(0, len(audio), chunk):
                found.extend(e for e in ep.process(audio[pos:pos + chunk]) if isinstance(e, Utterance))
            found.extend(e for e in ep.flush() if isinstance(e, Utterance))
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        except EdgeAssistantError as exc:
            failed += 1
            print(f"edge-assistant: error: {exc}", file=sys.stderr)
            results.append({"file": str(path), "error": str(exc)})
            continue
        duration = len(audio) / 16000
        entry: dict = {"file": str(path), "duration_s": round(duration, 3),
                       "utterances": [u.to_dict() for u in found]}
        if args.stats:
            st = ep.stats
            entry["stats"] = {
                "windows": st.windows, "windows_neural": st.windows_neural,
                "skipped_fraction": round(st.skipped_fraction, 4),
                "neural_ms": round(st.neural_s * 1e3, 2), "gate_ms": round(st.gate_s * 1e3, 2),
                "cpu_ms": round(cpu * 1e3, 2), "wall_ms": round(wall * 1e3, 2),
                "rtf": round(cpu / duration, 5) if duration else None,
            }
        results.append(entry)
        st = ep.stats
        for key, value in (("files", 1), ("audio_s", duration), ("utterances", len(found)), ("windows", st.windows),
                           ("windows_neural", st.windows_neural), ("neural_ms", st.neural_s * 1e3),
                           ("gate_ms", st.gate_s * 1e3), ("cpu_ms", cpu * 1e3), ("wall_ms", wall * 1e3)):
            totals[key] += value
        if args.json != "-":
            spans = ", ".join(f"{u.start_s:.2f}-{u.end_s:.2f} s" + ("" if u.reason == "silence" else f" ({u.reason})")
                              for u in found)
            line = f"{path}: {len(found)} utterance{'s' if len(found) != 1 else ''}" + (f": {spans}" if spans else "")
            if args.stats:
                s = entry["stats"]
                line += (f"  [gate skipped {s['skipped_fraction']:.0%} of {s['windows']} windows, "
                         f"Silero {s['neural_ms']:.0f} ms CPU, RTF {s['rtf']}]")
            print(line)
    doc = {"config": _config_dict(cfg), "files": results}
    if args.stats:
        t = totals
        t["skipped_fraction"] = 1.0 - t["windows_neural"] / t["windows"] if t["windows"] else 0.0
        t["rtf"] = t["cpu_ms"] / 1e3 / t["audio_s"] if t["audio_s"] else None
        doc["totals"] = {k: round(v, 5) if isinstance(v, float) else v for k, v in t.items()}
        if args.json != "-":
            print(f"total: {t['files']} files, {t['audio_s']:.1f} s of audio, {t['utterances']} utterances; "
                  f"gate skipped {t['skipped_fraction']:.1%} of {t['windows']} windows; Silero {t['neural_ms']:.0f} ms, "
                  f"gate {t['gate_ms']:.0f} ms; endpointer CPU {t['cpu_ms']:.0f} ms, RTF {t['rtf']:.4f} (CPU time)")
    write_json(doc, args.json)
    return 1 if failed else 0


def _expand(items: list[str]) -> list[str]:
    """Files as given; folders replaced by the WAV/FLAC files under them (sorted)."""
    from pathlib import Path

    from edge_assistant.audio.io import iter_audio_files

    out: list[str] = []
    for item in items:
        out.extend(str(p) for p in iter_audio_files([item])) if Path(item).is_dir() else out.append(item)
    return out


def _config_dict(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)
