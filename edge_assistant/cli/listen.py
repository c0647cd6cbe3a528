"""``edge-assistant listen``: the assistant on a recording or on raw PCM from stdin.

Audio comes from a WAV/FLAC file or as raw 16 kHz mono S16_LE PCM on stdin (``arecord -D ea_mic -f S16_LE
-r 16000 -c 1 -t raw | edge-assistant listen``), answered inline, one command after the other (deterministic:
for tests and for trying a recording). Vehicle state comes from the demo car, a replayed log, or the live bus.
The device itself runs ``edge-assistant run``, which captures the microphone in-process.
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
    add_bus_arguments(p, default=None)
    p.add_argument("--config", metavar="FILE", help="device configuration (TOML) whose settings the flags override")
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


def _config(args):
    """The device configuration these flags describe (the built-in demo's, overridden flag by flag)."""
    from dataclasses import replace

    from edge_assistant.core.config import (
        NoiseSuppressionSettings,
        VehicleSettings,
        WakeSettings,
        default_config,
        load_config,
    )
    from edge_assistant.core.errors import ConfigError

    config = load_config(args.config) if args.config else default_config()
    if args.wake_word:
        config = replace(config, wake=tuple(WakeSettings(w, args.threshold) for w in args.wake_word))
    elif args.threshold is not None:
        config = replace(config, wake=tuple(replace(w, threshold=args.threshold) for w in config.wake))
    if args.noise_suppression is not None:
        config = replace(config, noise_suppression=NoiseSuppressionSettings(args.noise_suppression))
    if not args.int8:
        config = replace(config, asr=replace(config.asr, int8=False))
    if (args.replay or args.live) and not (args.dbc or args.config):
        raise ConfigError("--replay/--live need at least one --dbc (or a --config naming the car's DBC)")
    if args.dbc:
        from pathlib import Path

        config = replace(config, vehicle=VehicleSettings(
            id=config.vehicle.id, bus=args.bus or (config.vehicle.bus if args.config else "socketcan:can0"), dbc=tuple(Path(d) for d in args.dbc),
            vss_mapping=Path(args.mapping) if args.mapping else None, dtc_table=args.vehicle,
            battery_capacity_kwh=config.vehicle.battery_capacity_kwh,
            consumption_wh_per_km=config.vehicle.consumption_wh_per_km,
            reference_speed_kmh=config.vehicle.reference_speed_kmh),
            diagnostics=replace(config.diagnostics, enabled=False, ecus=(), bus=None),
            demo_car=replace(config.demo_car, enabled=False))
    elif args.bus:
        config = replace(config, vehicle=replace(config.vehicle, bus=args.bus))
    return config


def _router(args, config):
    """(router, vehicle side to stop or None) for the chosen vehicle source."""
    from edge_assistant.app.assemble import build_agents, demo_router

    if args.live:
        from edge_assistant.app.vehicle_side import VehicleSide

        vehicle = VehicleSide(config).start()  # wall clock: values age when the bus goes silent
        return build_agents(config, vehicle), vehicle
    if args.replay:
        from edge_assistant.agents.car_genius import CarGenius
        from edge_assistant.agents.replay import replay_drive
        from edge_assistant.agents.router import AgentRouter
        from edge_assistant.agents.travel_companion import TravelCompanion
        from edge_assistant.app.stage_configs import travel_config
        from edge_assistant.core.state import VehicleState

        state = VehicleState()  # log time: "now" is the log's last frame
        genius = CarGenius(state, vehicle=config.vehicle.dtc_table)
        travel = TravelCompanion(state, travel_config(config))
        v = config.vehicle
        replay_drive(state, args.replay, list(v.dbc), v.vss_mapping)
        return AgentRouter(genius, travel), None
    router, _car = demo_router(config)
    return router, None


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

    from edge_assistant.app.assemble import build_assistant, build_stages
    from edge_assistant.cli._common import print_event
    from edge_assistant.core.sdnotify import SdNotifier, WatchdogKicker

    config = _config(args)
    notifier = SdNotifier()
    notifier.status("loading models")
    stages = build_stages(config)
    router, vehicle = _router(args, config)
    assistant = build_assistant(config, stages, router)
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
        if vehicle is not None:
            vehicle.stop()
    return 0
