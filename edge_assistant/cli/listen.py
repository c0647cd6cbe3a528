"""``edge-assistant listen``: the assistant's main loop on the device.

Audio comes as raw 16 kHz mono S16_LE PCM on stdin (``arecord -D ea_mic -f S16_LE -r 16000 -c 1 -t raw |
edge-assistant listen``) or from a file; vehicle state comes live from a CAN bus decoded with a DBC, from a
replayed log, or from the demo car. Under systemd (``Type=notify``) it reports READY once the models are
loaded and the input is open, and kicks the watchdog from the audio loop.
"""

from __future__ import annotations

import argparse
import sys

CHUNK_SAMPLES = 1280  # 80 ms at 16 kHz: one wake-word step


def register(subparsers) -> None:
    from edge_assistant.vehicle.bus import add_bus_arguments

    p = subparsers.add_parser("listen", help="run the assistant on live audio (stdin) or a file",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--input", default="-", metavar="FILE|-",
                   help="audio: '-' for raw S16_LE 16 kHz mono on stdin (default), or a WAV/FLAC file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="answer from the demo car (the default without --dbc)")
    src.add_argument("--replay", metavar="LOG", help="answer from a recorded CAN log (needs --dbc)")
    src.add_argument("--live", action="store_true", help="answer from the live bus given by --bus (needs --dbc)")
    add_bus_arguments(p, default="socketcan:can0")
    p.add_argument("--dbc", action="append", default=[], metavar="FILE", help="DBC for --replay/--live (repeatable)")
    p.add_argument("--mapping", metavar="FILE", help="VSS mapping JSON for --replay/--live")
    p.add_argument("--vehicle", metavar="TABLE", help="per-vehicle DTC table: demo_ev, kona_ev or a JSON file")
    p.add_argument("--wake-word", action="append", metavar="NAME", help="shipped head or head .onnx (repeatable; default alexa)")
    p.add_argument("--threshold", type=float, default=None, help="wake threshold (default: each model's manifest)")
    p.add_argument("--noise-suppression", action=argparse.BooleanOptionalAction, default=None,
                   help="run the C noise suppressor before the wake word (default: as the head asks; on for alexa_car)")
    p.add_argument("--float", dest="int8", action="store_false", help="float Whisper graphs instead of int8")
    p.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    p.set_defaults(func=run)


def _agents(args):
    """(car_genius, travel, reader-or-None) for the chosen vehicle source."""
    from edge_assistant.core.errors import ConfigError

    if (args.replay or args.live) and not args.dbc:
        raise ConfigError("--replay/--live need at least one --dbc")
    if args.replay or args.live:
        from edge_assistant.agents.car_genius import CarGenius
        from edge_assistant.agents.travel_companion import TravelCompanion
        from edge_assistant.core.state import VehicleState

        # one state per car; live, "now" is the wall clock (frames carry POSIX times), so values age when
        # the bus goes silent. Both agents' history is fed by the state as frames arrive.
        state = VehicleState(clock=VehicleState.wall_clock if args.live else None)
        genius, travel = CarGenius(state, vehicle=args.vehicle), TravelCompanion(state)
        if args.replay:
            from edge_assistant.agents.replay import replay_drive

            replay_drive(state, args.replay, args.dbc, args.mapping)
            return genius, travel, None
        from edge_assistant.vehicle import decoder_for
        from edge_assistant.vehicle.bus import BusReader, bus_config_from_args, first_then

        decoder = decoder_for(args.dbc, args.mapping, state)
        reader = BusReader(first_then(bus_config_from_args(args)), decoder.feed_messages, name="vehicle").start()
        return genius, travel, reader
    from edge_assistant.agents.demo import demo_car

    car = demo_car()
    return car.genius, car.travel, None


def _chunks(path: str):
    """Yield int16 chunks of CHUNK_SAMPLES from stdin (raw PCM) or a file."""
    import numpy as np

    if path != "-":
        from edge_assistant.audio.io import read_audio

        pcm = read_audio(path, dtype="int16")
        for i in range(0, pcm.size, CHUNK_SAMPLES):
            yield pcm[i : i + CHUNK_SAMPLES]
        return
    stream = sys.stdin.buffer
    carry = b""
    while True:
        data = stream.read(CHUNK_SAMPLES * 2)
        if not data:
            return
        data = carry + data
        usable = len(data) - len(data) % 2  # an odd byte waits for its partner
        carry = data[usable:]
        if usable:
            yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)


def run(args) -> int:
    import json

    from edge_assistant.agents.router import AgentRouter
    from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
    from edge_assistant.cli._common import print_event
    from edge_assistant.core.sdnotify import SdNotifier, WatchdogKicker
    from edge_assistant.pipeline import Assistant
    from edge_assistant.vad.endpoint import Endpointer
    from edge_assistant.wakeword.engine import build_engine

    notifier = SdNotifier()
    notifier.status("loading models")
    wake = build_engine(tuple(args.wake_word or ["alexa"]), threshold=args.threshold,
                        noise_suppression=args.noise_suppression)
    assistant_parts = (wake, Endpointer(listening=False), WhisperRecognizer(RecognizerConfig(int8=args.int8)))
    genius, travel, reader = _agents(args)
    assistant = Assistant(*assistant_parts, AgentRouter(genius, travel))
    watchdog = WatchdogKicker.from_env(notifier)
    notifier.ready("listening for the wake word")
    out = sys.stdout
    try:
        for chunk in _chunks(args.input):
            for ev in assistant.feed(chunk):
                if args.json:
                    out.write(json.dumps(ev.to_dict()) + "\n")
                    out.flush()
                else:
                    print_event(out, ev)
            watchdog.kick()
        for ev in assistant.flush():
            out.write(json.dumps(ev.to_dict()) + "\n") if args.json else print_event(out, ev)
    finally:
        notifier.stopping()
        if reader is not None:
            reader.stop()
    return 0
