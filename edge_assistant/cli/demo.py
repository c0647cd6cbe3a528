"""``edge-assistant demo``: the whole assistant on its embedded default.

A cabin scene is spoken by espeak-ng into generated car-cabin noise ("Alexa … why is the tyre light
on?"); the stream goes through the wake word, VAD endpointing, Whisper and the intent parser, and the
agents answer from the demo EV's simulated drive and its virtual ECUs' trouble codes.
"""

from __future__ import annotations

import sys

DEFAULT_COMMANDS = (
    "Why is the tyre light on?",
    "How much range do I have left?",
    "What does the warning light mean?",
    "Can I drive two hundred kilometres?",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole assistant on a synthesised cabin scene and the demo car",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--audio", metavar="FILE", help="use this recording (WAV/FLAC, any rate) instead of the scene")
    p.add_argument("--command", action="append", metavar="TEXT",
                   help="a command to speak after the wake word (repeatable; default: four demo questions)")
    p.add_argument("--snr", type=float, default=15.0, metavar="DB",
                   help="speech-to-cabin-noise ratio of the scene (default: %(default)s dB)")
    p.add_argument("--quiet-cabin", action="store_true", help="no cabin noise in the scene")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="the demo car as of this many seconds into its drive (default: end of the drive)")
    p.add_argument("--wake-word", default="alexa", help="shipped head name or head .onnx (default: %(default)s)")
    p.add_argument("--save-audio", metavar="FILE", help="write the scene to a WAV file")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write all events as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from dataclasses import replace

    from edge_assistant.app.assemble import build_assistant, build_stages, demo_router
    from edge_assistant.cli._common import print_event, write_json
    from edge_assistant.core.config import WakeSettings, default_config

    out = sys.stdout
    t0 = time.perf_counter()
    config = replace(default_config(), wake=(WakeSettings(args.wake_word),))
    # Load every model first: a missing or corrupt file fails here, before any audio.
    stages = build_stages(config)
    router, car = demo_router(config, at_s=args.at)
    out.write(f"models and demo car ready in {time.perf_counter() - t0:.1f} s "
              f"(demo drive {car.log_path.name}, answering as of {car.at_s:.0f} s into it)\n")

    pcm, source = _audio(args)
    if args.save_audio:
        import soundfile as sf

        sf.write(args.save_audio, pcm, 16000)
    out.write(f"streaming {pcm.size / 16000:.1f} s of audio ({source}) in 80 ms chunks\n\n")

    assistant = build_assistant(config, stages, router)
    events = []
    t_start = time.perf_counter()
    for i in range(0, pcm.size, 1280):
        for ev in assistant.feed(pcm[i : i + 1280]):
            events.append(ev)
            print_event(out, ev)
    for ev in assistant.flush():
        events.append(ev)
        print_event(out, ev)
    wall = time.perf_counter() - t_start
    replies = [e for e in events if e.kind == "reply"]
    out.write(f"\n{sum(e.kind == 'wake' for e in events)} wake word(s), {len(replies)} answer(s); "
              f"{pcm.size / 16000:.1f} s of audio processed in {wall:.1f} s "
              f"(real-time factor {wall / max(1e-9, pcm.size / 16000):.2f}, one thread)\n")
    if args.json:
        write_json({"source": source, "audio_s": pcm.size / 16000, "events": [e.to_dict() for e in events]},
                   args.json)
    return 0 if replies or args.audio else 1


def _audio(args):
    import numpy as np

    if args.audio:
        from edge_assistant.audio.io import read_audio

        return read_audio(args.audio, dtype="int16"), args.audio
    from edge_assistant.pipeline.scene import SceneTurn, build_scene

    commands = args.command or list(DEFAULT_COMMANDS)
    scene = build_scene([SceneTurn(c) for c in commands], snr_db=None if args.quiet_cabin else args.snr, seed=7)
    noise = "quiet cabin" if args.quiet_cabin else f"car-cabin noise at {args.snr:g} dB SNR"
    return np.asarray(scene.pcm), f"espeak-ng scene, {len(commands)} command(s), {noise}"
